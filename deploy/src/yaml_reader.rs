//! Reads back the YAML that [`crate::yaml::to_yaml`] writes, so `wsstack
//! local --template` takes a template in either form without a YAML crate.
//!
//! It owns one promise: `parse(&to_yaml(v)) == v` for every JSON value.
//! It reads that block-style subset only (block mappings and sequences, a
//! mapping's first key on its dash's line, plain and double-quoted scalars,
//! `[]` and `{}`, whole-line comments) and refuses anything else (flow
//! collections, tags, anchors, CloudFormation's `!Ref` short forms, block
//! scalars) naming the line, rather than guess.

use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason} (only the YAML of wsstack template is read; JSON is read too)")]
pub struct YamlError {
    pub line: usize,
    pub reason: String,
}

/// The value of a YAML document in `to_yaml`'s subset.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') || (lines.is_empty() && raw == "---") {
            continue;
        }
        if content.starts_with('\t') {
            return Err(error(i + 1, "a tab indents the line"));
        }
        lines.push(Line {
            number: i + 1,
            indent: raw.len() - content.len(),
            content: content.trim_end().to_owned(),
        });
    }
    let mut reader = Reader { lines, pos: 0 };
    let Some(first) = reader.lines.first() else {
        return Err(error(1, "the document is empty"));
    };
    let indent = first.indent;
    let value = if is_block(&first.content) {
        reader.block(indent)?
    } else {
        let line = first.number;
        let content = first.content.clone();
        reader.pos = 1;
        scalar(&content, line)?
    };
    if let Some(extra) = reader.lines.get(reader.pos) {
        return Err(error(
            extra.number,
            "it is outside the document's structure",
        ));
    }
    Ok(value)
}

#[derive(Debug)]
struct Line {
    number: usize,
    indent: usize,
    content: String,
}

struct Reader {
    lines: Vec<Line>,
    pos: usize,
}

fn error(line: usize, reason: impl Into<String>) -> YamlError {
    YamlError {
        line,
        reason: reason.into(),
    }
}

fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// Whether a top-level line starts a mapping or a sequence.
fn is_block(content: &str) -> bool {
    is_item(content) || matches!(split_key(content, 0), Ok(Some(_)))
}

impl Reader {
    /// The mapping or sequence whose lines start at `indent`.
    fn block(&mut self, indent: usize) -> Result<Value, YamlError> {
        match self.lines.get(self.pos) {
            Some(line) if is_item(&line.content) => self.sequence(indent),
            Some(_) => self.mapping(indent),
            None => Err(error(self.last_line(), "a value is missing at the end")),
        }
    }

    fn last_line(&self) -> usize {
        self.lines.last().map_or(1, |l| l.number)
    }

    /// The nested block after `key:` or a lone `-` on line `after`.
    fn nested(&mut self, parent: usize, after: usize) -> Result<Value, YamlError> {
        match self.lines.get(self.pos) {
            Some(line) if line.indent > parent => {
                let indent = line.indent;
                self.block(indent)
            }
            _ => Err(error(after, "a value is missing after it")),
        }
    }

    fn mapping(&mut self, indent: usize) -> Result<Value, YamlError> {
        let mut map = Map::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent {
                break;
            }
            let number = line.number;
            if line.indent > indent || is_item(&line.content) {
                return Err(error(number, "it is indented unlike its mapping"));
            }
            let Some((key, rest)) = split_key(&line.content, number)? else {
                return Err(error(number, "expected a \"key: value\" line"));
            };
            let rest = rest.to_owned();
            self.pos += 1;
            let value = if rest.is_empty() {
                self.nested(indent, number)?
            } else {
                scalar(&rest, number)?
            };
            if map.insert(key.clone(), value).is_some() {
                return Err(error(number, format!("key {key:?} appears twice")));
            }
        }
        Ok(Value::Object(map))
    }

    fn sequence(&mut self, indent: usize) -> Result<Value, YamlError> {
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent {
                break;
            }
            let number = line.number;
            if line.indent > indent || !is_item(&line.content) {
                return Err(error(number, "it is indented unlike its sequence"));
            }
            let rest = line.content[1..].trim_start().to_owned();
            if rest.is_empty() {
                self.pos += 1;
                items.push(self.nested(indent, number)?);
            } else if split_key(&rest, number)?.is_some() {
                // A mapping whose first key sits on the dash's line: read
                // that line as if it were indented under the dash.
                let inner = indent + 2;
                self.lines[self.pos] = Line {
                    number,
                    indent: inner,
                    content: rest,
                };
                items.push(self.mapping(inner)?);
            } else {
                self.pos += 1;
                items.push(scalar(&rest, number)?);
            }
        }
        Ok(Value::Array(items))
    }
}

/// `key: rest` or `key:` (rest empty), or `None` when the line is not a
/// mapping entry.
fn split_key(content: &str, line: usize) -> Result<Option<(String, &str)>, YamlError> {
    let (key, after) = if content.starts_with('"') {
        let (key, used) = quoted(content, line)?;
        (key, &content[used..])
    } else {
        let end = content
            .char_indices()
            .find(|&(i, c)| c == ':' && matches!(content[i + 1..].chars().next(), None | Some(' ')))
            .map(|(i, _)| i);
        match end {
            Some(end) => (content[..end].to_owned(), &content[end..]),
            None => return Ok(None),
        }
    };
    match after.strip_prefix(':') {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
            Ok(Some((key, rest.trim_start())))
        }
        _ => Ok(None),
    }
}

/// A scalar or an empty collection, the whole of `text`.
fn scalar(text: &str, line: usize) -> Result<Value, YamlError> {
    if text.starts_with('"') {
        let (s, used) = quoted(text, line)?;
        if used != text.len() {
            return Err(error(line, "text follows a quoted string"));
        }
        return Ok(Value::String(s));
    }
    match text {
        "null" | "~" => return Ok(Value::Null),
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "[]" => return Ok(Value::Array(Vec::new())),
        "{}" => return Ok(Value::Object(Map::new())),
        _ => {}
    }
    if let Some(n) = number(text) {
        return Ok(Value::Number(n));
    }
    let first = text.chars().next().unwrap_or(' ');
    if "[]{}!&*|>'%@`#,?".contains(first) || (first == '-' && text.len() > 1) {
        let reason = if first == '!' {
            "a tag such as CloudFormation's short form (!Ref, !Sub) is not read: write it in \
             full (Ref:, Fn::Sub:)"
        } else {
            "flow collections, anchors, aliases and block scalars are not read"
        };
        return Err(error(line, reason));
    }
    Ok(Value::String(text.to_owned()))
}

fn number(text: &str) -> Option<Number> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(n.into());
    }
    if digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return text.parse::<f64>().ok().and_then(Number::from_f64);
    }
    None
}

/// The double-quoted string at the start of `text` and how many bytes it
/// took.
fn quoted(text: &str, line: usize) -> Result<(String, usize), YamlError> {
    let mut out = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let hex = |chars: &mut std::iter::Skip<std::str::CharIndices<'_>>, n: usize| {
                    let digits: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    u32::from_str_radix(&digits, 16)
                        .ok()
                        .filter(|_| digits.len() == n)
                        .and_then(char::from_u32)
                        .ok_or_else(|| error(line, format!("bad escape \\{e}{digits}")))
                };
                out.push(match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    other => return Err(error(line, format!("unknown escape \\{other}"))),
                });
            }
            c => out.push(c),
        }
    }
    Err(error(line, "a quoted string is never closed"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wsadmin_core::TableConfig;
    use wsadmin_core::stack::{RouteSpec, StackSpec};

    use super::*;
    use crate::yaml::to_yaml;

    fn round_trip(value: &Value) {
        let text = to_yaml(value);
        assert_eq!(parse(&text).as_ref(), Ok(value), "{text}");
    }

    #[test]
    fn generated_templates_read_back_to_the_same_value() {
        let extra = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "ws-connect"),
                RouteSpec::new("echo", "ws-default").with_route_response(),
                RouteSpec::new("chat.send", "ws-message"),
            ],
            stage: "prod".to_owned(),
            ..StackSpec::default()
        };
        for spec in [StackSpec::default(), extra] {
            let value = crate::template::template(&spec, &TableConfig::new(&spec.table)).unwrap();
            round_trip(&value);
        }
    }

    #[test]
    fn every_shape_and_awkward_scalar_reads_back() {
        round_trip(&json!({
            "plain": "Fn::Sub",
            "reserved": ["yes", "No", "null", "true", "~", "1e5", "0x10", "2024-01-01"],
            "quoted": "a: b # c\n\t\"\\ \u{1} \u{85} \u{2028} \u{feff} \u{1F600} ${x}",
            "empty": "",
            "numbers": [0, -1, 18446744073709551615u64, 1.5, -0.25, 1e300],
            "others": [null, true, false, [], {}],
            "nested": [[1, [2]], [], {"a": {"b": [{"c": 1, "d": [{}]}]}}],
            ":": {"- x": "- y", "\"": "'"},
        }));
        round_trip(&json!("just a string"));
        round_trip(&json!([1, "two", {"three": 3}]));
    }

    #[test]
    fn what_the_subset_does_not_have_is_refused_by_line() {
        let cases = [
            ("a: 1\nb: [1, 2]\n", 2),
            ("Resources:\n  X: !Ref Y\n", 2),
            ("a: &anchor 1\n", 1),
            ("a: |\n  text\n", 1),
            ("a:\n  b: 1\n c: 2\n", 3),
            ("a: \"open\n", 1),
            ("a: 1\na: 2\n", 2),
            ("a:\n", 1),
        ];
        for (text, line) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        assert_eq!(
            parse("").unwrap_err().to_string(),
            "line 1: the document is empty (only the YAML of wsstack template is read; JSON is \
             read too)"
        );
    }

    #[test]
    fn comments_and_a_document_marker_are_skipped() {
        assert_eq!(
            parse("---\n# made by hand\na: 1\n\n  # indented\nb: x\n").unwrap(),
            json!({"a": 1, "b": "x"})
        );
    }
}
