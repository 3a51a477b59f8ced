//! The terminal UI's styles, with a monochrome variant that uses only bold,
//! underline and reverse for terminals without colour, and what the
//! client's terminal can show: colour or not (`TERM`, `NO_COLOR`), Unicode
//! or plain ASCII (`LANG`/`LC_*`, `TERM`).

use ratatui::style::{Color, Modifier, Style};

/// Environment variables a client may send (`SendEnv`) that the terminal UI
/// reads; the SSH door accepts these and refuses the rest.
pub const TERMINAL_ENV: &[&str] = &["NO_COLOR", "LANG", "LC_ALL", "LC_CTYPE"];

/// The styles of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// No colours: bold, underline and reverse only.
    pub mono: bool,
    /// Unicode box drawing, blocks and symbols; otherwise every cell is
    /// plain ASCII (see `terminal.rs`).
    pub unicode: bool,
}

impl Theme {
    /// What a client's terminal gets, from its `TERM` and the variables of
    /// [`TERMINAL_ENV`] it sent.
    pub fn for_terminal(term: &str, env: &[(String, String)]) -> Theme {
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        // https://no-color.org: present and not empty.
        let no_color = var("NO_COLOR").is_some_and(|v| !v.is_empty());
        // The locale that decides the character set, as a C library picks it.
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
            .into_iter()
            .find_map(|name| var(name).filter(|v| !v.is_empty()));
        let unicode = match locale {
            Some(locale) => {
                let locale = locale.to_ascii_lowercase();
                locale.contains("utf-8") || locale.contains("utf8")
            }
            // No locale sent: trust the terminal type.
            None => !lacks_line_drawing(term),
        };
        Theme {
            mono: no_color || is_monochrome(term),
            unicode,
        }
    }

    fn pick(&self, colour: Style, mono: Style) -> Style {
        if self.mono {
            mono
        } else {
            colour
        }
    }

    pub fn title(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Cyan), bold)
    }

    pub fn bar(&self) -> Style {
        let reversed = Style::default().add_modifier(Modifier::REVERSED);
        self.pick(Style::default().fg(Color::Black).bg(Color::Cyan), reversed)
    }

    /// A notice on the header bar (waiting keys).
    pub fn bar_notice(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(
            bold.fg(Color::Black).bg(Color::Yellow),
            bold.add_modifier(Modifier::REVERSED),
        )
    }

    pub fn shortcut(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Yellow), bold)
    }

    pub fn error(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(
            bold.fg(Color::LightRed),
            bold.add_modifier(Modifier::REVERSED),
        )
    }

    pub fn ok(&self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }

    pub fn dim(&self) -> Style {
        self.pick(Style::default().fg(Color::Gray), Style::default())
    }

    pub fn selected(&self) -> Style {
        let reversed = Style::default().add_modifier(Modifier::REVERSED);
        self.pick(
            Style::default()
                .fg(Color::Black)
                .bg(Color::LightCyan)
                .add_modifier(Modifier::BOLD),
            reversed,
        )
    }

    pub fn header(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn border(&self, focused: bool) -> Style {
        match (focused, self.mono) {
            (true, false) => Style::default().fg(Color::Cyan),
            (true, true) => Style::default().add_modifier(Modifier::BOLD),
            (false, _) => Style::default(),
        }
    }

    pub fn unlocked(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Green), bold)
    }

    pub fn waiting(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Yellow), bold)
    }

    /// The QR code is drawn light-on-dark and must stay that way whatever
    /// the terminal's own colours (monochrome: the terminal's defaults).
    pub fn qr(&self) -> Style {
        self.pick(
            Style::default().fg(Color::White).bg(Color::Black),
            Style::default(),
        )
    }
}

/// Terminals that are known to have no colour (or whose colour support is
/// unknown).
fn is_monochrome(term: &str) -> bool {
    let term = term.to_ascii_lowercase();
    matches!(
        term.as_str(),
        "" | "dumb" | "unknown" | "vt52" | "vt100" | "vt102" | "vt220" | "vt320" | "ansi-mono"
    ) || term.ends_with("-mono")
        || term.ends_with("-m")
}

/// Terminal types from before UTF-8 (hardware terminals and the Linux
/// console's default font) that cannot be assumed to draw Unicode boxes.
fn lacks_line_drawing(term: &str) -> bool {
    let term = term.to_ascii_lowercase();
    term.is_empty()
        || term.starts_with("vt")
        || matches!(
            term.as_str(),
            "dumb" | "unknown" | "linux" | "ansi" | "cons25"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn colour_follows_term_and_no_color() {
        let colour = |term, pairs: &[(&str, &str)]| !Theme::for_terminal(term, &env(pairs)).mono;
        assert!(colour("xterm-256color", &[]));
        assert!(colour("screen", &[]));
        assert!(colour("linux", &[]));
        assert!(!colour("dumb", &[]));
        assert!(!colour("VT100", &[]));
        assert!(!colour("xterm-mono", &[]));
        assert!(!colour("", &[]));
        assert!(!colour("xterm-256color", &[("NO_COLOR", "1")]));
        assert!(colour("xterm-256color", &[("NO_COLOR", "")]));
    }

    #[test]
    fn unicode_follows_the_locale_then_the_terminal() {
        let unicode = |term, pairs: &[(&str, &str)]| Theme::for_terminal(term, &env(pairs)).unicode;
        assert!(unicode("xterm-256color", &[]));
        assert!(!unicode("vt100", &[]));
        assert!(!unicode("linux", &[("LANG", "C")]));
        assert!(!unicode("vt220", &[("LANG", "en_US.ISO-8859-1")]));
        assert!(unicode("vt100", &[("LANG", "en_US.UTF-8")]));
        assert!(unicode("linux", &[("LC_CTYPE", "C.utf8")]));
        // LC_ALL wins over LANG, as in a C library.
        assert!(!unicode(
            "xterm",
            &[("LANG", "en_US.UTF-8"), ("LC_ALL", "C")]
        ));
        assert!(!unicode("xterm", &[("LANG", "POSIX")]));
    }
}
