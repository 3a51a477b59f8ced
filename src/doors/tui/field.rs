//! One-line text fields (email, code, file key) on top of tui-textarea.
//!
//! Only plain editing keys reach the textarea — no kill/yank chords, no
//! undo history — so a secret typed into a field exists in exactly one
//! buffer, reserved up front so it never reallocates (a reallocation would
//! free a copy of the secret without wiping it). Secret fields are masked on
//! screen and wiped when cleared or dropped.

use ratatui::style::{Modifier, Style};
use tui_textarea::{CursorMove, TextArea};
use zeroize::{Zeroize, Zeroizing};

use super::input::Key;

pub struct Field {
    area: TextArea<'static>,
    max_chars: usize,
    accept: fn(char) -> bool,
    mask: Option<char>,
    focused: bool,
}

impl Field {
    /// A plain field of at most `max_chars` characters that `accept`s.
    pub fn new(max_chars: usize, accept: fn(char) -> bool) -> Field {
        Field::build(max_chars, accept, None)
    }

    /// A masked field whose contents are wiped when cleared or dropped.
    pub fn secret(max_chars: usize, accept: fn(char) -> bool, mask: char) -> Field {
        Field::build(max_chars, accept, Some(mask))
    }

    fn build(max_chars: usize, accept: fn(char) -> bool, mask: Option<char>) -> Field {
        let mut field = Field {
            area: TextArea::default(),
            max_chars,
            accept,
            mask,
            focused: true,
        };
        field.clear();
        field
    }

    /// Applies an editing key; false if the key is not an edit (the caller
    /// may give it another meaning).
    pub fn edit(&mut self, key: &Key) -> bool {
        match key {
            Key::Char(c) => self.insert(std::iter::once(*c)),
            Key::Paste(text) => self.insert(text.chars()),
            Key::Backspace | Key::Ctrl('h') => {
                self.area.delete_char();
            }
            Key::Delete | Key::Ctrl('d') => {
                self.area.delete_next_char();
            }
            Key::Left | Key::Ctrl('b') => self.area.move_cursor(CursorMove::Back),
            Key::Right | Key::Ctrl('f') => self.area.move_cursor(CursorMove::Forward),
            Key::Home | Key::Ctrl('a') => self.area.move_cursor(CursorMove::Head),
            Key::End | Key::Ctrl('e') => self.area.move_cursor(CursorMove::End),
            _ => return false,
        }
        true
    }

    fn insert(&mut self, chars: impl Iterator<Item = char>) {
        for c in chars {
            if self.len() >= self.max_chars {
                return;
            }
            if (self.accept)(c) {
                self.area.insert_char(c);
            }
        }
    }

    fn len(&self) -> usize {
        self.area.lines().first().map_or(0, |l| l.chars().count())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text typed so far (a copy that wipes itself).
    pub fn text(&self) -> Zeroizing<String> {
        Zeroizing::new(self.area.lines().first().cloned().unwrap_or_default())
    }

    /// Empties the field, wiping what it held.
    pub fn clear(&mut self) {
        // Four bytes per character is the most UTF-8 needs.
        let line = String::with_capacity(self.max_chars * 4);
        let mut area = TextArea::new(vec![line]);
        area.set_max_histories(0);
        area.set_cursor_line_style(Style::default());
        area.set_cursor_style(cursor_style(self.focused));
        if let Some(mask) = self.mask {
            area.set_mask_char(mask);
        }
        let old = std::mem::replace(&mut self.area, area);
        for mut line in old.into_lines() {
            line.zeroize();
        }
    }

    /// Only the focused field shows its cursor.
    pub fn set_focused(&mut self, focused: bool) {
        self.focused = focused;
        self.area.set_cursor_style(cursor_style(focused));
    }

    pub fn is_focused(&self) -> bool {
        self.focused
    }

    pub fn widget(&self) -> &TextArea<'static> {
        &self.area
    }
}

fn cursor_style(focused: bool) -> Style {
    if focused {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
    }
}

impl Drop for Field {
    fn drop(&mut self) {
        if self.mask.is_some() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_within_bounds() {
        let mut field = Field::secret(6, |c| c.is_ascii_digit(), '•');
        for c in "12a3456789".chars() {
            field.edit(&Key::Char(c));
        }
        assert_eq!(field.text().as_str(), "123456");
        field.edit(&Key::Backspace);
        field.edit(&Key::Home);
        field.edit(&Key::Delete);
        assert_eq!(field.text().as_str(), "2345");
        assert!(!field.edit(&Key::Enter));
        field.clear();
        assert!(field.is_empty());
    }

    #[test]
    fn paste_is_filtered() {
        let mut field = Field::new(10, |c| !c.is_whitespace());
        field.edit(&Key::Paste(Zeroizing::new(" a b c ".to_string())));
        assert_eq!(field.text().as_str(), "abc");
    }
}
