//! The trusted-keys dialog's requests to the core: list, trust this
//! connection's key, remove one, name one a recovery key or stop.

use super::{App, Page};
use crate::core::messages;
use crate::doors::tui::dialogs::{Dialog, KeysDialog};
use crate::text::sentence::sentence;

impl App {
    pub(super) async fn open_keys(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        match self.core.trusted_keys(dash.account.id).await {
            Ok(keys) => dash.show(Dialog::Keys(KeysDialog::new(keys))),
            Err(refusal) => self.error(refusal.sentence()),
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
            Err(refusal) => self.error(refusal.sentence()),
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
        match self.core.remove_key(dash.account.id, &fingerprint).await {
            Ok(_) => {
                self.refresh_keys(Some(format!("Removed {fingerprint}.")))
                    .await
            }
            Err(refusal) => self.error(refusal.sentence()),
        }
    }

    /// `r` in the keys dialog: names the selected key a recovery key, or
    /// stops.
    pub(super) async fn toggle_recovery_key(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Keys(keys)) = dash.dialog.as_mut() else {
            return;
        };
        let Some((fingerprint, recovery)) = keys.selected_recovery() else {
            return;
        };
        match self
            .core
            .set_recovery_key(&dash.who, &fingerprint, !recovery)
            .await
        {
            Ok(_) => {
                let told = messages::recovery_key_set(&fingerprint, !recovery);
                self.refresh_keys(Some(sentence(&told))).await
            }
            Err(e) => self.error(sentence(&e.to_string())),
        }
    }

    pub(super) async fn refresh_keys(&mut self, message: Option<String>) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Keys(keys)) = dash.dialog.as_mut() else {
            return;
        };
        match self.core.trusted_keys(dash.account.id).await {
            Ok(list) => {
                keys.keys = list;
                keys.selected = keys.selected.min(keys.keys.len().saturating_sub(1));
                if let Some(message) = message {
                    self.info(message);
                }
            }
            Err(refusal) => self.error(refusal.sentence()),
        }
    }
}
