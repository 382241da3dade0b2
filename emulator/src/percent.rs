//! Percent-decoding as API Gateway reads a path segment or a query
//! parameter: the `percent-encoding` crate, behind the one check it does
//! not make. A `%` not followed by two hex digits is refused (AWS answers
//! 400), where the crate would keep it as text. Only `%XX` is decoded: `+`
//! stays `+`.

use std::borrow::Cow;

/// Why a percent-encoded text has no decoded form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecodable {
    /// A `%` not followed by two hex digits.
    BrokenEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// `text` with its `%XX` escapes decoded, strictly.
pub fn decode(text: &str) -> Result<Cow<'_, str>, Undecodable> {
    let escapes_whole = text.split('%').skip(1).all(|after| {
        after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_whole {
        return Err(Undecodable::BrokenEscape);
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| Undecodable::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_escapes_decode() {
        for (text, decoded) in [
            ("abc%3D", "abc="),
            ("abc%3d", "abc="),
            ("a+b", "a+b"),
            ("%25%25", "%%"),
            ("%2F%20", "/ "),
            ("%C3%A9t%C3%A9", "été"),
            ("", ""),
            ("plain", "plain"),
        ] {
            assert_eq!(decode(text).as_deref(), Ok(decoded), "{text}");
        }
        for text in ["%", "%z", "%zz", "abc%3", "%+1", "a%g0", "%%41", "%2"] {
            assert_eq!(decode(text), Err(Undecodable::BrokenEscape), "{text}");
        }
        for text in ["%ff", "%C3%28", "%e2%82"] {
            assert_eq!(decode(text), Err(Undecodable::NotUtf8), "{text}");
        }
    }

    /// The two hand-written decoders this replaces (sigv4's and the path
    /// id's), kept only to show that the new one decodes and refuses the
    /// same texts.
    fn old_sigv4(text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'%' {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            } else {
                out.push(b);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    fn old_path(raw: &str) -> Result<String, &'static str> {
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'%' {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(decoded) = hex else {
                    return Err("escape");
                };
                out.push(decoded);
                i += 3;
            } else {
                out.push(b);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| "utf8")
    }

    #[test]
    fn decodes_and_refuses_what_the_old_decoders_did() {
        let alphabet = [
            "%", "2", "5", "3", "d", "F", "g", "+", "=", "\u{e9}", "C", "a", "8",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.chars().count() == texts.last().map_or(0, |l| l.chars().count()))
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        for byte in 0..=255_u8 {
            texts.push(format!("%{byte:02X}"));
            texts.push(format!("%{byte:02x}%80"));
            texts.push(format!("%C3%{byte:02x}"));
        }
        assert!(texts.len() > 400_000, "{}", texts.len());
        for text in &texts {
            let new = decode(text);
            assert_eq!(new.as_deref().ok(), old_sigv4(text).as_deref(), "{text:?}");
            let old = old_path(text);
            assert_eq!(new.as_deref().ok(), old.as_deref().ok(), "{text:?}");
            match (new, old) {
                (Err(Undecodable::BrokenEscape), Err("escape"))
                | (Err(Undecodable::NotUtf8), Err("utf8"))
                | (Ok(_), Ok(_)) => {}
                (new, old) => panic!("{text:?}: {new:?} vs {old:?}"),
            }
        }
    }
}
