//! The dashboard: its keys (through the keymap), and what they and the
//! dialogs ask of the core — unlock, fetch, reveal, delete, trusted keys,
//! the authenticator app, logout.

use super::*;

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
        };
        let Some(action) = keymap::action(map, &key) else {
            if dash.focus == Focus::Key {
                dash.key.edit(&key);
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
                Focus::Key => Focus::Files,
            }),
            Action::Open => self.download().await,
            Action::Delete => match dash.selected_file() {
                Some(file) => dash.show(Dialog::ConfirmDelete(ConfirmDelete {
                    name: file.record.name.clone(),
                })),
                None => self.error("There is no file to delete."),
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
                self.info(format!(
                    "Type or paste the key of {}, then press Enter.",
                    crate::text::escape::escape(&name)
                ));
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
            Err(e) => return self.error(format!("{}.", capitalize(&e.to_string()))),
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
            Err(e) => self.error(format!("{}.", capitalize(&e.to_string()))),
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
        match self.core.take_waiting_key(&dash.who, file_id).await {
            Some((name, key)) => {
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
            Outcome::Reveal(file_id) => self.reveal(&file_id).await,
            Outcome::TrustConnectionKey => self.trust_connection_key().await,
            Outcome::RemoveSelectedKey => self.remove_selected_key().await,
            Outcome::ConfirmAuthenticator => self.confirm_authenticator().await,
        }
    }

    pub(super) async fn delete(&mut self, name: String) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        dash.close_dialog();
        let shown = crate::text::escape::escape(&name).into_owned();
        match self.core.delete(&dash.who, &name).await {
            Ok(()) => {
                let reloaded = dash.reload(&self.core).await;
                match reloaded {
                    Ok(()) => self.info(format!("Deleted {shown}.")),
                    Err(e) => self.error(e),
                }
            }
            Err(e) => self.error(format!(
                "Could not delete {shown}: {}.",
                e.to_string().trim_end_matches('.')
            )),
        }
    }

    pub(super) async fn open_keys(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        match self.core.accounts().trusted_keys(dash.account.id).await {
            Ok(keys) => dash.show(Dialog::Keys(KeysDialog::new(keys))),
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    pub(super) async fn trust_connection_key(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(key) = self.ssh_key.as_ref() else {
            return self.error(
                "This connection did not log in with an SSH key, so there is none to trust.",
            );
        };
        let fingerprint = key.fingerprint.clone();
        match self.core.trust_connection_key(&dash.account, key).await {
            Ok(added) => {
                let message = if added {
                    format!(
                        "Trusted {fingerprint}: logging in as {} with this key now skips the code.",
                        dash.account.email
                    )
                } else {
                    format!("{fingerprint} was already trusted.")
                };
                self.refresh_keys(Some(message)).await;
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    pub(super) async fn remove_selected_key(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Keys(keys)) = dash.dialog.as_mut() else {
            return;
        };
        keys.confirm_remove = false;
        let Some(fingerprint) = keys.selected_fingerprint() else {
            return;
        };
        match self
            .core
            .accounts()
            .remove_key(dash.account.id, &fingerprint)
            .await
        {
            Ok(_) => {
                self.refresh_keys(Some(format!("Removed {fingerprint}.")))
                    .await
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    pub(super) async fn refresh_keys(&mut self, message: Option<String>) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Keys(keys)) = dash.dialog.as_mut() else {
            return;
        };
        match self.core.accounts().trusted_keys(dash.account.id).await {
            Ok(list) => {
                keys.keys = list;
                keys.selected = keys.selected.min(keys.keys.len().saturating_sub(1));
                if let Some(message) = message {
                    self.info(message);
                }
            }
            Err(refusal) => self.error(sentence(&refusal)),
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
        match self.core.accounts().begin_enrolment(&dash.account) {
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
            Err(refusal) => self.error(sentence(&refusal)),
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
            .accounts()
            .confirm_enrolment(&mut dash.account, &auth.enrolment, &code)
            .await
        {
            Ok(()) => {
                dash.close_dialog();
                self.info("Authenticator app confirmed: its codes now log you in, and no e-mail is sent unless you ask for one.");
            }
            Err(refusal) => self.error(sentence(&refusal)),
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
    pub fn selected_file(&self) -> Option<&FileView> {
        self.files.get(self.selected)
    }

    pub(super) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.key.set_focused(focus == Focus::Key);
    }

    pub(super) fn select_by(&mut self, delta: isize) {
        let last = self.files.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// Reloads files and waiting keys, keeping the selection on the same
    /// file when it is still there.
    pub(super) async fn reload(&mut self, core: &Core) -> Result<(), String> {
        let selected = self.selected_file().map(|f| f.record.id.clone());
        self.waiting = core.waiting_keys(&self.who).await;
        if let Some(Dialog::WaitingKeys(list)) = self.dialog.as_mut() {
            list.update(&self.waiting);
        }
        self.files = core
            .list(&self.who)
            .await
            .map_err(|e| format!("Could not load your files: {e}."))?;
        self.storage = core.storage(&self.files);
        self.selected = selected
            .and_then(|id| self.files.iter().position(|f| f.record.id == id))
            .unwrap_or(self.selected)
            .min(self.files.len().saturating_sub(1));
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
