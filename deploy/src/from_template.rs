//! The stack description read back from a CloudFormation template, so that
//! `wsstack local --template FILE` runs the artifact that goes to AWS.
//!
//! Owns the reading: the WebSocket API (its name and route selection
//! expression), the stage, the table, and the routes, each followed from
//! its `Target` to its integration, from the integration's `IntegrationUri`
//! to its `AWS::Lambda::Function`, and from the function to the handler its
//! `wsstack:handler` metadata names (a function's code is only a zip); a
//! route has a route response when an `AWS::ApiGatewayV2::RouteResponse`
//! names it. What comes out is validated like any description.
//!
//! It reads both forms `wsstack template` writes: JSON, and its YAML
//! (through [`crate::yaml_reader`], which reads that subset only). It must
//! not start anything or call AWS: [`stack_from_template`] is a function
//! over a value; only [`load`] reads a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use wsadmin_core::TableConfig;
use wsadmin_core::stack::{
    ROUTE_CONNECT, ROUTE_DEFAULT, ROUTE_DISCONNECT, RouteSpec, StackError, StackSpec,
};

use crate::template::{Function, HANDLER_METADATA};
use crate::yaml_reader::{self, YamlError};

const API: &str = "AWS::ApiGatewayV2::Api";
const STAGE: &str = "AWS::ApiGatewayV2::Stage";
const ROUTE: &str = "AWS::ApiGatewayV2::Route";
const ROUTE_RESPONSE: &str = "AWS::ApiGatewayV2::RouteResponse";
const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
const FUNCTION: &str = "AWS::Lambda::Function";
const TABLE: &str = "AWS::DynamoDB::Table";

#[derive(Debug, thiserror::Error)]
pub enum FromTemplateError {
    #[error("template file \"{}\": cannot read it: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("template file \"{}\" is not valid JSON: {error}", path.display())]
    NotJson {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("template file \"{}\": {error}", path.display())]
    NotYaml { path: PathBuf, error: YamlError },
    #[error("template file \"{}\": {error}", path.display())]
    File {
        path: PathBuf,
        error: Box<FromTemplateError>,
    },
    #[error(
        "not a CloudFormation template: it has no Resources (generate one with wsstack \
         template)"
    )]
    NotATemplate,
    #[error("no {what} in the template (is it one that wsstack template wrote?)")]
    Missing { what: &'static str },
    #[error("{count} {what} resources in the template ({}); the local stack runs one", ids.join(", "))]
    Several {
        what: &'static str,
        count: usize,
        ids: Vec<String>,
    },
    #[error("resource \"{id}\": {property} is missing or not a string")]
    Property { id: String, property: &'static str },
    #[error("resource \"{id}\": its {property} names no {what} of the template")]
    Dangling {
        id: String,
        property: &'static str,
        what: &'static str,
    },
    #[error(
        "function \"{id}\" has no \"{HANDLER_METADATA}\" metadata, so the local stack cannot \
         tell which handler runs it (generate the template with wsstack template)"
    )]
    NoHandler { id: String },
    #[error(
        "function \"{id}\": handler \"{handler}\" is not one the local stack runs (use \
         ws-connect, ws-disconnect, ws-default or ws-message)"
    )]
    UnknownHandler { id: String, handler: String },
    #[error(
        "table \"{id}\": hash key \"{key}\" is not the one the handlers write ({})",
        TableConfig::DEFAULT_KEY
    )]
    TableKey { id: String, key: String },
    #[error(transparent)]
    Invalid(#[from] StackError),
}

/// Reads the template at `path`, JSON (it starts with `{`) or YAML; every
/// error names the file.
pub fn load(path: &Path) -> Result<StackSpec, FromTemplateError> {
    let text = std::fs::read_to_string(path).map_err(|error| FromTemplateError::Read {
        path: path.to_owned(),
        error,
    })?;
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|error| FromTemplateError::NotJson {
            path: path.to_owned(),
            error,
        })?
    } else {
        yaml_reader::parse(&text).map_err(|error| FromTemplateError::NotYaml {
            path: path.to_owned(),
            error,
        })?
    };
    stack_from_template(&value).map_err(|error| FromTemplateError::File {
        path: path.to_owned(),
        error: Box::new(error),
    })
}

/// The stack description a template of `wsstack template` was built from.
pub fn stack_from_template(template: &Value) -> Result<StackSpec, FromTemplateError> {
    let resources = template
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or(FromTemplateError::NotATemplate)?;
    let of_type = |ty: &str| -> Vec<(&str, &Map<String, Value>)> {
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str(), properties(r)))
            .collect()
    };

    let apis: Vec<_> = of_type(API)
        .into_iter()
        .filter(|(_, p)| p.get("ProtocolType").and_then(Value::as_str) == Some("WEBSOCKET"))
        .collect();
    let (api_id, api) = one(apis, "WebSocket API (AWS::ApiGatewayV2::Api)", API)?;
    let (stage_id, stage) = one(of_type(STAGE), "stage (AWS::ApiGatewayV2::Stage)", STAGE)?;
    let (table_id, table) = one(of_type(TABLE), "table (AWS::DynamoDB::Table)", TABLE)?;
    if let Some(key) = hash_key(table)
        && key != TableConfig::DEFAULT_KEY
    {
        return Err(FromTemplateError::TableKey {
            id: table_id.to_owned(),
            key: key.to_owned(),
        });
    }

    let integrations = of_type(INTEGRATION);
    let functions: BTreeMap<&str, &Value> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(FUNCTION))
        .map(|(id, r)| (id.as_str(), r))
        .collect();
    let responded: Vec<&str> = of_type(ROUTE_RESPONSE)
        .into_iter()
        .flat_map(|(_, p)| p.get("RouteId").map(references).unwrap_or_default())
        .collect();

    let mut routes = Vec::new();
    for (route_id, route) in of_type(ROUTE) {
        let key = string(route_id, route, "RouteKey")?;
        let target = route
            .get("Target")
            .map(references)
            .unwrap_or_default()
            .into_iter()
            .find_map(|id| integrations.iter().find(|(i, _)| *i == id))
            .ok_or_else(|| FromTemplateError::Dangling {
                id: route_id.to_owned(),
                property: "Target",
                what: "integration (AWS::ApiGatewayV2::Integration)",
            })?;
        let (integration_id, integration) = *target;
        let (function_id, function) = integration
            .get("IntegrationUri")
            .map(references)
            .unwrap_or_default()
            .into_iter()
            .find_map(|id| functions.get_key_value(id))
            .ok_or_else(|| FromTemplateError::Dangling {
                id: integration_id.to_owned(),
                property: "IntegrationUri",
                what: "function (AWS::Lambda::Function)",
            })?;
        let handler = handler(function_id, function)?;
        routes.push(RouteSpec {
            key: key.to_owned(),
            handler: handler.handler().to_owned(),
            route_response: responded.contains(&route_id),
        });
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

    let spec = StackSpec {
        api_name: string(api_id, api, "Name")?.to_owned(),
        route_selection_expression: string(api_id, api, "RouteSelectionExpression")?.to_owned(),
        stage: string(stage_id, stage, "StageName")?.to_owned(),
        table: string(table_id, table, "TableName")?.to_owned(),
        routes,
        ..StackSpec::default()
    };
    spec.validate()?;
    Ok(spec)
}

fn properties(resource: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    resource
        .get("Properties")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// The one resource of a kind.
fn one<'a>(
    found: Vec<(&'a str, &'a Map<String, Value>)>,
    what: &'static str,
    ty: &'static str,
) -> Result<(&'a str, &'a Map<String, Value>), FromTemplateError> {
    match found.as_slice() {
        [] => Err(FromTemplateError::Missing { what }),
        [single] => Ok(*single),
        several => Err(FromTemplateError::Several {
            what: ty,
            count: several.len(),
            ids: several.iter().map(|(id, _)| (*id).to_owned()).collect(),
        }),
    }
}

fn string<'a>(
    id: &str,
    properties: &'a Map<String, Value>,
    property: &'static str,
) -> Result<&'a str, FromTemplateError> {
    properties
        .get(property)
        .and_then(Value::as_str)
        .ok_or_else(|| FromTemplateError::Property {
            id: id.to_owned(),
            property,
        })
}

fn hash_key(table: &Map<String, Value>) -> Option<&str> {
    table
        .get("KeySchema")?
        .as_array()?
        .iter()
        .find(|k| k.get("KeyType").and_then(Value::as_str) == Some("HASH"))?
        .get("AttributeName")?
        .as_str()
}

fn handler(id: &str, function: &Value) -> Result<Function, FromTemplateError> {
    let name = function
        .get("Metadata")
        .and_then(|m| m.get(HANDLER_METADATA))
        .and_then(Value::as_str)
        .ok_or_else(|| FromTemplateError::NoHandler { id: id.to_owned() })?;
    Function::from_handler(name).ok_or_else(|| FromTemplateError::UnknownHandler {
        id: id.to_owned(),
        handler: name.to_owned(),
    })
}

/// The logical ids a property value refers to: through `Ref`,
/// `Fn::GetAtt` and the `${Id}` / `${Id.Attribute}` variables of `Fn::Sub`,
/// anywhere inside it (so `Fn::Join` and `Fn::If` forms read too).
fn references(value: &Value) -> Vec<&str> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::template::template;

    fn generated(spec: &StackSpec) -> Value {
        template(spec, &TableConfig::new(&spec.table)).unwrap()
    }

    fn err(template: &Value) -> String {
        stack_from_template(template).unwrap_err().to_string()
    }

    #[test]
    fn the_default_stack_comes_back_from_its_template() {
        let spec = StackSpec::default();
        assert_eq!(stack_from_template(&generated(&spec)).unwrap(), spec);
    }

    #[test]
    fn every_part_of_a_description_comes_back() {
        let spec = StackSpec {
            api_name: "chat".to_owned(),
            route_selection_expression: "${request.body.action}".to_owned(),
            stage: "prod_2".to_owned(),
            table: "CHAT.CONNECTIONS".to_owned(),
            routes: vec![
                RouteSpec::new("$connect", "ws-connect"),
                RouteSpec::new("$default", "ws-default"),
                RouteSpec::new("chat.send", "ws-message"),
                RouteSpec::new("echo", "ws-default").with_route_response(),
                RouteSpec::new("message", "ws-message"),
            ],
            ..StackSpec::default()
        };
        assert_eq!(stack_from_template(&generated(&spec)).unwrap(), spec);
    }

    #[test]
    fn references_are_read_in_every_form() {
        let value = json!({"Fn::Join": ["", [
            {"Ref": "A"},
            {"Fn::GetAtt": ["B", "Arn"]},
            {"Fn::GetAtt": "C.Arn"},
            {"Fn::Sub": "x${D}y${E.Arn}${AWS::Region}${!Literal}"},
            {"Fn::Sub": ["${F}", {"G": {"Ref": "H"}}]},
        ]]});
        assert_eq!(references(&value), ["A", "B", "C", "D", "E", "F", "H"]);
    }

    #[test]
    fn something_else_is_not_a_template() {
        for value in [
            json!([1, 2]),
            json!({"name": "x"}),
            json!({"Resources": []}),
        ] {
            assert_eq!(
                err(&value),
                "not a CloudFormation template: it has no Resources (generate one with wsstack \
                 template)"
            );
        }
    }

    #[test]
    fn a_template_without_a_websocket_api_is_refused() {
        let mut t = generated(&StackSpec::default());
        t["Resources"]["WebSocketApi"]["Properties"]["ProtocolType"] = json!("HTTP");
        assert_eq!(
            err(&t),
            "no WebSocket API (AWS::ApiGatewayV2::Api) in the template (is it one that wsstack \
             template wrote?)"
        );
    }

    #[test]
    fn two_stages_are_refused_by_name() {
        let mut t = generated(&StackSpec::default());
        let stage = t["Resources"]["Stage"].clone();
        t["Resources"]["Stage2"] = stage;
        assert_eq!(
            err(&t),
            "2 AWS::ApiGatewayV2::Stage resources in the template (Stage, Stage2); the local \
             stack runs one"
        );
    }

    #[test]
    fn a_function_of_unknown_handler_is_refused() {
        let mut t = generated(&StackSpec::default());
        t["Resources"]["MessageFunction"]["Metadata"][HANDLER_METADATA] = json!("ws-echo");
        assert_eq!(
            err(&t),
            "function \"MessageFunction\": handler \"ws-echo\" is not one the local stack runs \
             (use ws-connect, ws-disconnect, ws-default or ws-message)"
        );
    }

    #[test]
    fn a_function_without_metadata_is_refused() {
        let mut t = generated(&StackSpec::default());
        t["Resources"]["ConnectFunction"]
            .as_object_mut()
            .unwrap()
            .remove("Metadata");
        assert_eq!(
            err(&t),
            "function \"ConnectFunction\" has no \"wsstack:handler\" metadata, so the local stack \
             cannot tell which handler runs it (generate the template with wsstack template)"
        );
    }

    #[test]
    fn a_route_to_nowhere_is_refused() {
        let mut t = generated(&StackSpec::default());
        t["Resources"]["MessageRoute"]["Properties"]["Target"] =
            json!({"Fn::Sub": "integrations/${Nowhere}"});
        assert_eq!(
            err(&t),
            "resource \"MessageRoute\": its Target names no integration \
             (AWS::ApiGatewayV2::Integration) of the template"
        );
        let mut t = generated(&StackSpec::default());
        t["Resources"]["MessageIntegration"]["Properties"]["IntegrationUri"] =
            json!("arn:aws:lambda:us-east-1:123456789012:function:elsewhere");
        assert_eq!(
            err(&t),
            "resource \"MessageIntegration\": its IntegrationUri names no function \
             (AWS::Lambda::Function) of the template"
        );
    }

    #[test]
    fn missing_names_and_another_table_key_are_refused() {
        let mut t = generated(&StackSpec::default());
        t["Resources"]["Stage"]["Properties"]
            .as_object_mut()
            .unwrap()
            .remove("StageName");
        assert_eq!(
            err(&t),
            "resource \"Stage\": StageName is missing or not a string"
        );
        let t = template(
            &StackSpec::default(),
            &TableConfig::new("WS_CONNECTIONS").with_key("id"),
        )
        .unwrap();
        assert_eq!(
            err(&t),
            "table \"ConnectionsTable\": hash key \"id\" is not the one the handlers write \
             (connectionId)"
        );
    }

    #[test]
    fn what_it_reads_is_validated_like_a_description() {
        let mut t = generated(&StackSpec::default());
        t["Resources"]["Stage"]["Properties"]["StageName"] = json!("my stage");
        assert!(err(&t).starts_with("stage name \"my stage\" is invalid"));
    }
}
