//! The resources of a template that change what runs locally, read into
//! the stack description: the WebSocket API (`AWS::ApiGatewayV2::Api`,
//! ProtocolType WEBSOCKET), its routes followed from `Target` to
//! integration to function, route responses, its stage and authorizers;
//! functions (`AWS::Lambda::Function`, SAM's `AWS::Serverless::Function`
//! with the template's `Globals.Function`); the connection table.
//!
//! A function with `wsstack:handler` metadata (what `wsstack template`
//! writes) is one of our handlers, run in-process: the route names that
//! handler and no [`FunctionSpec`] is made. Any other function a route or
//! an authorizer reaches becomes a [`FunctionSpec`]; a function nothing
//! reaches is passed over, as are the resources that do not change what
//! runs locally (IAM, permissions, log groups, deployments, an HTTP API,
//! types it does not know: those with a `tracing::debug!`).
//!
//! It must not read files: the one thing it asks the file system is
//! whether a SAM `CodeUri` is a directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};
use wsadmin_core::TableConfig;
use wsadmin_core::function::{FunctionCode, FunctionSpec, Runtime};
use wsadmin_core::stack::{
    AuthorizerSpec, IndexKeys, KeyAttribute, ROUTE_CONNECT, ROUTE_DEFAULT, ROUTE_DISCONNECT,
    RouteSpec, StackSpec, TableKeys,
};

use super::intrinsics::{
    API_TYPE, FUNCTION_TYPES, Inputs, Resolver, TABLE_TYPE, Unresolved, escape, text,
};
use super::yaml::{Document, Lines, child};
use super::{FromTemplateError, TemplateStack};
use crate::template::{Function, HANDLER_METADATA};

const STAGE: &str = "AWS::ApiGatewayV2::Stage";
const ROUTE: &str = "AWS::ApiGatewayV2::Route";
const ROUTE_RESPONSE: &str = "AWS::ApiGatewayV2::RouteResponse";
const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
const AUTHORIZER: &str = "AWS::ApiGatewayV2::Authorizer";
const SAM_FUNCTION: &str = "AWS::Serverless::Function";
/// The transform SAM templates declare.
const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// Types that do not change what runs locally: passed over quietly.
const PASSED_OVER: &[&str] = &[
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGateway::Account",
];

/// An `AWS::ApiGatewayV2::Authorizer` of the WebSocket API, read and
/// checked; the routes it guards carry it into the stack description
/// (`RouteSpec::authorizer`) and its function joins `StackSpec::functions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    /// Its logical id.
    pub id: String,
    pub name: String,
    /// The function that decides (the one its `AuthorizerUri` names).
    pub function: FunctionSpec,
    /// Where the caller's identity is read, e.g. `route.request.header.Auth`.
    pub identity_source: Vec<String>,
    /// The keys of the routes that use it (only `$connect` may, on AWS).
    pub routes: Vec<String>,
}

/// The stack `template` describes.
pub fn read(
    doc: &Document,
    inputs: &Inputs,
    base: &Path,
) -> Result<TemplateStack, FromTemplateError> {
    let template = doc
        .value
        .as_object()
        .ok_or(FromTemplateError::NotATemplate)?;
    let resources = template
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or(FromTemplateError::NotATemplate)?;
    check_transform(template)?;
    for name in inputs.parameters.keys() {
        if template
            .get("Parameters")
            .and_then(|p| p.get(name))
            .is_none()
        {
            return Err(FromTemplateError::UnknownInput {
                flag: "--parameter",
                name: name.clone(),
                what: "parameter",
            });
        }
    }
    for id in inputs.code.keys() {
        let ty = resources
            .get(id)
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str);
        if !ty.is_some_and(|t| FUNCTION_TYPES.contains(&t)) {
            return Err(FromTemplateError::UnknownInput {
                flag: "--code",
                name: id.clone(),
                what: "function",
            });
        }
    }
    let reader = Reader {
        lines: &doc.lines,
        resolver: Resolver::new(template, resources, inputs),
        resources,
        globals: template
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Value::as_object),
        inputs,
        base,
    };
    reader.stack()
}

fn check_transform(template: &Map<String, Value>) -> Result<(), FromTemplateError> {
    let transforms: Vec<&Value> = match template.get("Transform") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    for t in transforms {
        if t.as_str() != Some(SAM_TRANSFORM) {
            return Err(FromTemplateError::Transform(t.to_string()));
        }
    }
    Ok(())
}

struct Reader<'a> {
    lines: &'a Lines,
    resolver: Resolver<'a>,
    resources: &'a Map<String, Value>,
    /// SAM's `Globals.Function`: under every `AWS::Serverless::Function`.
    globals: Option<&'a Map<String, Value>>,
    inputs: &'a Inputs,
    /// The template's directory, which a SAM `CodeUri` is relative to.
    base: &'a Path,
}

/// One resource the template creates (its `Condition`, if any, holds).
#[derive(Clone, Copy)]
struct Resource<'a> {
    id: &'a str,
    ty: &'a str,
    value: &'a Value,
}

type Result<T, E = FromTemplateError> = std::result::Result<T, E>;

impl<'a> Reader<'a> {
    fn stack(&self) -> Result<TemplateStack> {
        let included = self.included()?;
        let of_type = |ty: &str| -> Vec<Resource<'a>> {
            included.iter().filter(|r| r.ty == ty).copied().collect()
        };

        let mut apis = Vec::new();
        for api in of_type(API_TYPE) {
            let protocol = self.string(api, "ProtocolType")?;
            if protocol.as_deref() == Some("WEBSOCKET") {
                apis.push(api);
            } else {
                tracing::debug!(
                    "{}: protocol {protocol:?} is not the WebSocket API: passed over",
                    api.id
                );
            }
        }
        let api = one(
            apis,
            "WebSocket API (AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET)",
            API_TYPE,
        )?;
        let other_apis: Vec<&str> = of_type(API_TYPE)
            .iter()
            .map(|r| r.id)
            .filter(|id| *id != api.id)
            .collect();
        // A resource of another API (an HTTP API beside it) is not ours.
        let ours = |r: &Resource| {
            let refs = r
                .value
                .get("Properties")
                .and_then(|p| p.get("ApiId"))
                .map(references)
                .unwrap_or_default();
            refs.contains(&api.id) || !refs.iter().any(|id| other_apis.contains(id))
        };

        let mut functions: BTreeMap<&str, Handler> = BTreeMap::new();
        let mut routes = Vec::new();
        let mut route_ids = BTreeMap::new();
        let mut authorized: BTreeMap<String, (Resource<'a>, Vec<String>)> = BTreeMap::new();
        for route in of_type(ROUTE).into_iter().filter(|r| ours(r)) {
            let key = self.required(route, "RouteKey")?;
            let target = self.required(route, "Target")?;
            let integration = target
                .strip_prefix("integrations/")
                .and_then(|id| included.iter().find(|r| r.ty == INTEGRATION && r.id == id))
                .ok_or_else(|| {
                    self.at(
                        route,
                        "Target",
                        format!(
                            "\"{target}\" names no integration (AWS::ApiGatewayV2::Integration) \
                             of the template (write integrations/ID, e.g. !Sub \
                             integrations/${{ConnectIntegration}})"
                        ),
                    )
                })?;
            let function = self.function_of(*integration, "IntegrationUri", &included, &key)?;
            let handler = match functions.get(function.id) {
                Some(h) => h.clone(),
                None => {
                    let h = self.handler(function)?;
                    functions.insert(function.id, h.clone());
                    h
                }
            };
            let mut spec = RouteSpec::new(key.clone(), handler.name());
            match self.string(route, "AuthorizationType")?.as_deref() {
                Some("CUSTOM" | "AWS_IAM") if key != ROUTE_CONNECT => {
                    return Err(self.at(
                        route,
                        "AuthorizationType",
                        format!(
                            "route \"{key}\": only $connect may be authorized on a WebSocket API"
                        ),
                    ));
                }
                Some("CUSTOM") => {
                    let id = self.required(route, "AuthorizerId")?;
                    authorized
                        .entry(id)
                        .or_insert((route, Vec::new()))
                        .1
                        .push(key.clone());
                }
                Some("AWS_IAM") => spec = spec.with_iam(),
                Some("NONE") | None => {}
                Some(other) => {
                    return Err(self.at(
                        route,
                        "AuthorizationType",
                        format!("\"{other}\" is not NONE, AWS_IAM or CUSTOM"),
                    ));
                }
            }
            route_ids.insert(route.id, routes.len());
            routes.push(spec);
        }
        for response in of_type(ROUTE_RESPONSE).into_iter().filter(|r| ours(r)) {
            let route = self.required(response, "RouteId")?;
            let index = route_ids.get(route.as_str()).ok_or_else(|| {
                self.at(
                    response,
                    "RouteId",
                    format!(
                        "\"{route}\" names no route (AWS::ApiGatewayV2::Route) of the template"
                    ),
                )
            })?;
            routes[*index].route_response = true;
        }
        // The built-in routes first, as a description lists them.
        routes.sort_by(|a, b| {
            let rank = |k: &str| {
                [ROUTE_CONNECT, ROUTE_DISCONNECT, ROUTE_DEFAULT]
                    .iter()
                    .position(|s| *s == k)
                    .unwrap_or(3)
            };
            (rank(&a.key), &a.key).cmp(&(rank(&b.key), &b.key))
        });

        let mut authorizers = Vec::new();
        for authorizer in of_type(AUTHORIZER).into_iter().filter(|r| ours(r)) {
            authorizers.push(self.authorizer(authorizer, &included, &mut authorized)?);
        }
        // Each route an authorizer guards runs it, in the function's runtime.
        let mut authorizer_functions: Vec<FunctionSpec> = Vec::new();
        for authorizer in &authorizers {
            for key in &authorizer.routes {
                if let Some(route) = routes.iter_mut().find(|r| &r.key == key) {
                    *route = route.clone().with_authorizer(AuthorizerSpec {
                        name: authorizer.name.clone(),
                        function: authorizer.function.name.clone(),
                        identity_source: authorizer.identity_source.clone(),
                    });
                }
            }
            if !authorizer.routes.is_empty()
                && !authorizer_functions
                    .iter()
                    .any(|f| f.name == authorizer.function.name)
            {
                authorizer_functions.push(authorizer.function.clone());
            }
        }
        if let Some((id, (route, _))) = authorized.into_iter().next() {
            return Err(self.at(
                route,
                "AuthorizerId",
                format!(
                    "\"{id}\" names no authorizer (AWS::ApiGatewayV2::Authorizer) of the template"
                ),
            ));
        }

        let stage = one(
            of_type(STAGE).into_iter().filter(|r| ours(r)).collect(),
            "stage (AWS::ApiGatewayV2::Stage)",
            STAGE,
        )?;
        let in_process = functions.values().any(|h| matches!(h, Handler::Ours(_)));
        let (table, table_keys) = self.table(&of_type(TABLE_TYPE), &functions, in_process)?;

        let spec = StackSpec {
            api_name: self.required(api, "Name")?,
            route_selection_expression: self.required(api, "RouteSelectionExpression")?,
            stage: self.required(stage, "StageName")?,
            table,
            table_keys,
            routes,
            functions: {
                let mut specs: Vec<FunctionSpec> = functions
                    .into_values()
                    .filter_map(|h| match h {
                        Handler::Spec(f) => Some(f),
                        Handler::Ours(_) => None,
                    })
                    .collect();
                for f in authorizer_functions {
                    if !specs.iter().any(|s| s.name == f.name) {
                        specs.push(f);
                    }
                }
                specs
            },
        };
        spec.validate()?;
        Ok(TemplateStack {
            stack: spec,
            authorizers,
        })
    }

    /// The resources the template creates: a resource whose `Condition`
    /// is false is left out.
    fn included(&self) -> Result<Vec<Resource<'a>>> {
        let mut out = Vec::new();
        for (id, value) in self.resources {
            let Some(ty) = value.get("Type").and_then(Value::as_str) else {
                return Err(FromTemplateError::At {
                    resource: id.clone(),
                    property: "Type".into(),
                    line: self.lines.line(&format!("/Resources/{}", escape(id))),
                    problem: "is missing or not a string".into(),
                });
            };
            let resource = Resource { id, ty, value };
            if let Some(condition) = value.get("Condition") {
                let pointer = self.pointer_of(resource, "Condition");
                let Value::String(name) = condition else {
                    return Err(self.at(resource, "Condition", "is not a condition's name"));
                };
                if !self
                    .resolver
                    .condition(name, &pointer)
                    .map_err(|e| self.unresolved(resource, "Condition", e))?
                {
                    tracing::debug!("{id}: its condition {name} is false: left out");
                    continue;
                }
            }
            if PASSED_OVER.contains(&ty) {
                continue;
            }
            let known = [
                API_TYPE,
                STAGE,
                ROUTE,
                ROUTE_RESPONSE,
                INTEGRATION,
                AUTHORIZER,
                TABLE_TYPE,
            ];
            if !known.contains(&ty) && !FUNCTION_TYPES.contains(&ty) {
                tracing::debug!("{id}: {ty} does not change what runs locally: passed over");
            }
            out.push(resource);
        }
        Ok(out)
    }

    /// The function an integration's or authorizer's URI names: the
    /// function ARN in it (`...:function:NAME/invocations`).
    fn function_of(
        &self,
        r: Resource<'a>,
        property: &str,
        included: &[Resource<'a>],
        route: &str,
    ) -> Result<Resource<'a>> {
        let uri = self.required(r, property)?;
        let Some(name) = uri
            .split(":function:")
            .nth(1)
            .map(|rest| rest.split(['/', ':']).next().unwrap_or_default().to_owned())
        else {
            return Err(self.at(
                r,
                property,
                format!(
                    "\"{uri}\" names no Lambda function (the local stack runs functions only: \
                     ...:function:NAME/invocations)"
                ),
            ));
        };
        for f in included.iter().filter(|f| FUNCTION_TYPES.contains(&f.ty)) {
            let pointer = format!("/Resources/{}", escape(f.id));
            let physical = self
                .resolver
                .physical_name(f.id, &pointer)
                .map_err(|e| self.unresolved(*f, "FunctionName", e))?;
            if physical == name {
                return Ok(*f);
            }
        }
        Err(self.at(
            r,
            property,
            format!(
                "names function \"{name}\", which is not a function of the template (route \
                 \"{route}\" uses it)"
            ),
        ))
    }

    fn authorizer(
        &self,
        r: Resource<'a>,
        included: &[Resource<'a>],
        authorized: &mut BTreeMap<String, (Resource<'a>, Vec<String>)>,
    ) -> Result<Authorizer> {
        let kind = self.required(r, "AuthorizerType")?;
        if kind != "REQUEST" {
            return Err(self.at(
                r,
                "AuthorizerType",
                format!("\"{kind}\" is not REQUEST, the one type a WebSocket API has"),
            ));
        }
        let function = self.function_of(r, "AuthorizerUri", included, "(authorizer)")?;
        let Handler::Spec(function) = self.handler(function)? else {
            return Err(self.at(
                r,
                "AuthorizerUri",
                "names one of wsstack's handlers, which is no authorizer",
            ));
        };
        let identity_source = match self.resolved(r, "IdentitySource")? {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
            Some(other) => text(&other).into_iter().collect(),
        };
        Ok(Authorizer {
            id: r.id.to_owned(),
            name: self.string(r, "Name")?.unwrap_or_else(|| r.id.to_owned()),
            function,
            identity_source,
            routes: authorized
                .remove(r.id)
                .map(|(_, keys)| keys)
                .unwrap_or_default(),
        })
    }

    /// What runs a function: one of our handlers, or the function itself.
    fn handler(&self, f: Resource<'a>) -> Result<Handler> {
        if let Some(name) = f
            .value
            .get("Metadata")
            .and_then(|m| m.get(HANDLER_METADATA))
            .and_then(Value::as_str)
        {
            let ours =
                Function::from_handler(name).ok_or_else(|| FromTemplateError::UnknownHandler {
                    id: f.id.to_owned(),
                    handler: name.to_owned(),
                })?;
            return Ok(Handler::Ours(ours));
        }
        self.function(f).map(Handler::Spec)
    }

    fn function(&self, f: Resource<'a>) -> Result<FunctionSpec> {
        let name = self
            .resolver
            .physical_name(f.id, &self.pointer_of(f, "FunctionName"))
            .map_err(|e| self.unresolved(f, "FunctionName", e))?;
        if self.string(f, "PackageType")?.as_deref() == Some("Image") {
            return Err(self.at(
                f,
                "PackageType",
                "a container image is not run by the local stack (use a runtime and code)",
            ));
        }
        let runtime = self.required(f, "Runtime")?;
        if let Err(e) = Runtime::parse(&runtime) {
            return Err(self.at(f, "Runtime", format!("function \"{name}\" {e}")));
        }
        let code = self.code(f)?;
        let mut spec = FunctionSpec::new(
            name,
            runtime,
            self.string(f, "Handler")?.unwrap_or_default(),
            code,
        );
        spec.environment = self.environment(f)?;
        if let Some(timeout) = self.number(f, "Timeout")? {
            spec.timeout_seconds = timeout;
        }
        if let Some(memory) = self.number(f, "MemorySize")? {
            spec.memory_mb = memory;
        }
        spec.reserved_concurrency = self.number(f, "ReservedConcurrentExecutions")?;
        spec.validate()
            .map_err(|e| self.at(f, "Properties", e.to_string()))?;
        Ok(spec)
    }

    fn code(&self, f: Resource<'a>) -> Result<FunctionCode> {
        if let Some(dir) = self.inputs.code.get(f.id) {
            return Ok(FunctionCode::Dir(dir.clone()));
        }
        let needs_code = |property: &str, where_: &str| {
            self.at(
                f,
                property,
                format!(
                    "the code is {where_}, which the local stack does not fetch (give --code \
                     {}=DIR, a directory holding the code unzipped)",
                    f.id
                ),
            )
        };
        if f.ty == SAM_FUNCTION {
            if let Some(inline) = self.string(f, "InlineCode")? {
                return Ok(FunctionCode::Inline(inline));
            }
            return match self.resolved(f, "CodeUri")? {
                Some(Value::String(uri)) if uri.starts_with("s3://") => {
                    Err(needs_code("CodeUri", "in S3"))
                }
                Some(Value::String(uri)) => {
                    let dir = self.base.join(&uri);
                    if dir.is_dir() {
                        Ok(FunctionCode::Dir(dir))
                    } else {
                        Err(self.at(
                            f,
                            "CodeUri",
                            format!(
                                "directory \"{}\" does not exist (CodeUri is read relative to \
                                 the template's directory)",
                                dir.display()
                            ),
                        ))
                    }
                }
                Some(_) => Err(needs_code("CodeUri", "in S3")),
                None => Err(self.at(
                    f,
                    "CodeUri",
                    "is missing (give CodeUri, a directory, or InlineCode)",
                )),
            };
        }
        let Some((raw, pointer)) = self.property(f, "Code") else {
            return Err(self.at(
                f,
                "Code",
                "is missing (give Code.ZipFile, or --code ID=DIR)",
            ));
        };
        // Only what is read is resolved: an S3 bucket's parameter needs no value.
        let code = match raw {
            Value::Object(map) if !map.contains_key("Fn::If") => raw.clone(),
            _ => self
                .resolver
                .resolve(raw, &pointer)
                .map_err(|e| self.unresolved(f, "Code", e))?
                .unwrap_or_default(),
        };
        if let Some(zip) = code.get("ZipFile") {
            let zip = self
                .resolver
                .string(zip, &child(&pointer, "ZipFile"))
                .map_err(|e| self.unresolved(f, "Code.ZipFile", e))?
                .unwrap_or_default();
            return Ok(FunctionCode::Inline(zip));
        }
        if code.get("ImageUri").is_some() {
            return Err(self.at(
                f,
                "Code.ImageUri",
                "a container image is not run by the local stack (use a runtime and code)",
            ));
        }
        Err(needs_code("Code", "in S3 (S3Bucket, S3Key)"))
    }

    /// `Environment.Variables`, SAM's globals under the function's own.
    fn environment(&self, f: Resource<'a>) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (name, value, pointer) in self.variables(f) {
            let property = format!("Environment.Variables.{name}");
            let value = self
                .resolver
                .resolve(value, &pointer)
                .map_err(|e| self.unresolved(f, &property, e))?;
            let Some(value) = value else { continue };
            let value = text(&value).ok_or_else(|| {
                self.at(
                    f,
                    &property,
                    format!("{value} is not text (a variable is a string)"),
                )
            })?;
            out.insert(name.to_owned(), value);
        }
        Ok(out)
    }

    /// The raw variables of a function, with where each is written.
    fn variables(&self, f: Resource<'a>) -> Vec<(&'a str, &'a Value, String)> {
        let mut out: BTreeMap<&str, (&Value, String)> = BTreeMap::new();
        let mut sources = Vec::new();
        if f.ty == SAM_FUNCTION
            && let Some(globals) = self.globals
        {
            sources.push((
                globals.get("Environment"),
                "/Globals/Function/Environment".to_owned(),
            ));
        }
        sources.push((
            f.value.get("Properties").and_then(|p| p.get("Environment")),
            format!("/Resources/{}/Properties/Environment", escape(f.id)),
        ));
        for (environment, pointer) in sources {
            let Some(variables) = environment
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_object)
            else {
                continue;
            };
            for (name, value) in variables {
                out.insert(name, (value, child(&child(&pointer, "Variables"), name)));
            }
        }
        out.into_iter().map(|(n, (v, p))| (n, v, p)).collect()
    }

    /// The connection table and its keys, if not our own.
    fn table(
        &self,
        tables: &[Resource<'a>],
        functions: &BTreeMap<&str, Handler>,
        in_process: bool,
    ) -> Result<(String, Option<TableKeys>)> {
        let table = match tables {
            [] => return Ok((TableConfig::DEFAULT_NAME.to_owned(), None)),
            [one] => *one,
            several => {
                let referenced: BTreeSet<&str> = functions
                    .keys()
                    .flat_map(|id| {
                        let f = Resource {
                            id,
                            ty: self.resources[*id]["Type"].as_str().unwrap_or(""),
                            value: &self.resources[*id],
                        };
                        self.variables(f)
                            .into_iter()
                            .flat_map(|(_, v, _)| references(v))
                            .collect::<Vec<_>>()
                    })
                    .filter(|id| several.iter().any(|t| t.id == *id))
                    .collect();
                match referenced.iter().collect::<Vec<_>>().as_slice() {
                    [id] => *several.iter().find(|t| t.id == **id).expect("one of them"),
                    _ => {
                        return Err(FromTemplateError::Tables {
                            ids: several.iter().map(|t| t.id.to_owned()).collect(),
                            referenced: referenced.iter().map(|s| (*s).to_owned()).collect(),
                        });
                    }
                }
            }
        };
        let name = self
            .resolver
            .physical_name(table.id, &self.pointer_of(table, "TableName"))
            .map_err(|e| self.unresolved(table, "TableName", e))?;
        let schema = self.resolved(table, "KeySchema")?;
        let definitions = self.resolved(table, "AttributeDefinitions")?;
        let key = |kind: &str| -> Option<KeyAttribute> {
            let name = schema
                .as_ref()?
                .as_array()?
                .iter()
                .find(|k| k.get("KeyType").and_then(Value::as_str) == Some(kind))?
                .get("AttributeName")?
                .as_str()?
                .to_owned();
            let kind = definitions
                .as_ref()
                .and_then(Value::as_array)
                .and_then(|defs| {
                    defs.iter()
                        .find(|d| d.get("AttributeName").and_then(Value::as_str) == Some(&name))
                })
                .and_then(|d| d.get("AttributeType"))
                .and_then(Value::as_str)
                .unwrap_or("S")
                .to_owned();
            Some(KeyAttribute { name, kind })
        };
        let Some(hash) = key("HASH") else {
            return Ok((name, None));
        };
        let range = key("RANGE");
        let attribute = |name: &str| KeyAttribute {
            name: name.to_owned(),
            kind: definitions
                .as_ref()
                .and_then(Value::as_array)
                .and_then(|defs| {
                    defs.iter()
                        .find(|d| d.get("AttributeName").and_then(Value::as_str) == Some(name))
                })
                .and_then(|d| d.get("AttributeType"))
                .and_then(Value::as_str)
                .unwrap_or("S")
                .to_owned(),
        };
        let indexes: Vec<IndexKeys> = self
            .resolved(table, "GlobalSecondaryIndexes")?
            .as_ref()
            .and_then(Value::as_array)
            .map(|indexes| {
                indexes
                    .iter()
                    .filter_map(|index| {
                        let name = index.get("IndexName")?.as_str()?;
                        let hash = index
                            .get("KeySchema")?
                            .as_array()?
                            .iter()
                            .find(|k| k.get("KeyType").and_then(Value::as_str) == Some("HASH"))?
                            .get("AttributeName")?
                            .as_str()?;
                        Some(IndexKeys {
                            name: name.to_owned(),
                            hash: attribute(hash),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ours = hash.name == TableConfig::DEFAULT_KEY
            && hash.kind == "S"
            && range.is_none()
            && indexes.is_empty();
        if !ours && in_process && hash.name != TableConfig::DEFAULT_KEY {
            return Err(FromTemplateError::TableKey {
                id: table.id.to_owned(),
                key: hash.name,
            });
        }
        Ok((
            name,
            (!ours).then_some(TableKeys {
                hash,
                range,
                indexes,
            }),
        ))
    }

    // ---------------------------------------------------------- properties

    /// A property and where it is: the resource's own, else (for a SAM
    /// function) the template's `Globals.Function`.
    fn property(&self, r: Resource<'a>, key: &str) -> Option<(&'a Value, String)> {
        if let Some(v) = r.value.get("Properties").and_then(|p| p.get(key)) {
            return Some((v, self.pointer_of(r, key)));
        }
        if r.ty == SAM_FUNCTION {
            return self
                .globals
                .and_then(|g| g.get(key))
                .map(|v| (v, child("/Globals/Function", key)));
        }
        None
    }

    fn pointer_of(&self, r: Resource, key: &str) -> String {
        if key == "Condition" {
            return child(&format!("/Resources/{}", escape(r.id)), key);
        }
        child(&format!("/Resources/{}/Properties", escape(r.id)), key)
    }

    fn resolved(&self, r: Resource<'a>, key: &str) -> Result<Option<Value>> {
        let Some((value, pointer)) = self.property(r, key) else {
            return Ok(None);
        };
        self.resolver
            .resolve(value, &pointer)
            .map_err(|e| self.unresolved(r, key, e))
    }

    fn string(&self, r: Resource<'a>, key: &str) -> Result<Option<String>> {
        match self.resolved(r, key)? {
            None => Ok(None),
            Some(v) => text(&v)
                .map(Some)
                .ok_or_else(|| self.at(r, key, format!("{v} is not text"))),
        }
    }

    fn required(&self, r: Resource<'a>, key: &str) -> Result<String> {
        self.string(r, key)?
            .ok_or_else(|| self.at(r, key, "is missing"))
    }

    fn number(&self, r: Resource<'a>, key: &str) -> Result<Option<u32>> {
        match self.string(r, key)? {
            None => Ok(None),
            Some(t) => t
                .parse()
                .map(Some)
                .map_err(|_| self.at(r, key, format!("\"{t}\" is not a whole number"))),
        }
    }

    fn at(&self, r: Resource, property: &str, problem: impl Into<String>) -> FromTemplateError {
        let top = property.split('.').next().unwrap_or(property);
        let line = self
            .property(r, top)
            .map(|(_, p)| p)
            .or_else(|| Some(format!("/Resources/{}", escape(r.id))))
            .and_then(|p| self.lines.line(&p));
        FromTemplateError::At {
            resource: r.id.to_owned(),
            property: property.to_owned(),
            line,
            problem: problem.into(),
        }
    }

    fn unresolved(&self, r: Resource, property: &str, e: Unresolved) -> FromTemplateError {
        FromTemplateError::At {
            resource: r.id.to_owned(),
            property: property.to_owned(),
            line: self.lines.line(&e.pointer),
            problem: e.problem.to_string(),
        }
    }
}

/// What runs a route.
#[derive(Debug, Clone)]
enum Handler {
    /// One of our handlers, in-process.
    Ours(Function),
    Spec(FunctionSpec),
}

impl Handler {
    fn name(&self) -> String {
        match self {
            Handler::Ours(f) => f.handler().to_owned(),
            Handler::Spec(f) => f.name.clone(),
        }
    }
}

/// The one resource of a kind.
fn one<'a>(found: Vec<Resource<'a>>, what: &'static str, ty: &'static str) -> Result<Resource<'a>> {
    match found.as_slice() {
        [] => Err(FromTemplateError::Missing { what }),
        [single] => Ok(*single),
        several => Err(FromTemplateError::Several {
            what: ty,
            count: several.len(),
            ids: several.iter().map(|r| r.id.to_owned()).collect(),
        }),
    }
}

/// The logical ids a value refers to: through `Ref`, `Fn::GetAtt` and the
/// `${Id}` / `${Id.Attribute}` variables of `Fn::Sub`, anywhere inside it.
pub fn references(value: &Value) -> Vec<&str> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("Ref", Value::String(id)) => found.push(id),
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        found.extend(parts.first().and_then(Value::as_str));
                    }
                    ("Fn::GetAtt", Value::String(dotted)) => {
                        found.extend(dotted.split('.').next());
                    }
                    ("Fn::Sub", Value::String(text)) => sub_variables(text, found),
                    ("Fn::Sub", Value::Array(parts)) => {
                        if let Some(Value::String(text)) = parts.first() {
                            sub_variables(text, found);
                        }
                        for part in parts.iter().skip(1) {
                            collect_references(part, found);
                        }
                    }
                    _ => collect_references(inner, found),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_references(item, found);
            }
        }
        _ => {}
    }
}

/// The logical ids of `${Id}` and `${Id.Attribute}` in `Fn::Sub` text;
/// `${!…}` is literal text and `${AWS::…}` a pseudo parameter.
fn sub_variables<'a>(text: &'a str, found: &mut Vec<&'a str>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find('}') else { break };
        let variable = &rest[..end];
        rest = &rest[end + 1..];
        if variable.starts_with('!') || variable.starts_with("AWS::") {
            continue;
        }
        found.extend(variable.split('.').next().filter(|id| !id.is_empty()));
    }
}
