//! Raw bytes from an SSH pty to key events.
//!
//! The client's terminal sends what the user types as bytes: printable UTF-8,
//! C0 control bytes for Ctrl-letters, and escape sequences (CSI `ESC [`, SS3
//! `ESC O`) for the special keys. An ESC that ends a chunk on its own is the
//! Esc key (terminals write each key's sequence at once); a sequence cut
//! short is kept and the caller resolves it with [`Parser::flush_pending`]
//! after a short quiet time ([`ESC_TIMEOUT`]). ESC followed by anything
//! that does not start a key sequence is the Esc key followed by what was
//! typed (nothing here is bound to Alt, so no typed character is ever
//! swallowed as an Alt-key). Everything is bounded and unknown sequences
//! are dropped: no byte string can make the parser grow without limit or
//! panic.

use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

/// How long an incomplete escape sequence may wait for its next byte before
/// it is read as a lone Esc and what followed it. Sequences from one key press arrive
/// in one SSH packet, so this only needs to cover network jitter.
pub const ESC_TIMEOUT: Duration = Duration::from_millis(60);

/// Longest escape sequence kept while waiting for its end; longer ones are
/// not keys and are dropped.
const MAX_SEQUENCE: usize = 64;

/// Most characters of one bracketed paste kept; the rest is dropped (the
/// longest thing anyone pastes here is an email address or a 44-character
/// key).
const MAX_PASTE_CHARS: usize = 4096;

const PASTE_END: &[u8] = b"\x1b[201~";

/// A key press (or a paste) as the application sees it.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    Char(char),
    /// Ctrl plus a letter, lower case (`Ctrl('c')`).
    Ctrl(char),
    Enter,
    Tab,
    BackTab,
    Backspace,
    Esc,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    Delete,
    F(u8),
    /// A bracketed paste, control characters removed. It may hold a file key,
    /// so it is wiped when dropped.
    Paste(Zeroizing<String>),
}

// Never print what a paste holds.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Char(c) => write!(f, "Char({c:?})"),
            Key::Ctrl(c) => write!(f, "Ctrl({c:?})"),
            Key::F(n) => write!(f, "F({n})"),
            Key::Paste(text) => write!(f, "Paste({} chars)", text.chars().count()),
            Key::Enter => f.write_str("Enter"),
            Key::Tab => f.write_str("Tab"),
            Key::BackTab => f.write_str("BackTab"),
            Key::Backspace => f.write_str("Backspace"),
            Key::Esc => f.write_str("Esc"),
            Key::Up => f.write_str("Up"),
            Key::Down => f.write_str("Down"),
            Key::Left => f.write_str("Left"),
            Key::Right => f.write_str("Right"),
            Key::Home => f.write_str("Home"),
            Key::End => f.write_str("End"),
            Key::PageUp => f.write_str("PageUp"),
            Key::PageDown => f.write_str("PageDown"),
            Key::Insert => f.write_str("Insert"),
            Key::Delete => f.write_str("Delete"),
        }
    }
}

/// The byte-to-key state machine of one session.
#[derive(Default)]
pub struct Parser {
    /// Bytes of an unfinished escape sequence or UTF-8 character.
    pending: Vec<u8>,
    /// Inside a bracketed paste: the text so far.
    paste: Option<Zeroizing<String>>,
    /// Characters in `paste`, for the bound.
    paste_chars: usize,
    /// A paste's undecoded tail (a split UTF-8 character or a partial end
    /// marker).
    paste_tail: Vec<u8>,
    /// The last byte was a CR, so a following LF is the same Enter.
    after_cr: bool,
}

impl Drop for Parser {
    fn drop(&mut self) {
        self.pending.zeroize();
        self.paste_tail.zeroize();
    }
}

/// Outcome of looking at the start of the pending bytes.
enum Step {
    /// `n` bytes used, maybe giving a key.
    Used(usize, Option<Key>),
    /// A bracketed paste starts after `n` bytes.
    PasteStart(usize),
    /// More bytes are needed to decide.
    Incomplete,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// True when bytes wait for more input; call [`flush_pending`](Self::flush_pending)
    /// after [`ESC_TIMEOUT`] without new bytes.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Parses a chunk of input into keys.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        let mut rest = bytes;
        loop {
            if self.paste.is_some() {
                rest = self.feed_paste(rest, &mut keys);
                if self.paste.is_some() {
                    return keys;
                }
                continue;
            }
            if rest.is_empty() && self.pending.is_empty() {
                return keys;
            }
            // Move new bytes behind any pending ones, a bounded amount at a
            // time so a huge chunk never doubles in memory.
            let take = rest
                .len()
                .min(MAX_SEQUENCE.saturating_sub(self.pending.len()).max(1));
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.drain(&mut keys);
            if rest.is_empty() && self.paste.is_none() {
                // A terminal sends a whole key sequence in one write, so an
                // ESC that ends the input on its own is the Esc key; only a
                // sequence cut short waits for the timeout.
                if self.pending == [0x1b] {
                    self.pending.clear();
                    keys.push(Key::Esc);
                }
                return keys;
            }
        }
    }

    /// Resolves what waited for more bytes: `ESC [` or `ESC O` alone is
    /// Esc and that character as typed, anything else unfinished is
    /// dropped.
    pub fn flush_pending(&mut self) -> Vec<Key> {
        let mut pending = std::mem::take(&mut self.pending);
        let keys = match pending.as_slice() {
            [0x1b, b @ (b'[' | b'O')] => vec![Key::Esc, Key::Char(char::from(*b))],
            _ => Vec::new(),
        };
        pending.zeroize();
        keys
    }

    /// Turns pending bytes into keys as far as they are complete.
    fn drain(&mut self, keys: &mut Vec<Key>) {
        while !self.pending.is_empty() {
            match self.step() {
                Step::Used(n, key) => {
                    self.pending.drain(..n);
                    if let Some(key) = key {
                        keys.push(key);
                    }
                }
                Step::PasteStart(n) => {
                    self.pending.drain(..n);
                    self.paste = Some(Zeroizing::new(String::new()));
                    self.paste_chars = 0;
                    self.after_cr = false;
                    // The paste's first bytes may already be pending.
                    let bytes = std::mem::take(&mut self.pending);
                    let leftover = self.feed_paste(&bytes, keys).to_vec();
                    self.pending = leftover;
                    let mut bytes = bytes;
                    bytes.zeroize();
                    if self.paste.is_some() {
                        return;
                    }
                }
                Step::Incomplete => {
                    // Too long to be a key: drop it.
                    if self.pending.len() >= MAX_SEQUENCE {
                        self.pending.clear();
                    }
                    return;
                }
            }
        }
    }

    /// Reads one key (or a non-key to skip) from the front of `pending`.
    fn step(&mut self) -> Step {
        let bytes = &self.pending;
        let first = bytes[0];
        let after_cr = std::mem::replace(&mut self.after_cr, first == b'\r');
        let key = match first {
            0x1b => return self.escape(),
            b'\r' => Some(Key::Enter),
            b'\n' if after_cr => None,
            b'\n' => Some(Key::Enter),
            b'\t' => Some(Key::Tab),
            0x7f | 0x08 => Some(Key::Backspace),
            0x01..=0x1a => Some(Key::Ctrl(char::from(b'a' + first - 1))),
            0x00 | 0x1c..=0x1f => None,
            0x20..=0x7e => Some(Key::Char(char::from(first))),
            _ => {
                return utf8_char(bytes)
                    .map_or(Step::Incomplete, |(n, c)| Step::Used(n, c.map(Key::Char)))
            }
        };
        Step::Used(1, key)
    }

    /// Bytes starting with ESC.
    fn escape(&self) -> Step {
        let bytes = &self.pending;
        let Some(&second) = bytes.get(1) else {
            return Step::Incomplete;
        };
        match second {
            b'[' => csi(bytes),
            b'O' => match bytes.get(2).map(|&b| ss3_key(b)) {
                None => Step::Incomplete,
                Some(Some(key)) => Step::Used(3, Some(key)),
                // Not a key sequence: Esc, then "O" as typed.
                Some(None) => Step::Used(1, Some(Key::Esc)),
            },
            // An OSC string is a terminal report, never a key: skip to its
            // terminator.
            b']' => string_sequence(bytes),
            // Esc and then whatever was typed right after it.
            _ => Step::Used(1, Some(Key::Esc)),
        }
    }

    /// Consumes paste content up to the end marker; returns the bytes after
    /// it (empty while the paste goes on). Works a bounded piece at a time:
    /// only a possible start of the end marker or of a UTF-8 character is
    /// carried over between pieces.
    fn feed_paste<'a>(&mut self, mut bytes: &'a [u8], keys: &mut Vec<Key>) -> &'a [u8] {
        while self.paste.is_some() && !bytes.is_empty() {
            let take = bytes.len().min(1024);
            let mut data = Zeroizing::new(std::mem::take(&mut self.paste_tail));
            let carried = data.len();
            data.extend_from_slice(&bytes[..take]);
            if let Some(at) = find(&data, PASTE_END) {
                self.push_paste_text(&data[..at]);
                let used = at + PASTE_END.len() - carried;
                if let Some(text) = self.paste.take() {
                    if !text.is_empty() {
                        keys.push(Key::Paste(text));
                    }
                }
                self.paste_chars = 0;
                return &bytes[used..];
            }
            let keep = (1..PASTE_END.len())
                .rev()
                .find(|&n| data.ends_with(&PASTE_END[..n]))
                .unwrap_or(0);
            let cut = utf8_boundary(&data[..data.len() - keep]);
            self.push_paste_text(&data[..cut]);
            self.paste_tail = data[cut..].to_vec();
            bytes = &bytes[take..];
        }
        bytes
    }

    /// Appends pasted bytes as text: control characters are dropped (a
    /// paste is data, never keys), invalid UTF-8 is dropped, and the length
    /// is bounded.
    fn push_paste_text(&mut self, bytes: &[u8]) {
        let Some(paste) = self.paste.as_mut() else {
            return;
        };
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                if self.paste_chars >= MAX_PASTE_CHARS {
                    return;
                }
                if c.is_control() {
                    continue;
                }
                // Grow by hand so no copy of the text is left behind in a
                // freed allocation.
                if paste.len() + c.len_utf8() > paste.capacity() {
                    let mut bigger = String::with_capacity((paste.capacity() * 2).max(64));
                    bigger.push_str(paste);
                    **paste = bigger;
                }
                paste.push(c);
                self.paste_chars += 1;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Length of the longest prefix that does not end inside a UTF-8 character.
fn utf8_boundary(bytes: &[u8]) -> usize {
    let start = bytes.len().saturating_sub(3);
    for i in (start..bytes.len()).rev() {
        let b = bytes[i];
        if b & 0xc0 != 0x80 {
            let need = match b {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
            return if bytes.len() - i < need {
                i
            } else {
                bytes.len()
            };
        }
    }
    bytes.len()
}

/// Decodes one UTF-8 character from the front: `None` if it is unfinished,
/// `Some((n, None))` to skip `n` invalid bytes, `Some((n, Some(c)))` for a
/// character (C1 controls are skipped: they are never typed text).
fn utf8_char(bytes: &[u8]) -> Option<(usize, Option<char>)> {
    let need = match bytes.first()? {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Some((1, None)),
    };
    if bytes.len() < need {
        // Reject early what can never become valid, so garbage does not wait.
        return match std::str::from_utf8(bytes) {
            Err(e) if e.error_len().is_some() => Some((1, None)),
            _ => None,
        };
    }
    match std::str::from_utf8(&bytes[..need]) {
        Ok(s) => {
            let c = s.chars().next()?;
            Some((need, (!c.is_control()).then_some(c)))
        }
        Err(_) => Some((1, None)),
    }
}

/// `ESC [` sequences: parameters, intermediates, one final byte.
fn csi(bytes: &[u8]) -> Step {
    // Legacy X10 mouse report: ESC [ M and three raw bytes.
    if bytes.get(2) == Some(&b'M') {
        return if bytes.len() < 6 {
            Step::Incomplete
        } else {
            Step::Used(6, None)
        };
    }
    for (i, &b) in bytes.iter().enumerate().skip(2) {
        match b {
            0x20..=0x3f => continue,
            0x40..=0x7e => {
                let params = &bytes[2..i];
                if b == b'~' && params == b"200" {
                    return Step::PasteStart(i + 1);
                }
                return Step::Used(i + 1, csi_key(params, b));
            }
            // A control byte cuts the sequence short: drop what came before.
            _ => return Step::Used(i, None),
        }
    }
    Step::Incomplete
}

fn csi_key(params: &[u8], last: u8) -> Option<Key> {
    // The first parameter names the key; a second one (`1;5A`) carries
    // modifiers, which are ignored except Shift-Tab.
    let first = params.split(|&b| b == b';').next().unwrap_or_default();
    let number = std::str::from_utf8(first)
        .ok()
        .and_then(|s| s.parse::<u16>().ok());
    Some(match last {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        b'Z' => Key::BackTab,
        b'P' if params.is_empty() || number == Some(1) => Key::F(1),
        b'Q' if params.is_empty() || number == Some(1) => Key::F(2),
        b'S' if params.is_empty() || number == Some(1) => Key::F(4),
        b'~' => match number? {
            1 | 7 => Key::Home,
            2 => Key::Insert,
            3 => Key::Delete,
            4 | 8 => Key::End,
            5 => Key::PageUp,
            6 => Key::PageDown,
            n @ 11..=15 => Key::F((n - 10) as u8),
            n @ 17..=21 => Key::F((n - 11) as u8),
            n @ 23..=24 => Key::F((n - 12) as u8),
            _ => return None,
        },
        _ => return None,
    })
}

fn ss3_key(b: u8) -> Option<Key> {
    Some(match b {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        b'M' => Key::Enter,
        b'P' => Key::F(1),
        b'Q' => Key::F(2),
        b'R' => Key::F(3),
        b'S' => Key::F(4),
        _ => return None,
    })
}

/// Skips an OSC/DCS/… string up to BEL or ST (`ESC \`).
fn string_sequence(bytes: &[u8]) -> Step {
    let mut i = 2;
    while i < bytes.len() {
        match bytes[i] {
            0x07 => return Step::Used(i + 1, None),
            0x1b => match bytes.get(i + 1) {
                Some(b'\\') => return Step::Used(i + 2, None),
                Some(_) => return Step::Used(i, None),
                None => return Step::Incomplete,
            },
            _ => i += 1,
        }
    }
    Step::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut parser = Parser::new();
        let mut keys = parser.feed(bytes);
        keys.extend(parser.flush_pending());
        keys
    }

    #[test]
    fn printable_and_utf8() {
        assert_eq!(
            keys("aZ é€😀".as_bytes()),
            vec![
                Key::Char('a'),
                Key::Char('Z'),
                Key::Char(' '),
                Key::Char('é'),
                Key::Char('€'),
                Key::Char('😀')
            ]
        );
    }

    #[test]
    fn utf8_split_across_chunks() {
        let mut parser = Parser::new();
        let bytes = "€".as_bytes();
        assert!(parser.feed(&bytes[..1]).is_empty());
        assert!(parser.feed(&bytes[1..2]).is_empty());
        assert_eq!(parser.feed(&bytes[2..]), vec![Key::Char('€')]);
    }

    #[test]
    fn controls() {
        assert_eq!(
            keys(b"\r\n\t\x7f\x08\x03\x01\x1a"),
            vec![
                Key::Enter,
                Key::Tab,
                Key::Backspace,
                Key::Backspace,
                Key::Ctrl('c'),
                Key::Ctrl('a'),
                Key::Ctrl('z')
            ]
        );
        assert_eq!(keys(b"\n\n"), vec![Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\r\r"), vec![Key::Enter, Key::Enter]);
    }

    #[test]
    fn special_keys() {
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[5~\x1b[6~\x1b[3~\x1b[Z\x1b[1;5C\x1b[15~"),
            vec![
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Up,
                Key::Home,
                Key::End,
                Key::Home,
                Key::End,
                Key::PageUp,
                Key::PageDown,
                Key::Delete,
                Key::BackTab,
                Key::Right,
                Key::F(5)
            ]
        );
    }

    #[test]
    fn lone_escape_and_alt() {
        let mut parser = Parser::new();
        assert_eq!(parser.feed(b"\x1b"), vec![Key::Esc]);
        assert!(!parser.has_pending());
        assert_eq!(parser.feed(b"u"), vec![Key::Char('u')]);
        // Esc and text typed at once: every character still arrives.
        assert_eq!(
            keys(b"\x1bxy"),
            vec![Key::Esc, Key::Char('x'), Key::Char('y')]
        );
        assert_eq!(
            keys("\x1bPé".as_bytes()),
            vec![Key::Esc, Key::Char('P'), Key::Char('é')]
        );
        assert_eq!(
            keys(b"\x1bOther"),
            vec![
                Key::Esc,
                Key::Char('O'),
                Key::Char('t'),
                Key::Char('h'),
                Key::Char('e'),
                Key::Char('r')
            ]
        );
        assert_eq!(keys(b"\x1b\x1b"), vec![Key::Esc, Key::Esc]);
        assert_eq!(keys(b"\x1b["), vec![Key::Esc, Key::Char('[')]);
        // An escape sequence split across packets still parses...
        let mut parser = Parser::new();
        assert!(parser.feed(b"\x1b[").is_empty());
        assert!(parser.has_pending());
        assert_eq!(parser.feed(b"A"), vec![Key::Up]);
        // ...and one that never ends is dropped after the timeout.
        assert!(parser.feed(b"\x1b[1;").is_empty());
        assert_eq!(parser.flush_pending(), Vec::new());
        assert!(!parser.has_pending());
    }

    #[test]
    fn unknown_sequences_are_dropped() {
        assert_eq!(keys(b"\x1b[999~a"), vec![Key::Char('a')]);
        assert_eq!(keys(b"\x1b]0;title\x07b"), vec![Key::Char('b')]);
        assert_eq!(keys(b"\x1b]0;title\x1b\\c"), vec![Key::Char('c')]);
        assert_eq!(keys(b"\x1b[<0;1;2Md"), vec![Key::Char('d')]);
        assert_eq!(keys(b"\xc2\x9b\xffe"), vec![Key::Char('e')]);
    }

    #[test]
    fn bracketed_paste() {
        let got = keys(b"x\x1b[200~key q\r\nd\x1b[3~\x1b[201~y");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Key::Char('x'));
        match &got[1] {
            Key::Paste(text) => assert_eq!(text.as_str(), "key qd[3~"),
            other => panic!("expected a paste, got {other:?}"),
        }
        assert_eq!(got[2], Key::Char('y'));
        // Split anywhere, even inside the end marker and a character — but
        // not right after the opening ESC, which alone at the end of a chunk
        // is the Esc key.
        let all = "\x1b[200~ké€y\x1b[201~z".as_bytes();
        for cut in (0..all.len()).filter(|&cut| cut != 1) {
            let mut parser = Parser::new();
            let mut got = parser.feed(&all[..cut]);
            got.extend(parser.feed(&all[cut..]));
            got.extend(parser.flush_pending());
            let texts: Vec<String> = got
                .iter()
                .map(|k| match k {
                    Key::Paste(t) => t.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(
                texts,
                vec!["ké€y".to_string(), "Char('z')".to_string()],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn paste_is_bounded() {
        let mut bytes = b"\x1b[200~".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', 100_000));
        bytes.extend_from_slice(b"\x1b[201~");
        match keys(&bytes).as_slice() {
            [Key::Paste(text)] => assert_eq!(text.len(), MAX_PASTE_CHARS),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded() {
        // A small xorshift keeps the test deterministic without a dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parser = Parser::new();
        for round in 0..20_000 {
            let len = (next() % 40) as usize;
            let interesting = b"[O~;0123456789ABMPZ\x07\\]";
            let mut bytes = Vec::new();
            for _ in 0..len {
                let r = next();
                // Bias towards the bytes and sequences that drive the state
                // machine.
                match r % 16 {
                    0..=3 => bytes.push(0x1b),
                    4..=7 => bytes.push(interesting[(r >> 8) as usize % interesting.len()]),
                    8 => bytes.extend_from_slice(b"\x1b[200~"),
                    9 => bytes.extend_from_slice(PASTE_END),
                    _ => bytes.push((r >> 16) as u8),
                }
            }
            parser.feed(&bytes);
            if round % 7 == 0 {
                parser.flush_pending();
            }
            assert!(parser.pending.len() <= MAX_SEQUENCE);
            assert!(parser.paste_tail.len() <= MAX_SEQUENCE + PASTE_END.len());
            assert!(parser
                .paste
                .as_ref()
                .is_none_or(|p| p.chars().count() <= MAX_PASTE_CHARS));
        }
    }
}
