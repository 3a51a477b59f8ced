//! Safe display of user-controlled text (file names, email addresses).
//!
//! A name may hold bytes a terminal acts on: ESC starting a sequence that
//! clears the screen or retitles the window, C1 controls (U+009B is a CSI on
//! its own), or Unicode bidi overrides that make `exe.txt` look like
//! `txt.exe`. Anything that is not plainly visible is shown as a Rust-style
//! escape (`\x1b`, `\u{202e}`), and the backslash itself as `\\`, so what the
//! user reads is unambiguous and nothing raw reaches the terminal. Spaces
//! that pose as others are escaped too: every space but U+0020 (a no-break
//! space, an ideographic space), and in a name, U+0020 at its start or end
//! (`"a.txt "` reads as `a.txt\x20`, a name of one space as `\x20`).

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
    // A name's own edges: spaces there are invisible. (Whole lines of ours,
    // escaped without backslashes, keep theirs.)
    let (start, end) = if backslashes {
        let inner = text.trim_matches(' ');
        let start = text.len() - text.trim_start_matches(' ').len();
        (start, start + inner.len())
    } else {
        (0, text.len())
    };
    let edge = |at: usize, c: char| c == ' ' && (at < start || at >= end);
    let special =
        |(at, c): (usize, char)| (backslashes && c == '\\') || needs_escape(c) || edge(at, c);
    if !text.char_indices().any(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (at, c) in text.char_indices() {
        if backslashes && c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) || edge(at, c) {
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

/// True for characters that must not be drawn raw anywhere: controls,
/// invisible formats, and spaces other than U+0020.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_format(c) || (c.is_whitespace() && c != ' ')
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
    fn spaces_that_pose_as_others_are_escaped() {
        assert_eq!(escape(" "), "\\x20");
        assert_eq!(escape("  "), "\\x20\\x20");
        assert_eq!(escape("trail.txt "), "trail.txt\\x20");
        assert_eq!(escape(" lead.txt"), "\\x20lead.txt");
        assert_eq!(escape("two words.txt"), "two words.txt");
        assert_eq!(escape("a.txt\u{a0}"), "a.txt\\xa0");
        assert_eq!(escape("\u{3000}"), "\\u{3000}");
        assert_eq!(escape("a\u{2003}b"), "a\\u{2003}b");
        // Lines of ours keep their spaces; other spaces are still shown.
        assert_eq!(escape_controls(" indented "), " indented ");
        assert_eq!(escape_controls("get 'a.txt\u{a0}'"), "get 'a.txt\\xa0'");
        assert_eq!(json_string("a.txt\u{a0}"), "\"a.txt\\u00a0\"");
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
