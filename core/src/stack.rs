//! The stack description: the one value from which both the AWS deploy and
//! the local stack (`wsstack local`) build a WebSocket API.
//!
//! Owns the shape of that description (API name, route selection expression,
//! stage, table, routes), its defaults (the seed article's Pulumi stack), its
//! TOML form, and the rules a description must meet before anything is built
//! from it. [`StackSpec::from_toml`] and [`StackSpec::load`] only return
//! descriptions that pass [`StackSpec::validate`].
//!
//! It must not know how a stack is built: no AWS calls, no sockets, no
//! handler code. Handlers are named by their function name (`ws-connect`),
//! never by a type of the handlers crate, so this crate stays below it.
//!
//! A stack file, every key optional (a missing key takes its default; a
//! `[[routes]]` list, when given, replaces the default routes entirely):
//!
//! ```toml
//! # The API Gateway WebSocket API.
//! api_name = "wsadmin-demo"
//! # Where in a JSON message the route key is read: here, its "type".
//! # Also accepted: "${request.body.type}", and nested paths such as
//! # "$request.body.meta.kind".
//! route_selection_expression = "$request.body.type"
//! stage = "dev"
//! # The DynamoDB table that registers connections.
//! table = "WS_CONNECTIONS"
//!
//! [[routes]]
//! key = "$connect"
//! handler = "ws-connect"
//!
//! [[routes]]
//! key = "$disconnect"
//! handler = "ws-disconnect"
//!
//! # Messages that are not JSON, or whose "type" matches no route.
//! [[routes]]
//! key = "$default"
//! handler = "ws-default"
//! # Send the handler's response body back to the sender.
//! route_response = true
//!
//! [[routes]]
//! key = "message"
//! handler = "ws-message"
//! ```
//!
//! `$connect` may be guarded, as on API Gateway: `authorization =
//! "AWS_IAM"` (a SigV4-presigned handshake), or `"CUSTOM"` with a REQUEST
//! Lambda authorizer, a function the description declares in
//! `[[functions]]`:
//!
//! ```toml
//! [[routes]]
//! key = "$connect"
//! handler = "ws-connect"
//! authorization = "CUSTOM"
//! [routes.authorizer]
//! name = "token"
//! function = "auth"
//! identity_source = ["route.request.querystring.token"]
//! ```

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::function::{FunctionError, FunctionSpec};
use crate::record::TableConfig;

/// Runs when a client opens a connection; its status code accepts or refuses
/// the handshake.
pub const ROUTE_CONNECT: &str = "$connect";
/// Runs, best effort, after a connection has closed.
pub const ROUTE_DISCONNECT: &str = "$disconnect";
/// Takes messages that are not JSON or that match no other route.
pub const ROUTE_DEFAULT: &str = "$default";

/// How to write a route selection expression, for error messages.
const SELECTION_FORMS: &str = "use $request.body.<key>[.<key>...] or \
     ${request.body.<key>[.<key>...]}, e.g. $request.body.type";

/// Lambda's limit on a function name.
const MAX_HANDLER_LEN: usize = 64;

/// One WebSocket API, its stage, its registry table and its routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StackSpec {
    pub api_name: String,
    /// Which part of a client message selects its route, e.g.
    /// `$request.body.type`.
    pub route_selection_expression: String,
    pub stage: String,
    /// The DynamoDB table that registers connections.
    pub table: String,
    /// The table's key schema, when it is not our own (`connectionId`, a
    /// string): a template's `AWS::DynamoDB::Table` declares it, and the
    /// local stack creates the table with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_keys: Option<TableKeys>,
    pub routes: Vec<RouteSpec>,
    /// Functions run as Lambda runs them (their runtime, in their own
    /// processes). A route whose handler names none of them runs one of
    /// our own handlers in-process (`ws-connect`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionSpec>,
}

/// A DynamoDB table's primary key: a hash key, and a range key if any;
/// and its global secondary indexes (`GlobalSecondaryIndexes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableKeys {
    pub hash: KeyAttribute,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<KeyAttribute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexKeys>,
}

/// A global secondary index: its name and hash key (every attribute
/// projected, as the local stack creates it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexKeys {
    pub name: String,
    pub hash: KeyAttribute,
}

/// One key attribute: its name and DynamoDB scalar type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One route: the key that selects it and the function that handles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// `$connect`, `$disconnect`, `$default`, or a value of the selection
    /// expression such as `message`.
    pub key: String,
    /// The function's name (`ws-message`): its Lambda function on AWS, its
    /// in-process handler in the local stack.
    pub handler: String,
    /// Whether the handler's response body is sent back to the client that
    /// sent the message (API Gateway's RouteResponse, "two-way" routes).
    /// Without it the body is dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub route_response: bool,
    /// Who may use the route: API Gateway's `AuthorizationType` (only
    /// `$connect` may have one other than `NONE`).
    #[serde(default, skip_serializing_if = "Authorization::is_none")]
    pub authorization: Authorization,
    /// The REQUEST authorizer of a `CUSTOM` route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<AuthorizerSpec>,
}

/// API Gateway's `AuthorizationType` of a route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Authorization {
    /// Anyone may connect.
    #[default]
    None,
    /// The handshake must be SigV4-signed (in its query string) for the
    /// stack's credentials, service `execute-api`.
    AwsIam,
    /// A REQUEST Lambda authorizer decides ([`AuthorizerSpec`]).
    Custom,
}

impl Authorization {
    pub fn is_none(&self) -> bool {
        *self == Self::None
    }
}

/// A REQUEST Lambda authorizer (`AWS::ApiGatewayV2::Authorizer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizerSpec {
    pub name: String,
    /// The function that decides: one the description declares in
    /// `functions` (our handlers are no authorizers).
    pub function: String,
    /// Where the caller's identity is read: `route.request.header.NAME`
    /// or `route.request.querystring.NAME`. A handshake missing any of
    /// them is refused (401) without calling the authorizer.
    #[serde(default)]
    pub identity_source: Vec<String>,
}

/// One parsed `IdentitySource` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A request header, matched without regard to case.
    Header(String),
    /// A query-string parameter, matched exactly.
    Query(String),
}

impl IdentitySource {
    /// `route.request.header.NAME` or `route.request.querystring.NAME`.
    pub fn parse(text: &str) -> Result<Self, StackError> {
        let parsed = if let Some(name) = text.strip_prefix("route.request.header.") {
            Some(Self::Header(name.to_owned()))
        } else {
            text.strip_prefix("route.request.querystring.")
                .map(|name| Self::Query(name.to_owned()))
        };
        match parsed {
            Some(Self::Header(n) | Self::Query(n)) if n.is_empty() => {
                Err(StackError::IdentitySource(text.to_owned()))
            }
            Some(source) => Ok(source),
            None => Err(StackError::IdentitySource(text.to_owned())),
        }
    }
}

impl RouteSpec {
    pub fn new(key: impl Into<String>, handler: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            handler: handler.into(),
            route_response: false,
            authorization: Authorization::None,
            authorizer: None,
        }
    }

    /// The route guarded by a REQUEST Lambda authorizer.
    pub fn with_authorizer(mut self, authorizer: AuthorizerSpec) -> Self {
        self.authorization = Authorization::Custom;
        self.authorizer = Some(authorizer);
        self
    }

    /// The route guarded by IAM (a SigV4-signed handshake).
    pub fn with_iam(mut self) -> Self {
        self.authorization = Authorization::AwsIam;
        self.authorizer = None;
        self
    }

    pub fn with_route_response(mut self) -> Self {
        self.route_response = true;
        self
    }
}

impl StackSpec {
    pub const DEFAULT_API_NAME: &str = "wsadmin-demo";
    pub const DEFAULT_ROUTE_SELECTION_EXPRESSION: &str = "$request.body.type";
    pub const DEFAULT_STAGE: &str = "dev";

    /// Reads a stack description from TOML and validates it. Missing keys
    /// take their defaults; `routes`, when present, replaces the default
    /// routes entirely.
    pub fn from_toml(text: &str) -> Result<Self, StackError> {
        let spec: Self = toml::from_str(text).map_err(StackError::Toml)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads and validates a stack file; every error names the file.
    pub fn load(path: &Path) -> Result<Self, StackError> {
        let text = std::fs::read_to_string(path).map_err(|error| StackError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_toml(&text).map_err(|error| StackError::File {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// The TOML form, which [`StackSpec::from_toml`] reads back to an equal
    /// value.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a stack description is plain strings, lists and booleans")
    }

    pub fn route(&self, key: &str) -> Option<&RouteSpec> {
        self.routes.iter().find(|r| r.key == key)
    }

    /// The function named `name`, if the description declares one (else a
    /// route naming it runs one of our handlers in-process).
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The path into a message's JSON body named by the route selection
    /// expression: `$request.body.type` gives `["type"]`,
    /// `${request.body.a.b}` gives `["a", "b"]`.
    pub fn selection_path(&self) -> Result<Vec<&str>, StackError> {
        selection_path(&self.route_selection_expression).map_err(|reason| {
            StackError::SelectionExpression {
                expression: self.route_selection_expression.clone(),
                reason,
            }
        })
    }

    /// Checks the description against API Gateway's, DynamoDB's and Lambda's
    /// rules, so that a mistake surfaces here rather than halfway through a
    /// deploy, and so that the local stack accepts only what AWS would.
    pub fn validate(&self) -> Result<(), StackError> {
        validate_api_name(&self.api_name)?;
        self.selection_path()?;
        if !is_stage_name(&self.stage) {
            return Err(StackError::Stage(self.stage.clone()));
        }
        if !is_table_name(&self.table) {
            return Err(StackError::Table(self.table.clone()));
        }
        if self.routes.is_empty() {
            // API Gateway refuses to deploy an API without routes.
            return Err(StackError::NoRoutes);
        }
        let mut seen = HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            validate_route(i, route)?;
            if !seen.insert(route.key.as_str()) {
                return Err(StackError::DuplicateRoute(route.key.clone()));
            }
        }
        let mut names = HashSet::new();
        for function in &self.functions {
            function.validate()?;
            if !names.insert(function.name.as_str()) {
                return Err(StackError::DuplicateFunction(function.name.clone()));
            }
        }
        for route in &self.routes {
            if let Some(authorizer) = &route.authorizer
                && !names.contains(authorizer.function.as_str())
            {
                return Err(StackError::AuthorizerFunction {
                    name: authorizer.name.clone(),
                    function: authorizer.function.clone(),
                });
            }
        }
        if let Some(keys) = &self.table_keys {
            for key in std::iter::once(&keys.hash).chain(&keys.range) {
                if key.name.is_empty() || !matches!(key.kind.as_str(), "S" | "N" | "B") {
                    return Err(StackError::TableKey {
                        name: key.name.clone(),
                        kind: key.kind.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The seed article's stack: four routes, each to its own function, and a
/// RouteResponse on `$default` only, so a message that matches no route
/// (`Marko?`) gets the handler's answer (`Polo!`) back.
impl Default for StackSpec {
    fn default() -> Self {
        Self {
            api_name: Self::DEFAULT_API_NAME.to_owned(),
            route_selection_expression: Self::DEFAULT_ROUTE_SELECTION_EXPRESSION.to_owned(),
            stage: Self::DEFAULT_STAGE.to_owned(),
            table: TableConfig::DEFAULT_NAME.to_owned(),
            table_keys: None,
            functions: Vec::new(),
            routes: vec![
                RouteSpec::new(ROUTE_CONNECT, "ws-connect"),
                RouteSpec::new(ROUTE_DISCONNECT, "ws-disconnect"),
                RouteSpec::new(ROUTE_DEFAULT, "ws-default").with_route_response(),
                RouteSpec::new("message", "ws-message"),
            ],
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    #[error("stack file \"{}\": cannot read it: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// Any other error, found in a stack file.
    #[error("stack file \"{}\": {error}", path.display())]
    File {
        path: PathBuf,
        error: Box<StackError>,
    },
    /// A TOML syntax error, an unknown key or a value of the wrong type;
    /// toml's message gives the line and column.
    #[error("{}", .0.to_string().trim_end())]
    Toml(toml::de::Error),
    #[error(
        "api name is empty (name the API, e.g. \"{}\")",
        StackSpec::DEFAULT_API_NAME
    )]
    EmptyApiName,
    #[error("api name is {0} characters long (API Gateway allows at most 128)")]
    ApiNameTooLong(usize),
    #[error("route selection expression \"{expression}\": {reason} ({SELECTION_FORMS})")]
    SelectionExpression {
        expression: String,
        reason: &'static str,
    },
    #[error(
        "stage name \"{0}\" is invalid (API Gateway needs 1 to 128 letters, digits, \"-\" or \"_\", e.g. \"dev\")"
    )]
    Stage(String),
    #[error(
        "table name \"{0}\" is invalid (DynamoDB needs 3 to 255 letters, digits, \"_\", \"-\" or \".\", e.g. \"WS_CONNECTIONS\")"
    )]
    Table(String),
    #[error("no routes (add a [[routes]] entry, or leave routes out to get the default ones)")]
    NoRoutes,
    /// `index` counts from 1, as a reader counts `[[routes]]` entries.
    #[error("route {index} has an empty key (give it one, e.g. key = \"message\")")]
    EmptyRouteKey { index: usize },
    #[error(
        "route \"{0}\": only $connect, $disconnect and $default may start with \"$\" (rename the route without the \"$\")"
    )]
    ReservedRouteKey(String),
    #[error(
        "route \"{key}\": handler \"{handler}\" is not a function name (use 1 to 64 letters, digits, \"-\" or \"_\", e.g. \"ws-message\")"
    )]
    Handler { key: String, handler: String },
    #[error(
        "route \"{key}\": route_response is not supported there, {reason} (remove route_response)"
    )]
    RouteResponse { key: String, reason: &'static str },
    #[error("duplicate route \"{0}\" (each key may appear once in routes)")]
    DuplicateRoute(String),
    #[error(transparent)]
    Function(#[from] FunctionError),
    #[error("duplicate function \"{0}\" (each name may appear once in functions)")]
    DuplicateFunction(String),
    #[error(
        "table key \"{name}\" of type \"{kind}\" is invalid (a key needs a name and type S, N or B)"
    )]
    TableKey { name: String, kind: String },
    #[error(
        "route \"{0}\": only $connect may have an authorization on a WebSocket API (remove authorization and authorizer)"
    )]
    AuthorizationRoute(String),
    #[error(
        "route \"{0}\": authorization = \"CUSTOM\" needs an authorizer (add [routes.authorizer] with name, function and identity_source)"
    )]
    MissingAuthorizer(String),
    #[error(
        "route \"{0}\": an authorizer is used only with authorization = \"CUSTOM\" (set it, or remove the authorizer)"
    )]
    UnusedAuthorizer(String),
    #[error(
        "authorizer \"{name}\": function \"{function}\" is not declared in functions (an authorizer runs a function of the stack, in its runtime)"
    )]
    AuthorizerFunction { name: String, function: String },
    #[error(
        "identity source \"{0}\" is not route.request.header.NAME or route.request.querystring.NAME"
    )]
    IdentitySource(String),
}

fn validate_api_name(name: &str) -> Result<(), StackError> {
    let len = name.chars().count();
    if name.trim().is_empty() {
        Err(StackError::EmptyApiName)
    } else if len > 128 {
        Err(StackError::ApiNameTooLong(len))
    } else {
        Ok(())
    }
}

fn validate_route(i: usize, route: &RouteSpec) -> Result<(), StackError> {
    let key = route.key.as_str();
    if key.is_empty() {
        return Err(StackError::EmptyRouteKey { index: i + 1 });
    }
    if key.starts_with('$') && ![ROUTE_CONNECT, ROUTE_DISCONNECT, ROUTE_DEFAULT].contains(&key) {
        return Err(StackError::ReservedRouteKey(key.to_owned()));
    }
    let handler = route.handler.as_str();
    let handler_ok = !handler.is_empty()
        && handler.len() <= MAX_HANDLER_LEN
        && handler
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !handler_ok {
        return Err(StackError::Handler {
            key: key.to_owned(),
            handler: handler.to_owned(),
        });
    }
    if !route.authorization.is_none() && key != ROUTE_CONNECT {
        return Err(StackError::AuthorizationRoute(key.to_owned()));
    }
    match (route.authorization, &route.authorizer) {
        (Authorization::Custom, None) => {
            return Err(StackError::MissingAuthorizer(key.to_owned()));
        }
        (Authorization::None | Authorization::AwsIam, Some(_)) => {
            return Err(StackError::UnusedAuthorizer(key.to_owned()));
        }
        (_, Some(authorizer)) => {
            for source in &authorizer.identity_source {
                IdentitySource::parse(source)?;
            }
        }
        _ => {}
    }
    if route.route_response {
        // A RouteResponse answers a client's *message*. `$disconnect` runs
        // after the connection has closed, so there is no one to answer.
        // `$connect` runs during the HTTP upgrade: its integration's status
        // code accepts or refuses the handshake and its headers (e.g.
        // `Sec-WebSocket-Protocol`) reach the client without any
        // RouteResponse, as AWS's subprotocol example shows. AWS documents
        // no message sent from a RouteResponse on `$connect` (some emulators
        // claim the body is delivered; unverified), so we refuse it rather
        // than let the local stack and AWS disagree.
        let reason = match key {
            ROUTE_DISCONNECT => Some("the connection is already closed when it runs"),
            ROUTE_CONNECT => Some(
                "its handler's status code only accepts or refuses the handshake and no body is sent",
            ),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(StackError::RouteResponse {
                key: key.to_owned(),
                reason,
            });
        }
    }
    Ok(())
}

/// The body path of `$request.body.a.b` or `${request.body.a.b}`, or why
/// the expression is not one of those forms. API Gateway accepts more
/// (text around a `${...}` variable, other variables); neither the local
/// stack nor the handlers could route on those, so they are refused.
fn selection_path(expression: &str) -> Result<Vec<&str>, &'static str> {
    if expression.is_empty() {
        return Err("it is empty");
    }
    let variable = match expression.strip_prefix("${") {
        Some(rest) => match rest.split_once('}') {
            Some((inner, "")) => inner,
            Some(_) => return Err("text around the ${...} variable is not supported"),
            None => return Err("the \"${\" is never closed with \"}\""),
        },
        None => expression
            .strip_prefix('$')
            .ok_or("it does not start with \"$\"")?,
    };
    let path = match variable.strip_prefix("request.body") {
        Some("") => return Err("it names the whole body, not a key in it"),
        Some(rest) => rest
            .strip_prefix('.')
            .ok_or("only the message body can select a route")?,
        None => return Err("only the message body can select a route"),
    };
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err("the body path has an empty key");
    }
    let bad_char = |c: char| c.is_whitespace() || "${}[]".contains(c);
    if segments.iter().any(|s| s.contains(bad_char)) {
        return Err("a body key contains whitespace or one of $ { } [ ]");
    }
    Ok(segments)
}

/// API Gateway's rule for stage names.
fn is_stage_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// DynamoDB's rule for table names.
fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    /// A TOML basic string, as the serializer writes one.
    fn quoted(s: &str) -> String {
        toml::Value::String(s.to_owned()).to_string()
    }

    use super::*;

    fn err(text: &str) -> String {
        StackSpec::from_toml(text).unwrap_err().to_string()
    }

    fn with_routes(routes: Vec<RouteSpec>) -> StackSpec {
        StackSpec {
            routes,
            ..StackSpec::default()
        }
    }

    fn validate_err(spec: &StackSpec) -> String {
        spec.validate().unwrap_err().to_string()
    }

    #[test]
    fn default_is_the_seed_stack() {
        let spec = StackSpec::default();
        assert_eq!(spec.route_selection_expression, "$request.body.type");
        assert_eq!(spec.stage, "dev");
        assert_eq!(spec.table, "WS_CONNECTIONS");
        let routes: Vec<(&str, &str, bool)> = spec
            .routes
            .iter()
            .map(|r| (r.key.as_str(), r.handler.as_str(), r.route_response))
            .collect();
        assert_eq!(
            routes,
            [
                ("$connect", "ws-connect", false),
                ("$disconnect", "ws-disconnect", false),
                ("$default", "ws-default", true),
                ("message", "ws-message", false),
            ]
        );
        spec.validate().unwrap();
    }

    #[test]
    fn default_round_trips_through_toml() {
        let spec = StackSpec::default();
        assert_eq!(StackSpec::from_toml(&spec.to_toml()).unwrap(), spec);
    }

    #[test]
    fn awkward_strings_round_trip() {
        let spec = StackSpec {
            api_name: "dé\"mo\\ \n\t\r\u{1}\u{7f} $x ${y}".to_owned(),
            route_selection_expression: "${request.body.a.b}".to_owned(),
            routes: vec![RouteSpec::new("say \"hi\"\\", "h_1")],
            ..StackSpec::default()
        };
        spec.validate().unwrap();
        assert_eq!(StackSpec::from_toml(&spec.to_toml()).unwrap(), spec);
    }

    #[test]
    fn empty_text_is_the_default_stack() {
        assert_eq!(StackSpec::from_toml("").unwrap(), StackSpec::default());
    }

    #[test]
    fn a_lone_stage_keeps_the_default_routes() {
        let spec = StackSpec::from_toml("stage = \"prod\"").unwrap();
        assert_eq!(spec.stage, "prod");
        assert_eq!(
            spec,
            StackSpec {
                stage: "prod".to_owned(),
                ..StackSpec::default()
            }
        );
    }

    #[test]
    fn given_routes_replace_the_defaults() {
        let spec = StackSpec::from_toml(
            r#"
            [[routes]]
            key = "$default"
            handler = "echo"
            route_response = true

            [[routes]]
            key = "chat"
            handler = "ws-message"
            "#,
        )
        .unwrap();
        assert_eq!(
            spec.routes,
            [
                RouteSpec::new("$default", "echo").with_route_response(),
                RouteSpec::new("chat", "ws-message"),
            ]
        );
        assert!(spec.route("$connect").is_none());
        assert_eq!(spec.route("chat").unwrap().handler, "ws-message");
    }

    #[test]
    fn the_module_doc_example_is_the_default_stack() {
        let source = include_str!("stack.rs");
        let example: String = source
            .lines()
            .skip_while(|l| *l != "//! ```toml")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        assert!(example.contains("[[routes]]"));
        assert_eq!(
            StackSpec::from_toml(&example).unwrap(),
            StackSpec::default()
        );
    }

    #[test]
    fn route_finds_by_key() {
        let spec = StackSpec::default();
        assert_eq!(spec.route("$default").unwrap().handler, "ws-default");
        assert!(spec.route("nope").is_none());
    }

    #[test]
    fn selection_path_of_both_forms() {
        let spec = |e: &str| StackSpec {
            route_selection_expression: e.to_owned(),
            ..StackSpec::default()
        };
        assert_eq!(StackSpec::default().selection_path().unwrap(), ["type"]);
        assert_eq!(
            spec("$request.body.a.b").selection_path().unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            spec("${request.body.action}").selection_path().unwrap(),
            ["action"]
        );
        assert_eq!(
            spec("${request.body.a.b}").selection_path().unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn unsupported_selection_expressions_are_refused_with_the_supported_forms() {
        let cases = [
            ("", "it is empty"),
            (
                "$request.header.x-type",
                "only the message body can select a route",
            ),
            ("request.body.type", "it does not start with \"$\""),
            (
                "$request.bodytype",
                "only the message body can select a route",
            ),
            ("$request.body", "it names the whole body, not a key in it"),
            ("$request.body.", "the body path has an empty key"),
            ("$request.body.a..b", "the body path has an empty key"),
            (
                "${request.body.version}-beta",
                "text around the ${...} variable is not supported",
            ),
            (
                "${request.body.type",
                "the \"${\" is never closed with \"}\"",
            ),
            (
                "$request.body.ty pe",
                "a body key contains whitespace or one of $ { } [ ]",
            ),
            (
                "$request.body.items[0]",
                "a body key contains whitespace or one of $ { } [ ]",
            ),
        ];
        for (expression, reason) in cases {
            let text = format!("route_selection_expression = {}", quoted(expression));
            assert_eq!(
                err(&text),
                format!(
                    "route selection expression \"{expression}\": {reason} (use \
                     $request.body.<key>[.<key>...] or ${{request.body.<key>[.<key>...]}}, \
                     e.g. $request.body.type)"
                ),
                "{expression}"
            );
        }
    }

    #[test]
    fn duplicate_routes_are_refused() {
        let text = r#"
            [[routes]]
            key = "message"
            handler = "a"
            [[routes]]
            key = "message"
            handler = "b"
        "#;
        assert_eq!(
            err(text),
            "duplicate route \"message\" (each key may appear once in routes)"
        );
    }

    #[test]
    fn empty_route_keys_are_refused() {
        let spec = with_routes(vec![RouteSpec::new("a", "h"), RouteSpec::new("", "h")]);
        assert_eq!(
            validate_err(&spec),
            "route 2 has an empty key (give it one, e.g. key = \"message\")"
        );
    }

    #[test]
    fn unknown_dollar_keys_are_refused() {
        for key in ["$message", "$Default", "$"] {
            let spec = with_routes(vec![RouteSpec::new(key, "h")]);
            assert_eq!(
                validate_err(&spec),
                format!(
                    "route \"{key}\": only $connect, $disconnect and $default may start with \
                     \"$\" (rename the route without the \"$\")"
                )
            );
        }
    }

    #[test]
    fn no_routes_is_refused() {
        assert_eq!(
            err("routes = []"),
            "no routes (add a [[routes]] entry, or leave routes out to get the default ones)"
        );
    }

    #[test]
    fn bad_handler_names_are_refused() {
        let long = "h".repeat(65);
        for handler in ["", "ws message", "ws.message", "wś", long.as_str()] {
            let spec = with_routes(vec![RouteSpec::new("message", handler)]);
            assert_eq!(
                validate_err(&spec),
                format!(
                    "route \"message\": handler \"{handler}\" is not a function name (use 1 to \
                     64 letters, digits, \"-\" or \"_\", e.g. \"ws-message\")"
                )
            );
        }
        let spec = with_routes(vec![RouteSpec::new("m", "h".repeat(64))]);
        spec.validate().unwrap();
    }

    #[test]
    fn route_response_is_refused_on_disconnect_and_connect() {
        let spec = with_routes(vec![
            RouteSpec::new("$disconnect", "ws-disconnect").with_route_response(),
        ]);
        assert_eq!(
            validate_err(&spec),
            "route \"$disconnect\": route_response is not supported there, the connection is \
             already closed when it runs (remove route_response)"
        );
        let spec = with_routes(vec![
            RouteSpec::new("$connect", "ws-connect").with_route_response(),
        ]);
        assert_eq!(
            validate_err(&spec),
            "route \"$connect\": route_response is not supported there, its handler's status \
             code only accepts or refuses the handshake and no body is sent (remove \
             route_response)"
        );
        let spec = with_routes(vec![
            RouteSpec::new("echo", "ws-default").with_route_response(),
        ]);
        spec.validate().unwrap();
    }

    #[test]
    fn bad_stage_names_are_refused() {
        let long = "s".repeat(129);
        for stage in ["", "my stage", "v1.0", long.as_str()] {
            let text = format!("stage = {}", quoted(stage));
            assert_eq!(
                err(&text),
                format!(
                    "stage name \"{stage}\" is invalid (API Gateway needs 1 to 128 letters, \
                     digits, \"-\" or \"_\", e.g. \"dev\")"
                )
            );
        }
        StackSpec::from_toml(&format!("stage = \"{}\"", "s".repeat(128))).unwrap();
        StackSpec::from_toml("stage = \"Prod_2-b\"").unwrap();
    }

    #[test]
    fn bad_table_names_are_refused() {
        let long = "t".repeat(256);
        for table in ["ab", "my table", "ws/conns", long.as_str()] {
            let text = format!("table = {}", quoted(table));
            assert_eq!(
                err(&text),
                format!(
                    "table name \"{table}\" is invalid (DynamoDB needs 3 to 255 letters, \
                     digits, \"_\", \"-\" or \".\", e.g. \"WS_CONNECTIONS\")"
                )
            );
        }
        StackSpec::from_toml("table = \"a.b-c_1\"").unwrap();
        StackSpec::from_toml(&format!("table = \"{}\"", "t".repeat(255))).unwrap();
    }

    #[test]
    fn bad_api_names_are_refused() {
        assert_eq!(
            err("api_name = \"\""),
            "api name is empty (name the API, e.g. \"wsadmin-demo\")"
        );
        assert_eq!(
            err("api_name = \"  \""),
            "api name is empty (name the API, e.g. \"wsadmin-demo\")"
        );
        assert_eq!(
            err(&format!("api_name = \"{}\"", "é".repeat(129))),
            "api name is 129 characters long (API Gateway allows at most 128)"
        );
        StackSpec::from_toml(&format!("api_name = \"{}\"", "é".repeat(128))).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_where_they_are() {
        let message = err("stag = \"prod\"");
        assert!(
            message.starts_with("TOML parse error at line 1, column 1"),
            "{message}"
        );
        assert!(message.contains("unknown field `stag`"), "{message}");

        let message = err("[[routes]]\nkey = \"a\"\nhandler = \"h\"\nroute_respons = true\n");
        assert!(
            message.starts_with("TOML parse error at line 4, column 1"),
            "{message}"
        );
        assert!(
            message.contains("unknown field `route_respons`"),
            "{message}"
        );
    }

    #[test]
    fn syntax_errors_show_line_and_column() {
        let message = err("stage = \"dev\"\ntable = WS_CONNECTIONS\n");
        assert!(
            message.starts_with("TOML parse error at line 2, column 9"),
            "{message}"
        );
        assert!(message.contains("table = WS_CONNECTIONS"), "{message}");
        assert!(!message.ends_with('\n'));
    }

    #[test]
    fn a_route_without_a_handler_is_refused() {
        let message = err("[[routes]]\nkey = \"a\"\n");
        assert!(message.contains("missing field `handler`"), "{message}");
    }

    #[test]
    fn load_names_a_missing_file() {
        let path = std::env::temp_dir().join("wsadmin-no-such-dir/stack.toml");
        let message = StackSpec::load(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "stack file \"{}\": cannot read it: ",
                path.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn load_names_the_file_of_an_invalid_stack() {
        let dir = std::env::temp_dir().join(format!("wsadmin-stack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.toml");
        std::fs::write(
            &path,
            "[[routes]]\nkey = \"message\"\nhandler = \"a\"\n\
             [[routes]]\nkey = \"message\"\nhandler = \"b\"\n",
        )
        .unwrap();
        let result = StackSpec::load(&path);
        std::fs::write(&path, "stage = \"prod\"\n").unwrap();
        let loaded = StackSpec::load(&path);
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(
            result.unwrap_err().to_string(),
            format!(
                "stack file \"{}\": duplicate route \"message\" (each key may appear once in \
                 routes)",
                path.display()
            )
        );
        assert_eq!(loaded.unwrap().stage, "prod");
    }

    #[test]
    fn an_authorizer_reads_from_toml_and_round_trips() {
        let spec = StackSpec::from_toml(
            r#"
            [[routes]]
            key = "$connect"
            handler = "ws-connect"
            authorization = "CUSTOM"
            [routes.authorizer]
            name = "token"
            function = "auth"
            identity_source = ["route.request.querystring.token", "route.request.header.X-Key"]

            [[routes]]
            key = "$disconnect"
            handler = "ws-disconnect"

            [[functions]]
            name = "auth"
            runtime = "nodejs20.x"
            handler = "index.handler"
            code = { inline = "exports.handler = async () => ({})" }
            "#,
        )
        .unwrap();
        let connect = spec.route("$connect").unwrap();
        assert_eq!(connect.authorization, Authorization::Custom);
        let authorizer = connect.authorizer.as_ref().unwrap();
        assert_eq!(authorizer.function, "auth");
        let sources: Vec<IdentitySource> = authorizer
            .identity_source
            .iter()
            .map(|s| IdentitySource::parse(s).unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                IdentitySource::Query("token".into()),
                IdentitySource::Header("X-Key".into())
            ]
        );
        assert_eq!(StackSpec::from_toml(&spec.to_toml()).unwrap(), spec);
        let iam = StackSpec::from_toml(
            "[[routes]]\nkey = \"$connect\"\nhandler = \"ws-connect\"\nauthorization = \"AWS_IAM\"\n",
        )
        .unwrap();
        assert_eq!(iam.routes[0].authorization, Authorization::AwsIam);
    }

    #[test]
    fn authorization_mistakes_are_refused_in_one_line() {
        let authorizer = |function: &str, source: &str| AuthorizerSpec {
            name: "token".into(),
            function: function.into(),
            identity_source: vec![source.into()],
        };
        let ok_source = "route.request.querystring.token";
        let on_message = with_routes(vec![RouteSpec::new("message", "ws-message").with_iam()]);
        assert!(validate_err(&on_message).contains("only $connect may have an authorization"));
        let mut custom = RouteSpec::new("$connect", "ws-connect");
        custom.authorization = Authorization::Custom;
        assert!(validate_err(&with_routes(vec![custom])).contains("needs an authorizer"));
        let mut unused = RouteSpec::new("$connect", "ws-connect");
        unused.authorizer = Some(authorizer("auth", ok_source));
        assert!(validate_err(&with_routes(vec![unused])).contains("only with authorization"));
        let undeclared = with_routes(vec![
            RouteSpec::new("$connect", "ws-connect").with_authorizer(authorizer("auth", ok_source)),
        ]);
        assert!(validate_err(&undeclared).contains("\"auth\" is not declared in functions"));
        let bad_source = with_routes(vec![
            RouteSpec::new("$connect", "ws-connect")
                .with_authorizer(authorizer("auth", "route.request.body.token")),
        ]);
        assert_eq!(
            validate_err(&bad_source),
            "identity source \"route.request.body.token\" is not route.request.header.NAME or \
             route.request.querystring.NAME"
        );
        assert!(IdentitySource::parse("route.request.header.").is_err());
        let typo =
            err("[[routes]]\nkey = \"$connect\"\nhandler = \"c\"\nauthorization = \"JWT\"\n");
        assert!(typo.contains("unknown variant"), "{typo}");
    }
}
