//! A block-style YAML emitter for JSON values, so `wsstack template
//! --format yaml` needs no YAML library: the template is built once as a
//! `serde_json::Value` and only written out here.
//!
//! It owns the one promise that a YAML reader (PyYAML, cfn-lint, the
//! CloudFormation console) reads back exactly the JSON value it was given:
//! a string is written plain only when no YAML 1.1 reader could take it for
//! anything else (a number, a boolean, null, a date, an indicator);
//! everything else is double-quoted with escapes. It never emits tags,
//! anchors or CloudFormation's short forms (`!Ref`): intrinsic functions
//! stay in their long JSON form (`Fn::Sub:`), which every reader accepts.

use std::fmt::Write as _;

use serde_json::Value;

/// The YAML document for `value`, ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

const INDENT: usize = 2;

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (key, value) in map {
        pad(out, indent);
        out.push_str(&string(key));
        out.push(':');
        write_value_after_key(out, value, indent);
    }
}

/// A mapping's value: nested collections on the next lines, scalars and
/// empty collections on the same line.
fn write_value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + INDENT);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent + INDENT);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            // The first key sits on the dash's line, the others under it.
            Value::Object(map) if !map.is_empty() => {
                let mut first = true;
                for (key, value) in map {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        pad(out, indent + INDENT);
                    }
                    out.push_str(&string(key));
                    out.push(':');
                    write_value_after_key(out, value, indent + INDENT);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + INDENT);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar or an empty collection on one line.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// Integers as they are; other numbers in positional notation, because
/// YAML 1.1 reads `1e5` (no dot, no exponent sign) as a string.
fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => {
            let text = f.to_string();
            if text.contains('.') {
                text
            } else {
                format!("{text}.0")
            }
        }
        // serde_json has no non-finite numbers; null is what it would write.
        _ => "null".to_owned(),
    }
}

/// Words that YAML 1.1 (PyYAML, cfn-lint) or 1.2 read as booleans or null.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

/// A string, plain when that is safe, else double-quoted.
fn string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        quoted(s)
    }
}

/// Plain only for a conservative shape: a letter, `_`, `$` or `/` first
/// (so never a number, a date, an indicator or `~`), then letters, digits
/// and `_ - . / $ :`, a `:` never last (a `: ` cannot occur: no spaces), and
/// not a reserved word in any case.
fn is_plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || matches!(first, '_' | '$' | '/')) {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '$' | ':'))
    {
        return false;
    }
    !s.ends_with(':') && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// A double-quoted scalar: `"` and `\` escaped, and every character that
/// YAML does not allow raw or would fold (controls, DEL, C1, line and
/// paragraph separators, the BOM, non-characters) written as an escape.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// YAML's printable set, less what a reader would take as a line break
/// (U+0085, U+2028, U+2029) and the byte-order mark.
fn is_printable(c: char) -> bool {
    matches!(c,
        '\u{20}'..='\u{7E}'
        | '\u{A0}'..='\u{2027}'
        | '\u{202A}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FEFE}'
        | '\u{FF00}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn block_style_maps_and_sequences() {
        let value = json!({
            "A": {"B": 1, "C": [true, "x", {"D": null, "E": []}], "F": {}},
            "G": [["a"], []],
        });
        assert_eq!(
            to_yaml(&value),
            "A:\n  B: 1\n  C:\n    - true\n    - x\n    - D: null\n      E: []\n  F: {}\n\
             G:\n  -\n    - a\n  - []\n"
        );
    }

    #[test]
    fn strings_a_reader_could_mistake_are_quoted() {
        for s in [
            "",
            "true",
            "No",
            "OFF",
            "y",
            "null",
            "~",
            "1",
            "0x1F",
            "1e5",
            "2010-09-09",
            ".inf",
            "-a",
            "a b",
            "a: b",
            "a:",
            "#x",
            "*x",
            "&x",
            "!Ref x",
            "@x",
            "`x",
            "'x",
            "\"x",
            "${Api}",
            "{a}",
            "[a]",
            "a,b",
            "%x",
            "|",
            ">",
            "?x",
            "é",
        ] {
            assert!(string(s).starts_with('"'), "{s:?} is written plain");
        }
        for s in [
            "Fn::GetAtt",
            "dynamodb:PutItem",
            "$default",
            "$request.body.type",
            "integrations/x",
            "provided.al2023",
            "x86_64",
            "NEW_AND_OLD_IMAGES",
        ] {
            assert_eq!(string(s), s);
        }
    }

    #[test]
    fn escapes_what_yaml_does_not_allow_raw() {
        assert_eq!(
            quoted("a\"b\\c\nd\te\u{0}\u{7F}\u{85}\u{2028}\u{FEFF}\u{FFFF}é😀"),
            "\"a\\\"b\\\\c\\nd\\te\\u0000\\u007F\\u0085\\u2028\\uFEFF\\uFFFFé😀\""
        );
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(inline(&json!(14)), "14");
        assert_eq!(inline(&json!(-3)), "-3");
        assert_eq!(inline(&json!(0.5)), "0.5");
        assert_eq!(inline(&json!(1e20)), "100000000000000000000.0");
    }
}
