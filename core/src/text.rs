//! Text from the outside world (user agents, `$connect` query parameters,
//! messages) made safe to put on an operator's terminal. A connecting client
//! chooses its user agent and query string; written raw, an `ESC [ …`
//! sequence in them could move the cursor, recolour the screen or retitle
//! the window, and a bidirectional override can make text read backwards.
//! The CLI's tables and the dashboard both print through [`escape_control`];
//! JSON output does not (it is exact, and JSON escapes control characters).

use std::borrow::Cow;
use std::fmt::Write;

/// Escapes control characters (C0, DEL, C1) and Unicode bidirectional
/// controls: `\n`, `\r`, `\t`, `\x1b` for the other ASCII ones, `\u{202e}`
/// beyond. When anything is escaped, backslashes are doubled too, so an
/// escaped string cannot pass for one that was sent escaped. Never truncates
/// or reorders; borrows when there is nothing to escape.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` quoted as `{:?}` does, cut after `max` characters with `…` and
/// how long it was: an id pasted wrong (a whole log line, a file) names
/// itself in a message without flooding the terminal.
pub fn cut_quoted(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &text[..end], text.len()),
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_in_messages() {
        assert_eq!(cut_quoted("a/b", 64), "\"a/b\"");
        let long = "x".repeat(10_000);
        let cut = cut_quoted(&long, 64);
        assert_eq!(cut, format!("\"{}\"… (10000 bytes)", "x".repeat(64)));
        assert_eq!(cut_quoted("ñññ", 2), "\"ññ\"… (6 bytes)");
    }

    #[test]
    fn clean_text_is_borrowed_unchanged() {
        for s in ["Mozilla/5.0 (X11)", "", "naïve 日本語 🚀", r"C:\path"] {
            assert!(
                matches!(escape_control(s), Cow::Borrowed(b) if b == s),
                "{s}"
            );
        }
    }

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let evil = "ua\x1b[2J\x1b]0;pwned\x07\u{9b}31m";
        let safe = escape_control(evil);
        assert_eq!(safe, "ua\\x1b[2J\\x1b]0;pwned\\x07\\u{9b}31m");
        assert!(!safe.chars().any(char::is_control));
    }

    #[test]
    fn whitespace_controls_and_backslashes_are_escaped_readably() {
        assert_eq!(escape_control("a\nb\tc\rd\\e\0"), "a\\nb\\tc\\rd\\\\e\\x00");
        assert_eq!(escape_control("\x7f"), "\\x7f");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(escape_control("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(escape_control("a\u{200f}b"), "a\\u{200f}b");
    }
}
