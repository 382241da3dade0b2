//! A template's text (YAML, or JSON, which is YAML) as a `serde_json::Value`
//! and the line of every value in it, through saphyr-parser's events.
//!
//! Owns what YAML adds to JSON: CloudFormation's short forms become their
//! long forms (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` →
//! `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` → `{"Fn::Sub": s}`, any other
//! `!Name v` → `{"Fn::Name": v}`, so the resolver can refuse an unsupported
//! one by name); plain scalars are read by YAML 1.2's core schema (null,
//! booleans, numbers, else text); flow collections, block scalars, anchors,
//! aliases and merge keys (`<<: *base`) are read as YAML defines them. A
//! key that appears twice in one mapping, a tag of another vocabulary, or a
//! second document is refused naming the line.
//!
//! It must not know what a template means: no intrinsics are evaluated.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// A parsed template: its value and where each part of it was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub value: Value,
    pub lines: Lines,
}

impl Document {
    /// A value without lines (a template built in memory, or read as JSON
    /// by serde_json): errors name no line.
    pub fn from_value(value: Value) -> Self {
        Self {
            value,
            lines: Lines::default(),
        }
    }
}

/// The 1-based line of values, by JSON pointer (`/Resources/Fn/Properties`).
/// A value of a mapping is on its key's line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines(HashMap<String, usize>);

impl Lines {
    /// The line of the value at `pointer`, else of the nearest value that
    /// holds it (an alias's copy, a merged key or a short form's argument
    /// has the line of what was written).
    pub fn line(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(line) = self.0.get(p) {
                return Some(*line);
            }
            p = &p[..p.rfind('/')?];
        }
    }
}

/// `base` extended by one key or index, escaped as RFC 6901 says.
pub fn child(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct YamlError {
    pub line: usize,
    pub reason: String,
}

fn error(line: usize, reason: impl Into<String>) -> YamlError {
    YamlError {
        line,
        reason: reason.into(),
    }
}

/// The one document of `text`.
pub fn parse(text: &str) -> Result<Document, YamlError> {
    let mut builder = Builder::default();
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| error(e.marker().line(), e.info()))?;
        let line = span.start.line();
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(error(
                        line,
                        "a second document (a template is one document)",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_deref(), line)?;
                let plain_merge = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
                builder.value(value, anchor, line, plain_merge)?;
            }
            Event::Alias(id) => {
                let value = builder
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| error(line, "an alias of an anchor not yet defined"))?;
                builder.value(value, 0, line, false)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let pointer = builder.start(line)?;
                builder.stack.push(Frame {
                    kind: Kind::Sequence(Vec::new()),
                    anchor,
                    tag: tag.map(|t| t.into_owned()),
                    line,
                    pointer,
                });
            }
            Event::MappingStart(anchor, tag) => {
                let pointer = builder.start(line)?;
                builder.stack.push(Frame {
                    kind: Kind::Mapping {
                        map: Map::new(),
                        key: None,
                        merges: Vec::new(),
                    },
                    anchor,
                    tag: tag.map(|t| t.into_owned()),
                    line,
                    pointer,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = builder.stack.pop().expect("the parser balances its events");
                let value = match frame.kind {
                    Kind::Sequence(items) => Value::Array(items),
                    Kind::Mapping {
                        mut map, merges, ..
                    } => {
                        for merged in merges {
                            for (k, v) in merged {
                                map.entry(k).or_insert(v);
                            }
                        }
                        Value::Object(map)
                    }
                };
                let value = match &frame.tag {
                    Some(tag) => tagged(tag, value, frame.line)?,
                    None => value,
                };
                builder.finish(value, frame.anchor, frame.line)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    let value = builder
        .root
        .ok_or_else(|| error(1, "the document is empty"))?;
    Ok(Document {
        value,
        lines: Lines(builder.lines),
    })
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    lines: HashMap<String, usize>,
    root: Option<Value>,
}

struct Frame {
    kind: Kind,
    anchor: usize,
    tag: Option<Tag>,
    line: usize,
    pointer: String,
}

enum Kind {
    Sequence(Vec<Value>),
    Mapping {
        map: Map<String, Value>,
        /// The key read, waiting for its value (`None` for a merge key).
        key: Option<Option<String>>,
        /// The mappings of `<<` keys, merged under the mapping's own keys.
        merges: Vec<Map<String, Value>>,
    },
}

impl Builder {
    /// Where the value starting now goes, and its line noted.
    fn start(&mut self, line: usize) -> Result<String, YamlError> {
        let pointer = match self.stack.last() {
            None => String::new(),
            Some(Frame {
                kind: Kind::Sequence(items),
                pointer,
                ..
            }) => child(pointer, &items.len().to_string()),
            Some(Frame {
                kind: Kind::Mapping { key: None, .. },
                ..
            }) => return Err(error(line, "a mapping key must be a plain value")),
            Some(Frame {
                kind: Kind::Mapping { key: Some(key), .. },
                pointer,
                ..
            }) => match key {
                Some(key) => child(pointer, key),
                None => child(pointer, "<<"),
            },
        };
        self.lines.entry(pointer.clone()).or_insert(line);
        Ok(pointer)
    }

    /// A scalar or an alias: a mapping's key, or a value.
    fn value(
        &mut self,
        value: Value,
        anchor: usize,
        line: usize,
        plain_merge: bool,
    ) -> Result<(), YamlError> {
        if let Some(Frame {
            kind: Kind::Mapping { map, key, .. },
            pointer,
            ..
        }) = self.stack.last_mut()
            && key.is_none()
        {
            if plain_merge {
                *key = Some(None);
                return Ok(());
            }
            let name = match value {
                Value::String(s) => s,
                Value::Null => "null".to_owned(),
                other @ (Value::Bool(_) | Value::Number(_)) => other.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(error(line, "a mapping key must be a plain value"));
                }
            };
            if map.contains_key(&name) {
                return Err(error(
                    line,
                    format!("key \"{name}\" appears twice in one mapping"),
                ));
            }
            self.lines.insert(child(pointer, &name), line);
            *key = Some(Some(name));
            return Ok(());
        }
        self.start(line)?;
        self.finish(value, anchor, line)
    }

    /// A whole value, delivered to what holds it.
    fn finish(&mut self, value: Value, anchor: usize, line: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame {
                kind: Kind::Sequence(items),
                ..
            }) => items.push(value),
            Some(Frame {
                kind: Kind::Mapping { map, key, merges },
                ..
            }) => match key.take() {
                Some(Some(name)) => {
                    map.insert(name, value);
                }
                Some(None) => match value {
                    Value::Object(m) => merges.push(m),
                    Value::Array(items) if items.iter().all(Value::is_object) => {
                        merges.extend(items.into_iter().filter_map(|v| match v {
                            Value::Object(m) => Some(m),
                            _ => None,
                        }));
                    }
                    _ => {
                        return Err(error(
                            line,
                            "a merge key (<<) takes a mapping or a list of mappings",
                        ));
                    }
                },
                None => unreachable!("a key is read before its value"),
            },
        }
        Ok(())
    }
}

/// YAML 1.2's tag for its own types, `!!str` and the like.
const CORE: &str = "tag:yaml.org,2002:";

fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    line: usize,
) -> Result<Value, YamlError> {
    let Some(tag) = tag else {
        return Ok(match style {
            ScalarStyle::Plain => plain(text),
            _ => Value::String(text.to_owned()),
        });
    };
    if tag.handle == CORE {
        let value = match tag.suffix.as_str() {
            "str" => Value::String(text.to_owned()),
            "null" | "bool" | "int" | "float" => plain(text),
            _ => Value::String(text.to_owned()),
        };
        return Ok(value);
    }
    tagged(tag, Value::String(text.to_owned()), line)
}

/// A short form's long form; any other tag is refused.
fn tagged(tag: &Tag, value: Value, line: usize) -> Result<Value, YamlError> {
    if tag.handle == CORE {
        return Ok(value);
    }
    let name = tag.suffix.as_str();
    let short_form =
        tag.handle == "!" && !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if !short_form {
        return Err(error(
            line,
            format!(
                "tag {} is not a CloudFormation short form (such as !Ref or !Sub)",
                if tag.handle.is_empty() {
                    format!("!<{}>", tag.suffix)
                } else {
                    format!("{}{}", tag.handle, tag.suffix)
                }
            ),
        ));
    }
    let (key, value) = match (name, value) {
        ("Ref" | "Condition", value) => (name.to_owned(), value),
        ("GetAtt", Value::String(dotted)) => {
            let parts = match dotted.split_once('.') {
                Some((resource, attribute)) => vec![resource.into(), attribute.into()],
                None => vec![Value::String(dotted)],
            };
            ("Fn::GetAtt".to_owned(), Value::Array(parts))
        }
        (_, value) => (format!("Fn::{name}"), value),
    };
    Ok(Value::Object(Map::from_iter([(key, value)])))
}

/// A plain scalar by YAML 1.2's core schema.
fn plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    number(text).map_or_else(|| Value::String(text.to_owned()), Value::Number)
}

fn number(text: &str) -> Option<Number> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits(unsigned) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Some(n.into());
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Number::from);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(Number::from);
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    if !mantissa_ok || exponent.is_some_and(|e| !digits(e)) {
        return None;
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wsadmin_core::TableConfig;
    use wsadmin_core::stack::{RouteSpec, StackSpec};

    use super::*;
    use crate::yaml::to_yaml;

    fn value(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).value
    }

    fn round_trip(v: &Value) {
        let text = to_yaml(v);
        assert_eq!(&value(&text), v, "{text}");
    }

    #[test]
    fn what_wsstack_template_writes_reads_back_to_the_same_value() {
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
            let v = crate::template::template(&spec, &TableConfig::new(&spec.table)).unwrap();
            round_trip(&v);
            // JSON is YAML: the same parser reads the JSON form.
            assert_eq!(value(&serde_json::to_string_pretty(&v).unwrap()), v);
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
    fn short_forms_become_long_forms() {
        let text = "\
a: !Ref Table
b: !GetAtt Fn.Arn
c: !GetAtt [Fn, Arn]
d: !Sub 'arn:${AWS::Region}'
e: !Join ['', [a, !Ref B]]
f: !If [IsProd, !Ref X, !Ref 'AWS::NoValue']
g: !Equals [!Ref Env, prod]
h: !ImportValue Shared
i: !Condition IsProd
j: !Select [0, !GetAZs '']
";
        assert_eq!(
            value(text),
            json!({
                "a": {"Ref": "Table"},
                "b": {"Fn::GetAtt": ["Fn", "Arn"]},
                "c": {"Fn::GetAtt": ["Fn", "Arn"]},
                "d": {"Fn::Sub": "arn:${AWS::Region}"},
                "e": {"Fn::Join": ["", ["a", {"Ref": "B"}]]},
                "f": {"Fn::If": ["IsProd", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]},
                "g": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "h": {"Fn::ImportValue": "Shared"},
                "i": {"Condition": "IsProd"},
                "j": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
            })
        );
    }

    #[test]
    fn flow_collections_block_scalars_anchors_and_merge_keys_are_read() {
        let text = "\
env: &env { Variables: { TABLE: !Ref T, N: 3 } }
code: |
  def handler(event, context):
      return event
folded: >
  one
  two
again: *env
base: &base { Runtime: nodejs20.x, Timeout: 10 }
fn:
  <<: *base
  Timeout: 30
list: [a, 'b', \"c\", 1.5, null, ~, true]
";
        assert_eq!(
            value(text),
            json!({
                "env": {"Variables": {"TABLE": {"Ref": "T"}, "N": 3}},
                "code": "def handler(event, context):\n    return event\n",
                "folded": "one two\n",
                "again": {"Variables": {"TABLE": {"Ref": "T"}, "N": 3}},
                "base": {"Runtime": "nodejs20.x", "Timeout": 10},
                "fn": {"Runtime": "nodejs20.x", "Timeout": 30},
                "list": ["a", "b", "c", 1.5, null, null, true],
            })
        );
    }

    #[test]
    fn every_value_has_its_line() {
        let text = "\
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Environment:
        Variables: { A: !Ref X }
      Layers:
        - one
        - two
";
        let doc = parse(text).unwrap();
        let line = |p: &str| doc.lines.line(p);
        assert_eq!(line("/Resources/Fn"), Some(2));
        assert_eq!(line("/Resources/Fn/Type"), Some(3));
        assert_eq!(line("/Resources/Fn/Properties/Environment"), Some(5));
        assert_eq!(
            line("/Resources/Fn/Properties/Environment/Variables/A/Ref"),
            Some(6)
        );
        assert_eq!(line("/Resources/Fn/Properties/Layers/1"), Some(9));
        // Anything else has the line of what holds it: here, the document.
        assert_eq!(line("/Elsewhere"), Some(1));
        assert_eq!(child("/a", "b/c~d"), "/a/b~1c~0d");
    }

    #[test]
    fn what_is_not_a_template_is_refused_by_line() {
        let cases = [
            ("a: 1\nb: [1, 2\n", 3),
            ("a: 1\na: 2\n", 2),
            ("a:\n  b: 1\n c: 2\n", 3),
            ("a: \"open\n", 1),
            ("a: !!binary x\nb: !<tag:x> 1\n", 2),
            ("a: *nowhere\n", 1),
            ("a: 1\n---\nb: 2\n", 2),
        ];
        for (text, line) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        assert_eq!(
            parse("a: 1\nb: !<tag:x> 1\n").unwrap_err().to_string(),
            "line 2: tag !<tag:x> is not a CloudFormation short form (such as !Ref or !Sub)"
        );
        assert_eq!(
            parse("# nothing\n").unwrap_err().to_string(),
            "line 1: the document is empty"
        );
    }
}
