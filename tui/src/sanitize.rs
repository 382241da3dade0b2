//! Text from the outside world (user agents, `$connect` query parameters,
//! messages an operator pastes) made safe to put on the operator's screen.
//!
//! A connecting client chooses its user agent and query string. Written to
//! the terminal raw, an `ESC [ ...` sequence in them could move the cursor,
//! recolour the screen, retitle the window or worse. Every such string goes
//! through [`sanitize`] before it reaches a widget. It must not truncate or
//! reorder: what is left is exactly what the client sent, escaped.

use std::borrow::Cow;
use std::fmt::Write;

/// Escapes control characters (C0, DEL, C1) and the Unicode bidirectional
/// overrides (which can make text read backwards) as `\n`, `\t`, `\r`,
/// `\\` or `\u{..}`. Borrows when there is nothing to escape.
pub fn sanitize(text: &str) -> Cow<'_, str> {
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
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // A backslash only needs escaping when something else does, so that an
    // escaped string cannot be confused with one that was sent escaped; a
    // lone backslash in a clean string is shown as is.
    c.is_control() || is_bidi_control(c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed_unchanged() {
        for s in ["Mozilla/5.0 (X11)", "", "naïve 日本語 🚀", r"C:\path"] {
            assert!(matches!(sanitize(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let evil = "ua\x1b[2J\x1b]0;pwned\x07\u{9b}31m";
        let safe = sanitize(evil);
        assert_eq!(safe, "ua\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{9b}31m");
        assert!(!safe.chars().any(char::is_control));
    }

    #[test]
    fn whitespace_controls_and_backslashes_are_escaped_readably() {
        assert_eq!(sanitize("a\nb\tc\rd\\e\0"), "a\\nb\\tc\\rd\\\\e\\u{0}");
        assert_eq!(sanitize("\x7f"), "\\u{7f}");
    }

    #[test]
    fn bidi_overrides_are_escaped() {
        assert_eq!(sanitize("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
    }
}
