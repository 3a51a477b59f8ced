//! The dashboard: its keys (through the keymap), and what they and the
//! dialogs ask of the core — folders (open, up, filter, make, rename,
//! delete), unlock, fetch, reveal, delete, the authenticator app, logout
//! (trusted keys: `keys.rs`; sharing: `share.rs`).

use std::time::Instant;

use zeroize::Zeroizing;

use super::{App, Dashboard, EmailPage, Entry, Focus, Page, CODE_DIGITS, MASK};
use crate::core::key_input::parse_key;
use crate::core::messages;
use crate::core::names::{join_path, remote_path, shared_place, split_path, RemotePath};
use crate::core::{Core, FileView, FilesError, VaultError};
use crate::doors::tui::dialogs::{
    AuthenticatorDialog, ConfirmDelete, Dialog, Fetch, KeyShown, NamePrompt, Naming, Outcome,
    WaitingKeysDialog,
};
use crate::doors::tui::field::Field;
use crate::doors::tui::input::Key;
use crate::doors::tui::keymap::{self, Action, PAGE};
use crate::doors::tui::qr;
use crate::text::sentence::sentence;
use crate::text::time::unix_now;

impl App {
    // --- dashboard ---

    pub(super) async fn dashboard_key(&mut self, key: Key) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        if dash.dialog.is_some() {
            return self.dialog_key(key).await;
        }
        // A paste is a key (nothing else here is pasted): it goes to the
        // key field, never to the shortcuts.
        if matches!(key, Key::Paste(_)) && dash.focus == Focus::Files {
            dash.set_focus(Focus::Key);
        }
        let map = match dash.focus {
            Focus::Files => keymap::FILES,
            Focus::Key => keymap::KEY_FIELD,
            Focus::Filter => keymap::FILTER_FIELD,
        };
        let Some(action) = keymap::action(map, &key) else {
            match dash.focus {
                Focus::Key => {
                    dash.key.edit(&key);
                }
                Focus::Filter => {
                    dash.filter.edit(&key);
                    dash.selected = 0;
                }
                Focus::Files => {}
            }
            return;
        };
        match action {
            Action::Up => dash.select_by(-1),
            Action::Down => dash.select_by(1),
            Action::PageUp => dash.select_by(-(PAGE as isize)),
            Action::PageDown => dash.select_by(PAGE as isize),
            Action::First => dash.selected = 0,
            Action::Last => dash.select_by(isize::MAX),
            Action::Unlock => self.unlock().await,
            Action::ClearKey => {
                dash.key.clear();
                dash.set_focus(Focus::Files);
            }
            Action::SwitchFocus => dash.set_focus(match dash.focus {
                Focus::Files => Focus::Key,
                Focus::Key | Focus::Filter => Focus::Files,
            }),
            Action::Filter => dash.set_focus(Focus::Filter),
            Action::KeepFilter => dash.set_focus(Focus::Files),
            Action::ClearFilter => {
                dash.filter.clear();
                dash.selected = 0;
                dash.set_focus(Focus::Files);
            }
            Action::Parent => self.go_up().await,
            Action::Open => match dash.selected_entry() {
                Some(Entry::Up) => self.go_up().await,
                Some(Entry::Folder(folder)) => {
                    let path = folder.path.clone();
                    self.open_folder(path).await
                }
                _ => self.download().await,
            },
            Action::Delete => self.ask_delete().await,
            Action::NewFolder => dash.show(Dialog::NamePrompt(Box::new(NamePrompt::new(
                Naming::NewFolder,
            )))),
            Action::Rename => match dash.selected_entry() {
                Some(Entry::Folder(folder)) => {
                    let naming = Naming::Rename(folder.path.clone());
                    dash.show(Dialog::NamePrompt(Box::new(NamePrompt::new(naming))))
                }
                Some(Entry::File(file)) => {
                    let naming = Naming::Rename(file.record.name.clone());
                    dash.show(Dialog::NamePrompt(Box::new(NamePrompt::new(naming))))
                }
                _ => self.error("Select a file or folder to rename."),
            },
            Action::Share => self.open_share().await,
            Action::Expiry => match dash.selected_entry() {
                Some(Entry::File(file)) => {
                    let naming = Naming::Expiry(file.record.name.clone());
                    dash.show(Dialog::NamePrompt(Box::new(NamePrompt::new(naming))))
                }
                _ => self.error("Select a file to give it an expiry."),
            },
            Action::Reveal => self.reveal_selected().await,
            Action::Upload => dash.show(Dialog::Upload),
            Action::Help => dash.show(Dialog::Help),
            Action::SshKeys => self.open_keys().await,
            Action::Authenticator => self.open_authenticator().await,
            Action::Logout => self.logout().await,
            Action::Quit => self.end("", 0),
            // The login screens' actions are not bound on the dashboard.
            Action::SendCode | Action::LogIn | Action::NewCode | Action::ChangeAddress => {}
        }
    }

    /// Shows the folder at `path` (its list unfiltered, its first row
    /// selected).
    pub(super) async fn open_folder(&mut self, path: String) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let previous = std::mem::replace(&mut dash.folder, path);
        dash.filter.clear();
        dash.selected = 0;
        if let Err(e) = dash.reload(&self.core).await {
            dash.folder = previous;
            let _ = dash.reload(&self.core).await;
            self.error(e);
        }
    }

    /// Backspace, or Enter on `..`: the folder above, with the folder just
    /// left selected.
    pub(super) async fn go_up(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        if dash.folder.is_empty() {
            return self.info("This is your top folder.");
        }
        let left = dash.folder.clone();
        let parent = split_path(&left).0.to_string();
        self.open_folder(parent).await;
        if let Page::Dashboard(dash) = &mut self.page {
            let rows = dash.entries();
            let at = rows
                .iter()
                .position(|row| matches!(row, Entry::Folder(f) if f.path == left));
            dash.selected = at.unwrap_or(0);
        }
    }

    /// `x`: asks before deleting the selected file or folder, saying what
    /// a folder holds.
    pub(super) async fn ask_delete(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        match dash.selected_entry() {
            Some(Entry::File(file)) => {
                let name = file.record.name.clone();
                dash.show(Dialog::ConfirmDelete(ConfirmDelete { name, folder: None }))
            }
            Some(Entry::Folder(folder)) => {
                let name = folder.path.clone();
                let held = match (
                    self.core.list(&dash.who).await,
                    self.core.folders(&dash.who).await,
                ) {
                    (Ok(files), Ok(folders)) => {
                        let inside = |path: &str| path.starts_with(&format!("{name}/"));
                        (
                            files.iter().filter(|f| inside(&f.record.name)).count(),
                            folders.iter().filter(|f| inside(&f.path)).count(),
                        )
                    }
                    (Err(e), _) | (_, Err(e)) => return self.error(sentence(&e.to_string())),
                };
                dash.show(Dialog::ConfirmDelete(ConfirmDelete {
                    name,
                    folder: Some(held),
                }))
            }
            _ => self.error("There is no file or folder to delete."),
        }
    }

    /// The name typed in the new-folder or rename dialog.
    pub(super) async fn named(&mut self, typed: String) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::NamePrompt(prompt)) = dash.dialog.take() else {
            return;
        };
        if let Naming::Expiry(path) = &prompt.naming {
            let path = path.clone();
            return self.set_expiry(prompt, &path, &typed).await;
        }
        // The typed name is a path from the folder shown: `..` goes up.
        let joined = join_path(&dash.folder, &typed);
        let path = match remote_path(&joined) {
            Ok(RemotePath::Name(path)) => path,
            Ok(_) => return self.error("That name is not one a file or folder can have here."),
            Err(e) => return self.error(sentence(&e.to_string())),
        };
        let shown = crate::text::escape::escape(&path).into_owned();
        let done = match &prompt.naming {
            Naming::NewFolder => self
                .core
                .make_folder(&dash.who, &path, false)
                .await
                .map(|_| format!("Made the folder {shown}.")),
            Naming::Rename(from) => self
                .core
                .move_path(&dash.who, from, &path)
                .await
                .map(|()| format!("Renamed {} to {shown}.", crate::text::escape::escape(from))),
            Naming::Expiry(_) => return,
        };
        match done {
            Ok(said) => {
                let reloaded = dash.reload(&self.core).await;
                match reloaded {
                    Ok(()) => self.info(said),
                    Err(e) => self.error(e),
                }
            }
            Err(e) => {
                // Back to the dialog, with what was typed, to fix it.
                dash.dialog = Some(Dialog::NamePrompt(prompt));
                self.error(sentence(&e.to_string()))
            }
        }
    }

    /// Enter on a file: show how to fetch it if it is unlocked, otherwise
    /// check the typed key (asking for one if none is typed yet).
    pub(super) async fn download(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(file) = dash.selected_file() else {
            return self.error("There is no file yet: press u to see how to upload one.");
        };
        let name = file.record.name.clone();
        match file.state.unlocked_at(unix_now()) {
            Some(until) => dash.show(Dialog::Fetch(Fetch { name, until })),
            _ if dash.key.is_empty() => {
                dash.set_focus(Focus::Key);
                let shown = crate::text::escape::escape(&name).into_owned();
                let told = match (shared_place(&name), self.endpoint()) {
                    // Shared with this account: its key comes from the envelope.
                    (Some(_), Some(endpoint)) => format!(
                        "Type or paste the key of {shown}, then press Enter. It is sealed to \
                         your SSH keys: {}",
                        crate::text::escape::escape_controls(&endpoint.sealed_key_command(&name))
                    ),
                    _ => format!("Type or paste the key of {shown}, then press Enter."),
                };
                self.info(told);
            }
            _ => self.unlock().await,
        }
    }

    pub(super) async fn unlock(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(file) = dash.selected_file() else {
            return self.error("There is no file to unlock.");
        };
        let name = file.record.name.clone();
        let shown = crate::text::escape::escape(&name).into_owned();
        if dash.key.is_empty() {
            return self.error(format!("Type or paste the key of {shown} first."));
        }
        let key = match parse_key(dash.key.text().as_bytes()) {
            Ok(key) => key,
            // Likely a typo: keep the text so it can be fixed.
            Err(e) => return self.error(sentence(&e.to_string())),
        };
        dash.key.clear();
        match self.core.unlock(&dash.who, &name, &key).await {
            Ok(until) => {
                dash.set_focus(Focus::Files);
                let reloaded = dash.reload(&self.core).await;
                dash.show(Dialog::Fetch(Fetch {
                    name: name.clone(),
                    until,
                }));
                match reloaded {
                    Ok(()) => self.info(format!("{}.", messages::unlocked_until(&name, until))),
                    Err(e) => self.error(e),
                }
            }
            Err(FilesError::Vault(VaultError::WrongKey)) => self.error(format!(
                "Wrong key: it does not open {shown}. Nothing was unlocked."
            )),
            Err(e) => self.error(sentence(&e.to_string())),
        }
    }

    /// `r`: reveal the waiting key — the selected file's when it is the only
    /// one; otherwise choose from the list of every key waiting (the
    /// selected file's chosen already).
    pub(super) async fn reveal_selected(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let selected = dash.selected_file().map(|file| file.record.id.clone());
        match dash.waiting.as_slice() {
            [] => self.error("No key is waiting for this file: a key is shown only once, right after its upload."),
            [only] if Some(&only.file_id) == selected.as_ref() => {
                let file_id = only.file_id.clone();
                self.reveal(&file_id).await;
            }
            waiting => {
                let list = WaitingKeysDialog::new(waiting, selected.as_deref());
                dash.show(Dialog::WaitingKeys(list));
            }
        }
    }

    /// Takes a waiting key out of the keyring and shows it, once.
    pub(super) async fn reveal(&mut self, file_id: &str) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        // The file's path now: it may have moved since its upload.
        let moved_to = dash
            .waiting
            .iter()
            .find(|w| w.file_id == file_id)
            .map(|w| w.name.clone());
        match self.core.take_waiting_key(&dash.who, file_id).await {
            Some((name, key)) => {
                let name = moved_to.unwrap_or(name);
                dash.waiting.retain(|w| w.file_id != file_id);
                dash.show(Dialog::KeyShown(KeyShown {
                    name,
                    key: key.to_text(),
                }));
            }
            None => {
                dash.dialog = None;
                dash.waiting.retain(|w| w.file_id != file_id);
                self.error(
                    "That key is gone: it was shown in another session or its pickup time ran out.",
                );
            }
        }
    }

    /// A key for the open dialog: the dialog decides, the app carries out
    /// what needs the core.
    pub(super) async fn dialog_key(&mut self, key: Key) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(dialog) = dash.dialog.as_mut() else {
            return;
        };
        match dialog.on_key(key, &mut dash.scroll) {
            Outcome::Stay => {}
            Outcome::Close => dash.close_dialog(),
            Outcome::CloseSaying(text) => {
                dash.close_dialog();
                self.info(text);
            }
            Outcome::Error(text) => self.error(text),
            Outcome::Delete(name) => self.delete(name).await,
            Outcome::Named(typed) => self.named(typed).await,
            Outcome::Reveal(file_id) => self.reveal(&file_id).await,
            Outcome::TrustConnectionKey => self.trust_connection_key().await,
            Outcome::RemoveSelectedKey => self.remove_selected_key().await,
            Outcome::ToggleRecoveryKey => self.toggle_recovery_key().await,
            Outcome::Share { address, terms } => self.share(&address, terms).await,
            Outcome::Unshare(address) => self.unshare(&address).await,
            Outcome::ConfirmAuthenticator => self.confirm_authenticator().await,
        }
    }

    /// Deletes a file, or a folder with everything in it.
    pub(super) async fn delete(&mut self, name: String) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let folder = matches!(
            dash.dialog,
            Some(Dialog::ConfirmDelete(ConfirmDelete {
                folder: Some(_),
                ..
            }))
        );
        dash.close_dialog();
        let shown = crate::text::escape::escape(&name).into_owned();
        let done = if folder {
            self.core
                .remove_tree(&dash.who, &name)
                .await
                .map(|removed| messages::removed_tree(&name, removed.files, removed.folders))
                .map(|said| sentence(&said))
        } else {
            self.core
                .delete(&dash.who, &name)
                .await
                .map(|()| format!("Deleted {shown}."))
        };
        match done {
            Ok(said) => {
                let reloaded = dash.reload(&self.core).await;
                match reloaded {
                    Ok(()) => self.info(said),
                    Err(e) => self.error(e),
                }
            }
            Err(e) => self.error(format!(
                "Could not delete {shown}: {}.",
                e.to_string().trim_end_matches('.')
            )),
        }
    }

    /// `a`: enrol an authenticator app (a new secret, confirmed by one of
    /// its codes), only in a session that proved a code.
    pub(super) async fn open_authenticator(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        if !self.code_proven {
            return self.error(
                "Setting up an authenticator app needs a code login: log out (l) and log in with an e-mailed or app code.",
            );
        }
        match self.core.begin_enrolment(&dash.account) {
            Ok(enrolment) => {
                let mut code = Field::secret(CODE_DIGITS, |c| c.is_ascii_digit(), MASK);
                code.set_focused(true);
                dash.show(Dialog::Authenticator(Box::new(AuthenticatorDialog {
                    qr: qr::half_block_lines(enrolment.uri.as_bytes()),
                    secret: otpauth_secret(&enrolment.uri),
                    enrolment,
                    code,
                    replaces: dash.account.totp_confirmed_at.is_some(),
                })))
            }
            Err(refusal) => self.error(refusal.sentence()),
        }
    }

    /// Enter in the authenticator dialog: the typed app code confirms it.
    pub(super) async fn confirm_authenticator(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Authenticator(auth)) = dash.dialog.as_mut() else {
            return;
        };
        let code = auth.code.text();
        auth.code.clear();
        match self
            .core
            .confirm_enrolment(&mut dash.account, &auth.enrolment, &code)
            .await
        {
            Ok(()) => {
                dash.close_dialog();
                self.info("Authenticator app confirmed: its codes now log you in, and no e-mail is sent unless you ask for one.");
            }
            Err(refusal) => self.error(refusal.sentence()),
        }
    }

    /// `l`: locks every unlocked file of the account, ends its key login
    /// window and forgets what was typed; back to the email screen.
    pub(super) async fn logout(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let locked = self.core.logout(&dash.who).await;
        self.events = None;
        self.code_proven = false;
        // Dropping the dashboard wipes the key field and any shown key.
        self.page = Page::Email(EmailPage::new(""));
        self.login_started = Instant::now();
        let files = messages::locked_again(locked);
        self.info(format!(
            "Logged out; {files}, and the key login window is closed (keys you trusted still log in)."
        ));
    }
}

impl Dashboard {
    /// The list's rows: `..` below the top, then the folders and the files
    /// whose name holds the filter (in any case).
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let filter = self.filter.text().to_lowercase();
        let shown = |path: &str| split_path(path).1.to_lowercase().contains(&filter);
        let up = (!self.folder.is_empty()).then_some(Entry::Up);
        let folders = self
            .folders
            .iter()
            .filter(|f| shown(&f.path))
            .map(Entry::Folder);
        let files = self
            .files
            .iter()
            .filter(|f| shown(&f.record.name))
            .map(Entry::File);
        up.into_iter().chain(folders).chain(files).collect()
    }

    pub fn selected_entry(&self) -> Option<Entry<'_>> {
        self.entries().get(self.selected).copied()
    }

    pub fn selected_file(&self) -> Option<&FileView> {
        match self.selected_entry() {
            Some(Entry::File(file)) => Some(file),
            _ => None,
        }
    }

    pub(super) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.key.set_focused(focus == Focus::Key);
        self.filter.set_focused(focus == Focus::Filter);
    }

    pub(super) fn select_by(&mut self, delta: isize) {
        let last = self.entries().len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// Reloads the folder shown and the waiting keys, keeping the
    /// selection on the same row when it is still there. A folder gone
    /// meanwhile (moved or removed in another session) gives way to the
    /// top.
    pub(super) async fn reload(&mut self, core: &Core) -> Result<(), String> {
        let selected = self.selected_entry().map(|row| match row {
            Entry::Up => String::new(),
            Entry::Folder(f) => f.path.clone(),
            Entry::File(f) => f.record.id.clone(),
        });
        self.waiting = core.waiting_keys(&self.who).await;
        if let Some(Dialog::WaitingKeys(list)) = self.dialog.as_mut() {
            list.update(&self.waiting);
        }
        let view = match core.browse_folder(&self.who, &self.folder).await {
            Ok(view) => view,
            Err(FilesError::NoSuchFolder { .. } | FilesError::NotAFolder { .. })
                if !self.folder.is_empty() =>
            {
                let gone = std::mem::take(&mut self.folder);
                self.filter.clear();
                let view = core.browse_folder(&self.who, "").await;
                let view = view.map_err(|e| format!("Could not load your files: {e}."))?;
                self.folders = view.folders;
                self.files = view.files;
                self.selected = 0;
                return Err(format!(
                    "The folder {} was moved or removed in another session: back at your top folder.",
                    crate::text::escape::escape(&gone)
                ));
            }
            Err(e) => return Err(format!("Could not load your files: {e}.")),
        };
        self.folders = view.folders;
        self.files = view.files;
        self.storage = core
            .storage(&self.who)
            .await
            .map_err(|e| format!("Could not load your files: {e}."))?;
        let rows = self.entries();
        self.selected = selected
            .and_then(|key| {
                rows.iter().position(|row| match row {
                    Entry::Up => key.is_empty(),
                    Entry::Folder(f) => f.path == key,
                    Entry::File(f) => f.record.id == key,
                })
            })
            .unwrap_or(self.selected)
            .min(rows.len().saturating_sub(1));
        Ok(())
    }

    pub(super) fn show(&mut self, dialog: Dialog) {
        self.dialog = Some(dialog);
        self.scroll = 0;
    }

    pub(super) fn close_dialog(&mut self) {
        self.dialog = None;
    }
}

/// The `secret` parameter of an otpauth URI.
fn otpauth_secret(uri: &str) -> Zeroizing<String> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    Zeroizing::new(
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("secret="))
            .unwrap_or_default()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_from_uri() {
        let uri = "otpauth://totp/sfs:a%40b.c?secret=JBSWY3DPEHPK3PXP&issuer=sfs";
        assert_eq!(otpauth_secret(uri).as_str(), "JBSWY3DPEHPK3PXP");
        assert_eq!(otpauth_secret("otpauth://totp/x").as_str(), "");
    }
}
