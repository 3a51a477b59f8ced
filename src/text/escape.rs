//! Safe display of user-controlled text (file names, email addresses).
//!
//! A name may hold bytes a terminal acts on: ESC starting a sequence that
//! clears the screen or retitles the window, C1 controls (U+009B is a CSI on
//! its own), or Unicode bidi overrides that make `exe.txt` look like
//! `txt.exe`. Anything that is not plainly visible is shown as a Rust-style
//! escape (`\x1b`, `\u{202e}`), and the backslash itself as `\\`, so what the
//! user reads is unambiguous and nothing raw reaches the terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// Text safe to draw: every invisible or terminal-active character escaped,
/// and backslashes doubled so the escapes are unambiguous.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, true)
}

/// The same escapes, but backslashes left as they are: for text whose
/// backslashes are ours — shell quoting in a command line the user copies
/// (file names cannot hold backslashes), or messages holding names already
/// escaped.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_with(text, false)
}

fn escape_with(text: &str, backslashes: bool) -> Cow<'_, str> {
    let special = |c: char| (backslashes && c == '\\') || needs_escape(c);
    if !text.chars().any(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if backslashes && c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            let code = u32::from(c);
            // Writing to a String cannot fail.
            let _ = if code < 0x100 {
                write!(out, "\\x{code:02x}")
            } else {
                write!(out, "\\u{{{code:x}}}")
            };
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// True for characters that must not be drawn raw.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Format and separator characters that change how text around them looks
/// (direction, joining, line breaks) without being visible themselves.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'                  // soft hyphen
        | '\u{034f}'                // combining grapheme joiner
        | '\u{061c}'                // Arabic letter mark
        | '\u{115f}'..='\u{1160}'   // Hangul fillers
        | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}'   // Mongolian selectors and vowel separator
        | '\u{200b}'..='\u{200f}'   // zero widths, LRM, RLM
        | '\u{2028}'..='\u{202e}'   // line/paragraph separators, bidi embeddings and overrides
        | '\u{2060}'..='\u{206f}'   // word joiner, invisible operators, bidi isolates
        | '\u{3164}'                // Hangul filler
        | '\u{fe00}'..='\u{fe0f}'   // variation selectors
        | '\u{feff}'                // zero-width no-break space (BOM)
        | '\u{ffa0}'                // halfwidth Hangul filler
        | '\u{fff0}'..='\u{fffb}'   // specials, interlinear annotation
        | '\u{fffe}'..='\u{ffff}'   // non-characters
        | '\u{1bca0}'..='\u{1bca3}' // shorthand format controls
        | '\u{1d173}'..='\u{1d17a}' // musical format controls
        | '\u{e0000}'..='\u{e0fff}' // tags and variation selectors supplement
        | '\u{f0000}'..='\u{10ffff}' // private use planes
    )
}

/// `text` as a JSON string literal: exact for a parser, and with JSON's own
/// `\u` escapes for what [`needs_escape`], so a terminal never sees it raw.
pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // JSON's own escapes, so a parser gets the exact name back and
            // a terminal never sees the raw character.
            c if needs_escape(c) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("report 2026.pdf"), Cow::Borrowed(_)));
        assert_eq!(escape("naïve 日本語 😀.txt"), "naïve 日本語 😀.txt");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            escape("evil\x1b[2J\x1b]0;pwned\x07.txt"),
            "evil\\x1b[2J\\x1b]0;pwned\\x07.txt"
        );
        assert_eq!(escape("a\r\nb\tc\0"), "a\\x0d\\x0ab\\x09c\\x00");
        assert_eq!(escape("del\x7f"), "del\\x7f");
        assert_eq!(escape("c1\u{9b}31m"), "c1\\x9b31m");
    }

    #[test]
    fn bidi_and_invisibles_are_escaped() {
        assert_eq!(escape("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(escape("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(escape("\u{feff}bom"), "\\u{feff}bom");
        assert_eq!(escape("line\u{2028}sep"), "line\\u{2028}sep");
    }

    #[test]
    fn backslash_is_unambiguous() {
        // A name that spells an escape must not look like one that holds it.
        assert_eq!(escape("a\\x1bb"), "a\\\\x1bb");
        assert_ne!(escape("a\\x1bb"), escape("a\x1bb"));
    }

    #[test]
    fn controls_only_keeps_backslashes() {
        assert_eq!(escape_controls(r"'it'\''s'"), r"'it'\''s'");
        assert_eq!(escape_controls("'a\x1bb'"), r"'a\x1bb'");
    }

    #[test]
    fn output_never_holds_raw_controls() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let shown = escape(&all);
        assert!(!shown
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c)));
    }
}
