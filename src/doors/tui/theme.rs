//! The terminal UI's styles, with a monochrome variant that uses only bold,
//! underline and reverse for terminals without colour.

use ratatui::style::{Color, Modifier, Style};

/// The styles of one session.
pub struct Theme {
    pub mono: bool,
}

impl Theme {
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
