//! Fitting text into the screen's cells by its display width (a CJK
//! character or an emoji takes two cells, a combining accent none), never
//! by bytes or chars, and the rates the transfers show.

use std::borrow::Cow;

use crate::text::size::human_size;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Marks text cut to fit.
pub const ELLIPSIS: &str = "…";

/// Cells `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// `text` cut to at most `cells` wide, ending in `…` when it was cut.
pub fn fit(text: &str, cells: usize) -> Cow<'_, str> {
    if text.width() <= cells {
        return Cow::Borrowed(text);
    }
    let Some(room) = cells.checked_sub(1) else {
        return Cow::Borrowed("");
    };
    let mut out = String::new();
    let mut used = 0;
    for grapheme in text.graphemes(true) {
        let w = grapheme.width();
        if used + w > room {
            break;
        }
        out.push_str(grapheme);
        used += w;
    }
    out.push_str(ELLIPSIS);
    Cow::Owned(out)
}

/// `text` in lines at most `cells` wide, broken between words, and inside
/// a word only when the word alone is wider than a line.
pub fn wrap(text: &str, cells: usize) -> Vec<String> {
    let cells = cells.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = word.width();
        if used > 0 && used + 1 + w <= cells {
            line.push(' ');
            line.push_str(word);
            used += 1 + w;
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        for grapheme in word.graphemes(true) {
            let g = grapheme.width();
            if used + g > cells && used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push_str(grapheme);
            used += g;
        }
    }
    if used > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `12.3 MiB/s` from bytes moved in `millis` milliseconds; `None` until
/// there is enough time to say.
pub fn human_rate(bytes: u64, millis: u64) -> Option<String> {
    (millis >= 200).then(|| {
        let per_second = u128::from(bytes) * 1000 / u128::from(millis);
        format!(
            "{}/s",
            human_size(u64::try_from(per_second).unwrap_or(u64::MAX))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_by_display_width() {
        assert_eq!(fit("report.pdf", 10), "report.pdf");
        assert_eq!(fit("report.pdf", 9), "report.p…");
        // Two cells per CJK character and emoji: never half of one.
        assert_eq!(fit("日本語ファイル名😀.txt", 7), "日本語…");
        assert_eq!(width(&fit("日本語ファイル名😀.txt", 8)), 7);
        // A combining accent stays with its letter.
        assert_eq!(
            fit("e\u{301}e\u{301}e\u{301}", 3),
            "e\u{301}e\u{301}e\u{301}"
        );
        assert_eq!(fit("e\u{301}e\u{301}e\u{301}x", 3), "e\u{301}e\u{301}…");
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn wrapping_between_words() {
        assert_eq!(
            wrap("added 2026-12-01 08:12 · last used 2026-12-01 08:13", 30),
            ["added 2026-12-01 08:12 · last", "used 2026-12-01 08:13"]
        );
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("日本語ファイル", 5), ["日本", "語フ", "ァイ", "ル"]);
        assert_eq!(wrap("", 5), [""]);
        for line in wrap("a few words of 日本語 in a row that wraps", 7) {
            assert!(width(&line) <= 7, "{line}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(human_rate(10 << 20, 1000).as_deref(), Some("10.0 MiB/s"));
        assert_eq!(human_rate(1000, 100), None);
    }
}
