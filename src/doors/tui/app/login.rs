//! The email and code screens: starting a login, resending, verifying,
//! and entering the dashboard.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{
    App, CodePage, Dashboard, EmailPage, Focus, Page, CODE_DIGITS, EMAIL_MAX, FILTER_MAX, KEY_MAX,
    MASK,
};
use crate::core::quota::Storage;
use crate::core::{Account, Core, LoginMethod, OpenFiles, Who};
use crate::doors::tui::field::Field;
use crate::doors::tui::input::Key;
use crate::doors::tui::keymap::{self, Action};

impl App {
    // --- email screen ---

    pub(super) async fn email_key(&mut self, key: Key) {
        let Page::Email(page) = &mut self.page else {
            return;
        };
        if keymap::bound_action(keymap::EMAIL, &key) != Some(Action::SendCode) {
            page.field.edit(&key);
            return;
        }
        let typed = page.field.text();
        let email = match Core::parse_email(&typed) {
            Ok(email) => email,
            Err(refusal) => return self.error(refusal.sentence()),
        };
        let proven_keys: Vec<String> = self.ssh_key.iter().map(|k| k.fingerprint.clone()).collect();
        match self
            .core
            .start_login(&email, self.remote.ip(), &proven_keys)
            .await
        {
            Ok(challenge) => {
                // The code screen itself says where the code went.
                self.status = None;
                self.page = Page::Code(CodePage {
                    challenge,
                    field: Field::secret(CODE_DIGITS, |c| c.is_ascii_digit(), MASK),
                });
            }
            Err(refusal) => self.error(refusal.sentence()),
        }
    }

    // --- code screen ---

    pub(super) async fn code_key(&mut self, key: Key) {
        let Page::Code(page) = &mut self.page else {
            return;
        };
        match keymap::bound_action(keymap::CODE, &key) {
            Some(Action::ChangeAddress) => {
                let email = page.challenge.email().to_string();
                self.page = Page::Email(EmailPage::new(&email));
                self.status = None;
            }
            Some(Action::NewCode) => self.resend().await,
            Some(Action::LogIn) if page.field.is_empty() => {
                self.error("Type the 6-digit code from the email first.");
            }
            Some(Action::LogIn) => self.verify().await,
            _ => {
                page.field.edit(&key);
            }
        }
    }

    pub(super) async fn resend(&mut self) {
        let Page::Code(page) = &mut self.page else {
            return;
        };
        match self
            .core
            .resend(&mut page.challenge, self.remote.ip())
            .await
        {
            Ok(()) => {
                // The screen itself says where the mail is.
                page.field.clear();
                self.status = None;
            }
            Err(refusal) => self.error(refusal.sentence()),
        }
    }

    pub(super) async fn verify(&mut self) {
        let Page::Code(page) = &mut self.page else {
            return;
        };
        let code = page.field.text();
        page.field.clear();
        let proven_keys: Vec<String> = self.ssh_key.iter().map(|k| k.fingerprint.clone()).collect();
        match self
            .core
            .verify(
                &mut page.challenge,
                code.trim(),
                self.remote.ip(),
                &proven_keys,
            )
            .await
        {
            Ok((account, method)) => self.enter_dashboard(account, method).await,
            // A spent challenge is opened again by a new code (Ctrl-R), so
            // the user stays here either way; the refusal says what to do.
            Err(refusal) => self.error(refusal.sentence()),
        }
    }

    pub(super) async fn enter_dashboard(&mut self, account: Account, method: LoginMethod) {
        self.code_proven = method.by_code();
        // Subscribe before the first load, so nothing between the two is
        // missed.
        self.events = Some(self.core.subscribe(account.id));
        // The terminal UI opens no files itself.
        let who = Who::new(&account, self.remote, OpenFiles::new(0));
        let mut dash = Dashboard {
            account,
            who,
            // Until the first load, just below.
            storage: Storage {
                bytes: 0,
                quota_bytes: None,
            },
            folder: String::new(),
            folders: Vec::new(),
            files: Vec::new(),
            filter: Field::new(FILTER_MAX, |c| !c.is_control()),
            waiting: Vec::new(),
            transfers: BTreeMap::new(),
            selected: 0,
            focus: Focus::Files,
            key: Field::secret(KEY_MAX, |c| c.is_ascii_graphic(), MASK),
            dialog: None,
            scroll: 0,
        };
        dash.key.set_focused(false);
        dash.filter.set_focused(false);
        self.status = None;
        if let Err(e) = dash.reload(&self.core).await {
            self.error(e);
        }
        self.page = Page::Dashboard(Box::new(dash));
    }
}

impl EmailPage {
    pub(super) fn new(email: &str) -> EmailPage {
        let mut field = Field::new(EMAIL_MAX, |c| c.is_ascii_graphic());
        field.edit(&Key::Paste(Zeroizing::new(email.to_string())));
        EmailPage { field }
    }
}
