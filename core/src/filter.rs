//! Which connections a command operates on: `--older-than`, `--idle-over`
//! and `--where SELECTOR` (kubectl's grammar: `room=7,user!=ana`,
//! `room in (1,2)`, `!user`, `userAgent=*Firefox*`), as values matched
//! against records (and, for idleness, against what GetConnection says).
//! Pure: the clock is a parameter, so tests need neither sockets nor
//! sleeps; the selector prints back to what parses to it.

use std::time::Duration;

use crate::gateway::ConnectionInfo;
use crate::record::{ATTR_SOURCE_IP, ATTR_USER_AGENT, ConnectionRecord};

/// One `--where` selector: requirements joined by `,`, all of which must
/// hold (kubectl's label selector grammar, see [`GRAMMAR`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Where {
    pub requirements: Vec<Requirement>,
}

/// One requirement on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// A meta key (a `$connect` query parameter), `sourceIp` or `userAgent`.
    pub key: String,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `key=value` (or `==`): present and matching.
    Eq(Pattern),
    /// `key!=value`: absent or not matching.
    NotEq(Pattern),
    /// `key in (a,b)`: present and matching one.
    In(Vec<Pattern>),
    /// `key notin (a,b)`: absent or matching none.
    NotIn(Vec<Pattern>),
    /// `key`: present.
    Exists,
    /// `!key`: absent.
    NotExists,
}

/// A value where `*` stands for any text (`*Firefox*`); `\` makes the
/// next character literal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern {
    /// Normalized: no two literals or two stars in a row, no empty literal.
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Star,
}

/// What `--where` accepts, for the usage error.
pub const GRAMMAR: &str = "\
selectors: requirements joined by ',' (all must hold), as kubectl's:
  key=value  key!=value  key in (v1,v2)  key notin (v1,v2)  key (has it)  !key (lacks it)
  a key is a meta (query parameter) key, sourceIp or userAgent (its values match ignoring case);
  a key has only letters, digits and _ - . : / ~ [ ]; there are no comparisons (> <);
  quote a value holding spaces, commas or parentheses: name=\"Ana Maria\" city=\"Paris, FR\";
  * in a value matches any text (userAgent=*Firefox*); \\ makes the next character literal;
  repeated --where flags must all hold";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?}: {reason} (at character {at})\n{GRAMMAR}")]
pub struct WhereError {
    pub input: String,
    pub reason: &'static str,
    /// 1-based character position where parsing stopped.
    pub at: usize,
}

impl std::str::FromStr for Where {
    type Err = WhereError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut p = Parser {
            chars: input.chars().collect(),
            pos: 0,
        };
        let parsed = p.selector();
        parsed.map_err(|reason| WhereError {
            input: input.to_owned(),
            reason,
            at: p.pos + 1,
        })
    }
}

/// Characters a key may have: what a `$connect` query parameter name
/// sensibly holds. Anything else is a mistake (`room>2` is no key named
/// `room>2`, and `!room>2` must not select everyone).
fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '~' | '[' | ']')
}

/// Characters that may follow a key: an operator, a separator, the end.
fn follows_key(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '(' | ')' | '=' | '!')
}

/// Characters a value must escape or quote to read back as itself: those
/// that end it, and the quote, the escape and the glob.
fn is_special(c: char) -> bool {
    ends_value(c) || matches!(c, '"' | '\\' | '*')
}

/// Characters that end an unquoted value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '(' | ')')
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let ate = self.peek() == Some(c);
        self.pos += usize::from(ate);
        ate
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn selector(&mut self) -> Result<Where, &'static str> {
        let mut requirements = Vec::new();
        loop {
            self.skip_space();
            requirements.push(self.requirement()?);
            self.skip_space();
            match self.peek() {
                None => return Ok(Where { requirements }),
                Some(',') => self.pos += 1,
                Some(_) => return Err("expected ',' or the end after a requirement"),
            }
        }
    }

    fn key(&mut self) -> Result<String, &'static str> {
        let start = self.pos;
        while self.peek().is_some_and(is_key_char) {
            self.pos += 1;
        }
        match self.peek() {
            Some('>' | '<') => Err("there are no comparisons ('>', '<'): use = != in notin"),
            Some(c) if !follows_key(c) => {
                Err("a key has only letters, digits and _ - . : / ~ [ ] (quote values, not keys)")
            }
            _ if self.pos == start => Err("expected a key"),
            _ => Ok(self.chars[start..self.pos].iter().collect()),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, &'static str> {
        if self.eat('!') {
            self.skip_space();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                op: Op::NotExists,
            });
        }
        let key = self.key()?;
        let before_space = self.pos;
        self.skip_space();
        let op = match self.peek() {
            None | Some(',') => {
                self.pos = before_space;
                Op::Exists
            }
            Some('=') => {
                self.pos += 1;
                self.eat('=');
                self.skip_space();
                Op::Eq(self.value()?)
            }
            Some('!') => {
                self.pos += 1;
                if !self.eat('=') {
                    return Err("expected '=' after '!' (key!=value)");
                }
                self.skip_space();
                Op::NotEq(self.value()?)
            }
            Some(_) => {
                let word = self
                    .key()
                    .map_err(|_| "expected =, !=, in or notin after the key")?;
                let set = match word.as_str() {
                    "in" => Op::In,
                    "notin" => Op::NotIn,
                    _ => return Err("expected =, !=, in or notin after the key"),
                };
                set(self.set()?)
            }
        };
        Ok(Requirement { key, op })
    }

    /// `(v1, v2)`.
    fn set(&mut self) -> Result<Vec<Pattern>, &'static str> {
        self.skip_space();
        if !self.eat('(') {
            return Err("expected '(' to open the set of values");
        }
        let mut values = Vec::new();
        loop {
            self.skip_space();
            values.push(self.value()?);
            self.skip_space();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(values);
                }
                _ => return Err("expected ',' or ')' in the set of values"),
            }
        }
    }

    fn value(&mut self) -> Result<Pattern, &'static str> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        while let Some(c) = self.peek() {
            if ends_value(c) {
                break;
            }
            self.pos += 1;
            match c {
                '*' => {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                    parts.push(Part::Star);
                }
                '\\' => match self.peek() {
                    Some(next) => {
                        self.pos += 1;
                        literal.push(next);
                    }
                    None => return Err("a '\\' must be followed by the character it escapes"),
                },
                '"' => loop {
                    match self.peek() {
                        None => return Err("a quoted value must end with '\"'"),
                        Some('"') => {
                            self.pos += 1;
                            break;
                        }
                        Some('\\') if self.chars.get(self.pos + 1).is_some() => {
                            literal.push(self.chars[self.pos + 1]);
                            self.pos += 2;
                        }
                        Some(c) => {
                            literal.push(c);
                            self.pos += 1;
                        }
                    }
                },
                c => literal.push(c),
            }
        }
        parts.push(Part::Literal(literal));
        Ok(Pattern::new(parts))
    }
}

impl Pattern {
    /// A pattern from parts, normalized.
    pub fn new(parts: impl IntoIterator<Item = Part>) -> Self {
        let mut out: Vec<Part> = Vec::new();
        for part in parts {
            match (out.last_mut(), part) {
                (_, Part::Literal(l)) if l.is_empty() => {}
                (Some(Part::Literal(prev)), Part::Literal(l)) => prev.push_str(&l),
                (Some(Part::Star), Part::Star) => {}
                (_, part) => out.push(part),
            }
        }
        Self { parts: out }
    }

    /// A pattern matching exactly `text`.
    pub fn literal(text: &str) -> Self {
        Self::new([Part::Literal(text.to_owned())])
    }

    /// The value, when the pattern has no `*`.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether `value` matches, whole (`*` any text); `fold`: ignoring case.
    pub fn matches(&self, value: &str, fold: bool) -> bool {
        if fold {
            let lower = Pattern::new(self.parts.iter().map(|p| match p {
                Part::Literal(l) => Part::Literal(l.to_lowercase()),
                Part::Star => Part::Star,
            }));
            return lower.matches(&value.to_lowercase(), false);
        }
        let mut rest = value;
        let mut parts = self.parts.iter().peekable();
        // Before the first star: a prefix.
        if let Some(Part::Literal(first)) = parts.peek() {
            match rest.strip_prefix(first.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
            parts.next();
        }
        let mut after_star = false;
        while let Some(part) = parts.next() {
            match part {
                Part::Star => after_star = true,
                // The last literal after a star: a suffix of what is left.
                Part::Literal(l) if parts.peek().is_none() => return rest.ends_with(l.as_str()),
                Part::Literal(l) => match rest.find(l.as_str()) {
                    Some(i) => rest = &rest[i + l.len()..],
                    None => return false,
                },
            }
        }
        after_star || rest.is_empty()
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Star => f.write_str("*")?,
                Part::Literal(l) => {
                    for (j, c) in l.chars().enumerate() {
                        // A leading `=` would read as the operator's (`k==v`).
                        let leading_eq = c == '=' && i == 0 && j == 0;
                        if leading_eq || is_special(c) {
                            write!(f, "\\{c}")?;
                        } else {
                            write!(f, "{c}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A value as a selector names it: as it is when it reads back whole,
/// else in quotes (`"Ana Maria"`, `"say \\"hi\\""`).
pub fn quote_value(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = !value.is_empty() && !value.starts_with('=') && !value.chars().any(is_special);
    if plain {
        return value.into();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.into()
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |values: &[Pattern]| {
            values
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let k = &r.key;
            match &r.op {
                Op::Eq(v) => write!(f, "{k}={v}")?,
                Op::NotEq(v) => write!(f, "{k}!={v}")?,
                Op::In(vs) => write!(f, "{k} in ({})", set(vs))?,
                Op::NotIn(vs) => write!(f, "{k} notin ({})", set(vs))?,
                Op::Exists => write!(f, "{k}")?,
                Op::NotExists => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

/// A record's value for a selector key: `sourceIp`, `userAgent`, or a meta
/// entry.
pub fn record_value<'a>(record: &'a ConnectionRecord, key: &str) -> Option<&'a str> {
    match key {
        ATTR_SOURCE_IP => record.source_ip.as_deref(),
        ATTR_USER_AGENT => record.user_agent.as_deref(),
        key => record.meta.get(key).map(String::as_str),
    }
}

impl Requirement {
    /// Whether the requirement holds for the value its key has (`None`:
    /// absent). The user agent matches ignoring case.
    pub fn holds(&self, value: Option<&str>) -> bool {
        let fold = self.key == ATTR_USER_AGENT;
        let any = |vs: &[Pattern], v: &str| vs.iter().any(|p| p.matches(v, fold));
        match (&self.op, value) {
            (Op::Exists, v) => v.is_some(),
            (Op::NotExists, v) => v.is_none(),
            (Op::Eq(p), Some(v)) => p.matches(v, fold),
            (Op::NotEq(p), Some(v)) => !p.matches(v, fold),
            (Op::In(vs), Some(v)) => any(vs, v),
            (Op::NotIn(vs), Some(v)) => !any(vs, v),
            (Op::Eq(_) | Op::In(_), None) => false,
            (Op::NotEq(_) | Op::NotIn(_), None) => true,
        }
    }
}

impl Where {
    /// Every requirement holds for the record.
    pub fn matches(&self, record: &ConnectionRecord) -> bool {
        self.matches_with(|key| record_value(record, key))
    }

    /// Every requirement holds, each key's value looked up by `value_of`
    /// (the dashboard's rows are not records).
    pub fn matches_with<'a>(&self, value_of: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.holds(value_of(&r.key)))
    }
}

/// All clauses must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Connected longer ago than this (records without `connectedAt` never match).
    pub older_than: Option<Duration>,
    /// No message either way for longer than this (needs GetConnection).
    pub idle_over: Option<Duration>,
    pub wheres: Vec<Where>,
}

impl Filter {
    /// Whether matching needs the live view of each connection.
    pub fn needs_live(&self) -> bool {
        self.idle_over.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.older_than.is_none() && self.idle_over.is_none() && self.wheres.is_empty()
    }

    /// The clauses a record alone decides. `now_ms` is epoch milliseconds.
    pub fn matches_record(&self, record: &ConnectionRecord, now_ms: i64) -> bool {
        if let Some(min) = self.older_than {
            match record.connected_at {
                Some(at) if age(at, now_ms) > min => {}
                _ => return false,
            }
        }
        self.wheres.iter().all(|w| w.matches(record))
    }

    /// The clauses that need GetConnection; `None` means the connection is
    /// not live, which never matches `--idle-over`.
    pub fn matches_live(&self, info: Option<&ConnectionInfo>, now_ms: i64) -> bool {
        match self.idle_over {
            None => true,
            Some(min) => info
                .and_then(|i| idle(i, now_ms))
                .is_some_and(|idle| idle > min),
        }
    }
}

/// Time since `at_ms`, zero for times in the future (clock skew).
pub fn age(at_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(at_ms).max(0) as u64)
}

/// Time since the last message either way (or since connecting, when the
/// service reports no activity).
pub fn idle(info: &ConnectionInfo, now_ms: i64) -> Option<Duration> {
    info.last_active_at
        .or(info.connected_at)
        .map(|at| age(at, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConnectionRecord {
        let mut r = ConnectionRecord::new("abc=").connected_at(1_000_000);
        r.source_ip = Some("203.0.113.9".into());
        r.user_agent = Some("Mozilla/5.0 (X11)".into());
        r.meta.insert("user".into(), "ana".into());
        r
    }

    fn w(s: &str) -> Where {
        s.parse::<Where>().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn selectors_parse_and_match_like_kubectl() {
        let r = record();
        assert!(w("user=ana").matches(&r));
        assert!(w("user==ana").matches(&r));
        assert!(!w("user=bob").matches(&r));
        assert!(!w("room=7").matches(&r));
        assert!(w("user!=bob").matches(&r));
        assert!(!w("user!=ana").matches(&r));
        assert!(w("room!=3").matches(&r), "absent is not equal");
        assert!(w("user=ana,room!=3").matches(&r));
        assert!(!w("user=ana,room=3").matches(&r));
        assert!(w("user in (bob, ana)").matches(&r));
        assert!(!w("user in (bob)").matches(&r));
        assert!(!w("room in (1,2)").matches(&r), "absent is in no set");
        assert!(w("room notin (3)").matches(&r));
        assert!(!w("user notin (ana,x)").matches(&r));
        assert!(w("user").matches(&r) && !w("room").matches(&r));
        assert!(w("!room").matches(&r) && !w("!user").matches(&r));
        assert!(
            w(" user = ana , !room ").matches(&r),
            "spaces around tokens"
        );
        assert!(w("sourceIp=203.0.113.9").matches(&r));
        assert!(!w("sourceIp=203.0.113").matches(&r), "values match whole");
        assert!(w("sourceIp=203.0.113.*").matches(&r));
        assert!(w("userAgent=*x11*").matches(&r), "user agents ignore case");
        assert!(!w("user=ANA").matches(&r), "other keys do not");
        assert!(!w("userAgent=X11").matches(&r), "no substring without *");
        assert!(w("userAgent=mozilla*").matches(&r));
        assert!(w(r#"user="a\"n"a"#).matches(&ConnectionRecord {
            meta: [("user".to_owned(), "a\"na".to_owned())].into(),
            ..ConnectionRecord::new("x")
        }));
        assert!(w(r"user=\*").matches(&ConnectionRecord {
            meta: [("user".to_owned(), "*".to_owned())].into(),
            ..ConnectionRecord::new("x")
        }));
        assert!(w("user=").matches(&ConnectionRecord {
            meta: [("user".to_owned(), String::new())].into(),
            ..ConnectionRecord::new("x")
        }));
    }

    #[test]
    fn what_cannot_parse_is_an_error_showing_the_grammar() {
        for bad in [
            "",
            "=ana",
            "room!",
            "room!3",
            "a=1,",
            ",a=1",
            "room in 1",
            "room in (1",
            "room in (1 2)",
            "room within (1)",
            "user ana",
            r"user=a\",
            "user=\"open",
            "user=a)",
            "room>2",
            "!room>2",
            "room<2",
            "room>=2",
            "room=7,!room>2",
            "ro*m=1",
            "\"room\"=1",
            "room;x=1",
            "room\\=1",
        ] {
            let e = bad.parse::<Where>().expect_err(bad);
            let text = e.to_string();
            assert!(text.contains("key notin (v1,v2)"), "{bad}: {text}");
            assert!(text.contains(&format!("{bad:?}")), "{bad}: {text}");
        }
    }

    #[test]
    fn a_mistyped_key_is_an_error_never_a_key_that_selects_everyone() {
        for (bad, reason) in [
            ("!room>2", "no comparisons"),
            ("room<2", "no comparisons"),
            ("ro*m", "a key has only"),
            ("room;x=1", "a key has only"),
        ] {
            let e = bad.parse::<Where>().expect_err(bad);
            assert!(e.to_string().contains(reason), "{bad}: {e}");
        }
        let e = "!room>2".parse::<Where>().unwrap_err();
        assert_eq!(e.at, 6, "points at the '>'");
        assert!(e.to_string().contains(r#"name="Ana Maria""#), "{e}");
        // Keys in other scripts, and the punctuation of real parameter names.
        for good in ["名前=x", "user.id=1", "tags[]=a", "x-api:v/1~a_b=1"] {
            good.parse::<Where>()
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn quoted_values_match_whole_with_spaces_commas_quotes_and_equals() {
        let named = |name: &str| ConnectionRecord {
            meta: [("name".to_owned(), name.to_owned())].into(),
            ..ConnectionRecord::new("x")
        };
        let names = wsadmin_testkit::AWKWARD_NAMES;
        for name in names {
            // Each name, written as the grammar says, selects itself alone.
            let quoted = format!("name=\"{}\"", name.replace('"', "\\\""));
            let printed = Where {
                requirements: vec![Requirement {
                    key: "name".into(),
                    op: Op::Eq(Pattern::literal(name)),
                }],
            }
            .to_string();
            for selector in [quoted, printed] {
                let s = w(&selector);
                let hits: Vec<&str> = names.into_iter().filter(|n| s.matches(&named(n))).collect();
                assert_eq!(hits, [name], "{selector}");
            }
        }
        assert!(w("name=Zoë*").matches(&named("Zoë Ωmega 名前")));
        assert!(
            !w("name=zoë*").matches(&named("Zoë Ωmega 名前")),
            "meta keeps case"
        );
    }

    #[test]
    fn globs_match_whole_values() {
        let p = |s: &str| match w(&format!("k={s}")).requirements[0].op.clone() {
            Op::Eq(p) => p,
            _ => unreachable!(),
        };
        assert!(p("*").matches("", false));
        assert!(p("a*b*c").matches("abc", false));
        assert!(p("a*b*c").matches("a-b-b-c", false));
        assert!(!p("ab*b").matches("ab", false));
        assert!(!p("a*c").matches("acb", false));
        assert!(p("**x").matches("yx", false));
        assert!(p("*Firefox*").matches("Mozilla/5.0 firefox/120", true));
    }

    fn patterns() -> impl proptest::strategy::Strategy<Value = Pattern> {
        use proptest::prelude::*;
        let part = prop_oneof![
            Just(Part::Star),
            "[a-z0-9 ,()\"\\\\*=!.-]{1,4}".prop_map(Part::Literal),
        ];
        proptest::collection::vec(part, 0..4).prop_map(Pattern::new)
    }

    fn requirements() -> impl proptest::strategy::Strategy<Value = Requirement> {
        use proptest::prelude::*;
        let values = || proptest::collection::vec(patterns(), 1..3);
        let op = prop_oneof![
            patterns().prop_map(Op::Eq),
            patterns().prop_map(Op::NotEq),
            values().prop_map(Op::In),
            values().prop_map(Op::NotIn),
            Just(Op::Exists),
            Just(Op::NotExists),
        ];
        ("[a-zA-Z_][a-zA-Z0-9_./:-]{0,6}", op).prop_map(|(key, op)| Requirement { key, op })
    }

    proptest::proptest! {
        #[test]
        fn a_printed_selector_parses_back_to_itself(
            requirements in proptest::collection::vec(requirements(), 1..4)
        ) {
            let selector = Where { requirements };
            let printed = selector.to_string();
            let parsed: Where = printed.parse().map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{printed}: {e}"))
            })?;
            proptest::prop_assert_eq!(parsed, selector);
        }
    }

    #[test]
    fn age_and_idleness_use_the_given_clock() {
        let f = Filter {
            older_than: Some(Duration::from_secs(60)),
            ..Filter::default()
        };
        assert!(!f.matches_record(&record(), 1_000_000 + 60_000));
        assert!(f.matches_record(&record(), 1_000_000 + 60_001));
        assert!(!f.matches_record(&ConnectionRecord::new("x"), i64::MAX));

        let f = Filter {
            idle_over: Some(Duration::from_secs(10)),
            ..Filter::default()
        };
        assert!(f.needs_live());
        let info = ConnectionInfo {
            connected_at: Some(0),
            last_active_at: Some(50_000),
            source_ip: None,
            user_agent: None,
        };
        assert!(!f.matches_live(Some(&info), 60_000));
        assert!(f.matches_live(Some(&info), 60_001));
        assert!(!f.matches_live(None, 60_001), "gone never counts as idle");
        assert_eq!(age(10, 5), Duration::ZERO);
    }
}
