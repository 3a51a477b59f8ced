//! The share dialog's requests to the core: who holds a file, share it,
//! revoke a share.

use super::{App, Entry, Page};
use crate::core::messages;
use crate::core::shares::ShareTerms;
use crate::doors::tui::dialogs::{Dialog, Holder, ShareDialog};
use crate::text::sentence::sentence;

impl App {
    /// `s` on a file: the share dialog, with who holds it now.
    pub(super) async fn open_share(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Entry::File(file)) = dash.selected_entry() else {
            return self.error("Select a file to share.");
        };
        let name = file.record.name.clone();
        match self.core.shares(&dash.who, Some(&name)).await {
            Ok(shares) => {
                let holders = holders(shares);
                dash.show(Dialog::Share(Box::new(ShareDialog::new(name, holders))));
            }
            Err(e) => self.error(sentence(&e.to_string())),
        }
    }

    pub(super) async fn share(&mut self, address: &str, terms: ShareTerms) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Share(dialog)) = dash.dialog.as_ref() else {
            return;
        };
        let name = dialog.name.clone();
        match self.core.share(&dash.who, &name, address, terms).await {
            Ok(made) => {
                let told = made.told(&name, &dash.who.email);
                self.refresh_holders(&name, format!("{told}.")).await;
            }
            Err(e) => self.error(sentence(&e.to_string())),
        }
    }

    pub(super) async fn unshare(&mut self, address: &str) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Share(dialog)) = dash.dialog.as_ref() else {
            return;
        };
        let name = dialog.name.clone();
        match self.core.unshare(&dash.who, &name, address).await {
            Ok(()) => {
                let told = messages::unshared_line(&name, address);
                self.refresh_holders(&name, format!("{told}.")).await;
            }
            Err(e) => self.error(sentence(&e.to_string())),
        }
    }

    async fn refresh_holders(&mut self, name: &str, message: String) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let shares = self.core.shares(&dash.who, Some(name)).await;
        let Some(Dialog::Share(dialog)) = dash.dialog.as_mut() else {
            return;
        };
        match shares {
            Ok(shares) => {
                dialog.set_holders(holders(shares));
                self.info(message);
            }
            Err(e) => self.error(sentence(&e.to_string())),
        }
    }
}

fn holders(shares: Vec<crate::core::ShareRecord>) -> Vec<Holder> {
    shares
        .into_iter()
        .map(|share| Holder {
            address: share.recipient,
            expires_at: share.expires_at,
            downloads_left: share.downloads_left,
        })
        .collect()
}
