//! `e` on a file: the expiry typed in its prompt, set through the core.

use super::{App, Page};
use crate::core::expiry::parse_expiry;
use crate::core::messages;
use crate::doors::tui::dialogs::{Dialog, NamePrompt};
use crate::text::sentence::sentence;

impl App {
    /// Sets when `path` expires from what was typed (`7d`, `12h`, `never`);
    /// a refusal goes back to the prompt, with what was typed, to fix it.
    pub(super) async fn set_expiry(&mut self, prompt: Box<NamePrompt>, path: &str, typed: &str) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let set = match parse_expiry(typed) {
            Ok(after) => self.core.set_expiry(&dash.who, path, after).await,
            Err(e) => Err(e),
        };
        match set {
            Ok(at) => match dash.reload(&self.core).await {
                Ok(()) => self.info(format!("{}.", messages::expiry_set_line(path, at))),
                Err(e) => self.error(e),
            },
            Err(e) => {
                dash.dialog = Some(Dialog::NamePrompt(prompt));
                self.error(sentence(&e.to_string()))
            }
        }
    }
}
