//! CloudFormation's intrinsic functions, evaluated as the local stack would
//! deploy the template: `Ref` (parameters, resources, pseudo parameters),
//! `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`,
//! `Fn::If` with the template's `Conditions` (`Fn::Equals`, `Fn::Not`,
//! `Fn::And`, `Fn::Or`, `Condition`) and `Fn::FindInMap`.
//!
//! Owns the physical names a reference stands for locally: a function's
//! name (`FunctionName`, else its logical id), a table's name, the API's
//! id, a resource's logical id otherwise; ARNs in the inputs' region and
//! account. Evaluation is lazy: only what the reader asks for is resolved,
//! so an unresolvable value where nothing reads it (an IAM policy, a code
//! bucket of a function we run in-process) is no error. Any other
//! `Fn::*` (`Fn::ImportValue`, `Fn::Transform`, `Fn::Base64`...) is
//! refused by name.
//!
//! It must not know which resources the local stack runs, nor read files.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::yaml::child;

/// What a template is resolved against: the local stack's region, account
/// and stack name, and what the command line gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    /// The id `Ref` of the WebSocket API gives (the emulator's).
    pub api_id: String,
    /// `--parameter KEY=VALUE`: over the parameters' `Default`.
    pub parameters: BTreeMap<String, String>,
    /// `--code LOGICAL_ID=DIR`: the code of a function whose template
    /// names S3 (or any function, overriding its template's code).
    pub code: BTreeMap<String, std::path::PathBuf>,
}

/// The account id the local stack answers for.
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";
/// `AWS::StackName` of a template run by `wsstack local`.
pub const LOCAL_STACK_NAME: &str = "wsstack-local";

impl Default for Inputs {
    fn default() -> Self {
        Self {
            region: wsadmin_emulator::LOCAL_REGION.to_owned(),
            account_id: LOCAL_ACCOUNT_ID.to_owned(),
            stack_name: LOCAL_STACK_NAME.to_owned(),
            api_id: wsadmin_emulator::LOCAL_API_ID.to_owned(),
            parameters: BTreeMap::new(),
            code: BTreeMap::new(),
        }
    }
}

/// A value that cannot be resolved: where (a JSON pointer) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub pointer: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "{0} is not supported by the local stack (write the value it stands for, or use a \
         parameter)"
    )]
    Unsupported(String),
    #[error("Ref \"{0}\" names no parameter, resource or pseudo parameter of the template")]
    UnknownRef(String),
    #[error("parameter \"{0}\" has no Default and no value (give --parameter {0}=VALUE)")]
    NoValue(String),
    #[error("parameter \"{name}\" is \"{value}\", not one of its AllowedValues ({allowed})")]
    NotAllowed {
        name: String,
        value: String,
        allowed: String,
    },
    #[error("Fn::GetAtt names no resource \"{0}\" of the template")]
    UnknownResource(String),
    #[error("Fn::GetAtt {resource}.{attribute} is not known to the local stack{why}")]
    Attribute {
        resource: String,
        attribute: String,
        why: &'static str,
    },
    #[error("condition \"{0}\" is not in the template's Conditions")]
    UnknownCondition(String),
    #[error("Fn::FindInMap: {0}")]
    Mapping(String),
    #[error("{function} {problem}")]
    Malformed {
        function: &'static str,
        problem: String,
    },
    #[error("{0} refer to each other in a loop")]
    Loop(String),
}

type Resolved<T> = Result<T, Unresolved>;

fn at(pointer: &str, problem: Problem) -> Unresolved {
    Unresolved {
        pointer: pointer.to_owned(),
        problem,
    }
}

fn malformed(pointer: &str, function: &'static str, problem: impl Into<String>) -> Unresolved {
    at(
        pointer,
        Problem::Malformed {
            function,
            problem: problem.into(),
        },
    )
}

/// Types whose `Ref` is a function's name and whose `Arn` is a function's.
pub const FUNCTION_TYPES: [&str; 2] = ["AWS::Lambda::Function", "AWS::Serverless::Function"];
pub const TABLE_TYPE: &str = "AWS::DynamoDB::Table";
pub const API_TYPE: &str = "AWS::ApiGatewayV2::Api";

/// How deep names and conditions may refer to one another.
const MAX_DEPTH: u32 = 32;

/// Evaluates intrinsic functions against one template.
#[derive(Debug)]
pub struct Resolver<'a> {
    template: &'a Map<String, Value>,
    resources: &'a Map<String, Value>,
    inputs: &'a Inputs,
    depth: Cell<u32>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        template: &'a Map<String, Value>,
        resources: &'a Map<String, Value>,
        inputs: &'a Inputs,
    ) -> Self {
        Self {
            template,
            resources,
            inputs,
            depth: Cell::new(0),
        }
    }

    /// `value` (found at `pointer`) with every intrinsic evaluated; `None`
    /// for `AWS::NoValue`, which removes a key or list item.
    pub fn resolve(&self, value: &Value, pointer: &str) -> Resolved<Option<Value>> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                let inner = child(pointer, key);
                if key == "Ref" {
                    return self.reference(arg, &inner);
                }
                if let Some(name) = key.strip_prefix("Fn::") {
                    return self.function(name, arg, &inner);
                }
                self.object(map, pointer).map(Some)
            }
            Value::Object(map) => self.object(map, pointer).map(Some),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.extend(self.resolve(item, &child(pointer, &i.to_string()))?);
                }
                Ok(Some(Value::Array(out)))
            }
            scalar => Ok(Some(scalar.clone())),
        }
    }

    /// `value` resolved to text (numbers and booleans written as text).
    pub fn string(&self, value: &Value, pointer: &str) -> Resolved<Option<String>> {
        match self.resolve(value, pointer)? {
            None => Ok(None),
            Some(v) => text(&v)
                .map(Some)
                .ok_or_else(|| malformed(pointer, "the value", format!("{v} is not text"))),
        }
    }

    /// Whether the condition named `name` holds.
    pub fn condition(&self, name: &str, pointer: &str) -> Resolved<bool> {
        let definition = self
            .template
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| at(pointer, Problem::UnknownCondition(name.to_owned())))?;
        self.deeper(name, pointer, || {
            self.truth(definition, &child("/Conditions", name))
        })
    }

    /// The name `Ref` of resource `id` stands for locally.
    pub fn physical_name(&self, id: &str, pointer: &str) -> Resolved<String> {
        let resource = &self.resources[id];
        let ty = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let property = if FUNCTION_TYPES.contains(&ty) {
            "FunctionName"
        } else if ty == TABLE_TYPE {
            "TableName"
        } else if ty == API_TYPE {
            return Ok(self.inputs.api_id.clone());
        } else {
            return Ok(id.to_owned());
        };
        let Some(value) = resource.get("Properties").and_then(|p| p.get(property)) else {
            return Ok(id.to_owned());
        };
        let at_name = format!("/Resources/{}/Properties/{property}", escape(id));
        self.deeper(id, pointer, || self.string(value, &at_name))
            .map(|name| name.unwrap_or_else(|| id.to_owned()))
    }

    fn deeper<T>(&self, what: &str, pointer: &str, f: impl FnOnce() -> Resolved<T>) -> Resolved<T> {
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return Err(at(pointer, Problem::Loop(format!("\"{what}\" and others"))));
        }
        self.depth.set(depth + 1);
        let result = f();
        self.depth.set(depth);
        result
    }

    fn object(&self, map: &Map<String, Value>, pointer: &str) -> Resolved<Value> {
        let mut out = Map::new();
        for (key, value) in map {
            if let Some(v) = self.resolve(value, &child(pointer, key))? {
                out.insert(key.clone(), v);
            }
        }
        Ok(Value::Object(out))
    }

    fn reference(&self, arg: &Value, pointer: &str) -> Resolved<Option<Value>> {
        let Value::String(name) = arg else {
            return Err(malformed(pointer, "Ref", "takes the name of one thing"));
        };
        let i = &self.inputs;
        let pseudo = match name.as_str() {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => i.region.clone(),
            "AWS::AccountId" => i.account_id.clone(),
            "AWS::StackName" => i.stack_name.clone(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            "AWS::StackId" => format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
                i.region, i.account_id, i.stack_name
            ),
            "AWS::NotificationARNs" => return Ok(Some(Value::Array(Vec::new()))),
            _ => String::new(),
        };
        if !pseudo.is_empty() {
            return Ok(Some(Value::String(pseudo)));
        }
        if let Some(parameter) = self.template.get("Parameters").and_then(|p| p.get(name)) {
            return self.parameter(name, parameter, pointer).map(Some);
        }
        if self.resources.contains_key(name) {
            return self.physical_name(name, pointer).map(|n| Some(n.into()));
        }
        Err(at(pointer, Problem::UnknownRef(name.clone())))
    }

    fn parameter(&self, name: &str, parameter: &Value, pointer: &str) -> Resolved<Value> {
        let list = parameter
            .get("Type")
            .and_then(Value::as_str)
            .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
        let value = match (self.inputs.parameters.get(name), parameter.get("Default")) {
            (Some(given), _) => Value::String(given.clone()),
            (None, Some(default)) => default.clone(),
            (None, None) => return Err(at(pointer, Problem::NoValue(name.to_owned()))),
        };
        let allowed: Vec<String> = parameter
            .get("AllowedValues")
            .and_then(Value::as_array)
            .map(|values| values.iter().filter_map(text).collect())
            .unwrap_or_default();
        if let Some(given) = text(&value)
            && !allowed.is_empty()
            && !allowed.contains(&given)
        {
            return Err(at(
                pointer,
                Problem::NotAllowed {
                    name: name.to_owned(),
                    value: given,
                    allowed: allowed.join(", "),
                },
            ));
        }
        Ok(match value {
            Value::String(s) if list => s.split(',').map(|p| Value::from(p.trim())).collect(),
            other => other,
        })
    }

    fn function(&self, name: &str, arg: &Value, pointer: &str) -> Resolved<Option<Value>> {
        match name {
            "GetAtt" => self.get_att(arg, pointer).map(Some),
            "Sub" => self.sub(arg, pointer).map(|s| Some(s.into())),
            "Join" => self.join(arg, pointer).map(|s| Some(s.into())),
            "Select" => self.select(arg, pointer),
            "Split" => self.split(arg, pointer).map(Some),
            "FindInMap" => self.find_in_map(arg, pointer).map(Some),
            "If" => {
                let [condition, yes, no] = args::<3>(arg, pointer, "Fn::If")?;
                let Value::String(condition) = condition else {
                    return Err(malformed(
                        pointer,
                        "Fn::If",
                        "takes a condition's name first",
                    ));
                };
                if self.condition(condition, &child(pointer, "0"))? {
                    self.resolve(yes, &child(pointer, "1"))
                } else {
                    self.resolve(no, &child(pointer, "2"))
                }
            }
            "Equals" | "Not" | "And" | "Or" => {
                let wrapped = Value::Object(Map::from_iter([(format!("Fn::{name}"), arg.clone())]));
                let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
                self.truth(&wrapped, parent).map(|b| Some(b.into()))
            }
            _ => Err(at(pointer, Problem::Unsupported(format!("Fn::{name}")))),
        }
    }

    /// A condition expression's truth.
    fn truth(&self, value: &Value, pointer: &str) -> Resolved<bool> {
        if let Value::Object(map) = value
            && map.len() == 1
        {
            let (key, arg) = map.iter().next().expect("one entry");
            let inner = child(pointer, key);
            let conditions = |arg: &Value, function: &'static str| -> Resolved<Vec<bool>> {
                let items = arg
                    .as_array()
                    .filter(|items| (2..=10).contains(&items.len()))
                    .ok_or_else(|| malformed(&inner, function, "takes 2 to 10 conditions"))?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.truth(c, &child(&inner, &i.to_string())))
                    .collect()
            };
            match key.as_str() {
                "Condition" => {
                    let Value::String(name) = arg else {
                        return Err(malformed(&inner, "Condition", "takes a condition's name"));
                    };
                    return self.condition(name, &inner);
                }
                "Fn::Equals" => {
                    let [a, b] = args::<2>(arg, &inner, "Fn::Equals")?;
                    let a = self.resolve(a, &child(&inner, "0"))?;
                    let b = self.resolve(b, &child(&inner, "1"))?;
                    let same = match (a.as_ref().and_then(text), b.as_ref().and_then(text)) {
                        (Some(a), Some(b)) => a == b,
                        _ => a == b,
                    };
                    return Ok(same);
                }
                "Fn::Not" => {
                    let [c] = args::<1>(arg, &inner, "Fn::Not")?;
                    return Ok(!self.truth(c, &child(&inner, "0"))?);
                }
                "Fn::And" => return Ok(conditions(arg, "Fn::And")?.into_iter().all(|b| b)),
                "Fn::Or" => return Ok(conditions(arg, "Fn::Or")?.into_iter().any(|b| b)),
                _ => {}
            }
        }
        match self.resolve(value, pointer)? {
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(malformed(
                pointer,
                "a condition",
                format!(
                    "must be true or false, not {}",
                    other.map_or("no value".to_owned(), |v| v.to_string())
                ),
            )),
        }
    }

    fn get_att(&self, arg: &Value, pointer: &str) -> Resolved<Value> {
        let (resource, attribute) = match arg {
            Value::String(dotted) => dotted
                .split_once('.')
                .map(|(r, a)| (r.to_owned(), a.to_owned())),
            Value::Array(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Value::String(r), a) => self
                    .string(a, &child(pointer, "1"))?
                    .map(|a| (r.clone(), a)),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            malformed(
                pointer,
                "Fn::GetAtt",
                "takes a resource and an attribute ([Resource, Attribute] or Resource.Attribute)",
            )
        })?;
        let Some(r) = self.resources.get(&resource) else {
            return Err(at(pointer, Problem::UnknownResource(resource)));
        };
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or("");
        let i = &self.inputs;
        let arn = |service: &str, rest: String| {
            Ok(format!("arn:aws:{service}:{}:{}:{rest}", i.region, i.account_id).into())
        };
        match (ty, attribute.as_str()) {
            (t, "Arn") if FUNCTION_TYPES.contains(&t) => arn(
                "lambda",
                format!("function:{}", self.physical_name(&resource, pointer)?),
            ),
            (TABLE_TYPE, "Arn") => arn(
                "dynamodb",
                format!("table/{}", self.physical_name(&resource, pointer)?),
            ),
            (API_TYPE, "ApiId") => Ok(i.api_id.clone().into()),
            ("AWS::IAM::Role", "Arn") => {
                Ok(format!("arn:aws:iam::{}:role/{resource}", i.account_id).into())
            }
            _ => Err(at(
                pointer,
                Problem::Attribute {
                    why: if attribute == "ApiEndpoint" {
                        " (its port is chosen when the stack starts)"
                    } else {
                        ""
                    },
                    resource,
                    attribute,
                },
            )),
        }
    }

    fn sub(&self, arg: &Value, pointer: &str) -> Resolved<String> {
        let (template, variables) = match arg {
            Value::String(s) => (s, None),
            Value::Array(items) => match items.as_slice() {
                [Value::String(s), Value::Object(vars)] => (s, Some(vars)),
                _ => {
                    return Err(malformed(
                        pointer,
                        "Fn::Sub",
                        "takes a string, or [string, {variables}]",
                    ));
                }
            },
            _ => {
                return Err(malformed(
                    pointer,
                    "Fn::Sub",
                    "takes a string, or [string, {variables}]",
                ));
            }
        };
        let text_at = if variables.is_some() {
            child(pointer, "0")
        } else {
            pointer.to_owned()
        };
        let mut out = String::new();
        let mut rest = template.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(malformed(&text_at, "Fn::Sub", "has a ${ without its }"));
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let name = name.trim();
            let value = if let Some(v) = variables.and_then(|vars| vars.get(name)) {
                let var_at = child(&child(pointer, "1"), name);
                self.resolve(v, &var_at)?
            } else if let Some((resource, attribute)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                Some(self.get_att(&Value::from(vec![resource, attribute]), &text_at)?)
            } else {
                self.reference(&Value::String(name.to_owned()), &text_at)?
            };
            let value = value.as_ref().and_then(text).ok_or_else(|| {
                malformed(
                    &text_at,
                    "Fn::Sub",
                    format!("variable ${{{name}}} is not text"),
                )
            })?;
            out.push_str(&value);
        }
        out.push_str(rest);
        Ok(out)
    }

    fn join(&self, arg: &Value, pointer: &str) -> Resolved<String> {
        let [delimiter, list] = args::<2>(arg, pointer, "Fn::Join")?;
        let Value::String(delimiter) = delimiter else {
            return Err(malformed(
                pointer,
                "Fn::Join",
                "takes a delimiter string first",
            ));
        };
        let list = self.list(list, &child(pointer, "1"), "Fn::Join")?;
        let parts: Option<Vec<String>> = list.iter().map(text).collect();
        parts
            .map(|p| p.join(delimiter))
            .ok_or_else(|| malformed(pointer, "Fn::Join", "joins text only"))
    }

    fn select(&self, arg: &Value, pointer: &str) -> Resolved<Option<Value>> {
        let [index, list] = args::<2>(arg, pointer, "Fn::Select")?;
        let index = self
            .resolve(index, &child(pointer, "0"))?
            .as_ref()
            .and_then(text)
            .and_then(|t| t.parse::<usize>().ok())
            .ok_or_else(|| malformed(pointer, "Fn::Select", "takes an index first"))?;
        let list = self.list(list, &child(pointer, "1"), "Fn::Select")?;
        let len = list.len();
        list.into_iter().nth(index).map(Some).ok_or_else(|| {
            malformed(
                pointer,
                "Fn::Select",
                format!("index {index} is beyond the list's {len} items"),
            )
        })
    }

    fn split(&self, arg: &Value, pointer: &str) -> Resolved<Value> {
        let [delimiter, source] = args::<2>(arg, pointer, "Fn::Split")?;
        let Value::String(delimiter) = delimiter else {
            return Err(malformed(
                pointer,
                "Fn::Split",
                "takes a delimiter string first",
            ));
        };
        let source = self
            .string(source, &child(pointer, "1"))?
            .ok_or_else(|| malformed(pointer, "Fn::Split", "has nothing to split"))?;
        Ok(source.split(delimiter.as_str()).map(Value::from).collect())
    }

    fn find_in_map(&self, arg: &Value, pointer: &str) -> Resolved<Value> {
        let items = arg
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| malformed(pointer, "Fn::FindInMap", "takes [map, key, key]"))?;
        let mut keys = Vec::new();
        for (i, item) in items.iter().enumerate() {
            keys.push(
                self.string(item, &child(pointer, &i.to_string()))?
                    .ok_or_else(|| malformed(pointer, "Fn::FindInMap", "takes [map, key, key]"))?,
            );
        }
        let mapping = self
            .template
            .get("Mappings")
            .and_then(|m| m.get(&keys[0]))
            .ok_or_else(|| {
                at(
                    pointer,
                    Problem::Mapping(format!("no mapping \"{}\" in Mappings", keys[0])),
                )
            })?;
        mapping
            .get(&keys[1])
            .and_then(|top| top.get(&keys[2]))
            .cloned()
            .ok_or_else(|| {
                at(
                    pointer,
                    Problem::Mapping(format!(
                        "mapping \"{}\" has no \"{}\" with \"{}\"",
                        keys[0], keys[1], keys[2]
                    )),
                )
            })
    }

    fn list(&self, value: &Value, pointer: &str, function: &'static str) -> Resolved<Vec<Value>> {
        match self.resolve(value, pointer)? {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(malformed(pointer, function, "takes a list")),
        }
    }
}

/// The arguments of a function that takes exactly `N`.
fn args<'v, const N: usize>(
    arg: &'v Value,
    pointer: &str,
    function: &'static str,
) -> Resolved<[&'v Value; N]> {
    arg.as_array()
        .and_then(|items| <[Value]>::iter(items).collect::<Vec<_>>().try_into().ok())
        .ok_or_else(|| malformed(pointer, function, format!("takes a list of {N} arguments")))
}

/// A scalar as text, as CloudFormation passes parameters and numbers.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A logical id as one JSON pointer token.
pub fn escape(id: &str) -> String {
    id.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template() -> Value {
        json!({
            "Parameters": {
                "Env": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
                "Size": {"Type": "Number", "Default": 256},
                "Bucket": {"Type": "String"},
                "Zones": {"Type": "CommaDelimitedList", "Default": "a, b,c"},
            },
            "Mappings": {"Memory": {"dev": {"MB": 128}, "prod": {"MB": 1024}}},
            "Conditions": {
                "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
                "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": ["1", 1]}]},
                "Loop": {"Condition": "Loop"},
            },
            "Resources": {
                "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": {"Fn::Sub": "${AWS::StackName}-fn"}}},
                "Sam": {"Type": "AWS::Serverless::Function", "Properties": {}},
                "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "T"}},
                "Api": {"Type": "AWS::ApiGatewayV2::Api"},
                "Integration": {"Type": "AWS::ApiGatewayV2::Integration"},
            },
        })
    }

    fn with(parameters: &[(&str, &str)], f: impl FnOnce(&Resolver) -> Value) -> Value {
        let t = template();
        let inputs = Inputs {
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Inputs::default()
        };
        let map = t.as_object().unwrap();
        let resolver = Resolver::new(map, map["Resources"].as_object().unwrap(), &inputs);
        f(&resolver)
    }

    fn eval(value: Value) -> Value {
        eval_with(&[], value)
    }

    fn eval_with(parameters: &[(&str, &str)], value: Value) -> Value {
        with(parameters, |r| {
            r.resolve(&value, "/x")
                .unwrap_or_else(|e| panic!("{}: {}", e.pointer, e.problem))
                .unwrap_or(json!("<no value>"))
        })
    }

    fn problem(value: Value) -> (String, String) {
        with(&[], |r| {
            let e = r.resolve(&value, "/x").unwrap_err();
            json!([e.pointer, e.problem.to_string()])
        })
        .as_array()
        .map(|a| (a[0].as_str().unwrap().into(), a[1].as_str().unwrap().into()))
        .unwrap()
    }

    #[test]
    fn refs_of_parameters_resources_and_pseudo_parameters() {
        assert_eq!(eval(json!({"Ref": "Env"})), "dev");
        assert_eq!(eval_with(&[("Env", "prod")], json!({"Ref": "Env"})), "prod");
        assert_eq!(eval(json!({"Ref": "Size"})), 256);
        assert_eq!(eval(json!({"Ref": "Zones"})), json!(["a", "b", "c"]));
        assert_eq!(eval(json!({"Ref": "Fn"})), "wsstack-local-fn");
        assert_eq!(eval(json!({"Ref": "Sam"})), "Sam");
        assert_eq!(eval(json!({"Ref": "Table"})), "T");
        assert_eq!(eval(json!({"Ref": "Api"})), "wsstacklocal");
        assert_eq!(eval(json!({"Ref": "Integration"})), "Integration");
        assert_eq!(
            eval(
                json!([{"Ref": "AWS::Region"}, {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Partition"}, {"Ref": "AWS::URLSuffix"}, {"Ref": "AWS::NoValue"}])
            ),
            json!(["us-east-1", "000000000000", "aws", "amazonaws.com"])
        );
        assert_eq!(
            eval(json!({"a": {"Ref": "AWS::NoValue"}, "b": 1})),
            json!({"b": 1})
        );
        assert_eq!(eval_with(&[("Bucket", "b")], json!({"Ref": "Bucket"})), "b");
        assert_eq!(
            with(&[("Env", "test")], |r| {
                json!(
                    r.resolve(&json!({"Ref": "Env"}), "/x")
                        .unwrap_err()
                        .problem
                        .to_string()
                )
            }),
            "parameter \"Env\" is \"test\", not one of its AllowedValues (dev, prod)"
        );
    }

    #[test]
    fn get_att_gives_arns() {
        assert_eq!(
            eval(json!({"Fn::GetAtt": ["Fn", "Arn"]})),
            "arn:aws:lambda:us-east-1:000000000000:function:wsstack-local-fn"
        );
        assert_eq!(
            eval(json!({"Fn::GetAtt": ["Table", "Arn"]})),
            "arn:aws:dynamodb:us-east-1:000000000000:table/T"
        );
        assert_eq!(
            problem(json!({"Fn::GetAtt": ["Api", "ApiEndpoint"]})).1,
            "Fn::GetAtt Api.ApiEndpoint is not known to the local stack (its port is chosen \
             when the stack starts)"
        );
    }

    #[test]
    fn sub_in_both_forms() {
        assert_eq!(
            eval(json!({"Fn::Sub": "arn:${AWS::Region}:${Sam.Arn}/${Env}${!Literal}"})),
            "arn:us-east-1:arn:aws:lambda:us-east-1:000000000000:function:Sam/dev${Literal}"
        );
        assert_eq!(
            eval(json!({"Fn::Sub": ["${A}-${Size}", {"A": {"Ref": "Table"}}]})),
            "T-256"
        );
    }

    #[test]
    fn join_select_split_find_in_map() {
        assert_eq!(
            eval(json!({"Fn::Join": ["/", ["integrations", {"Ref": "Integration"}]]})),
            "integrations/Integration"
        );
        assert_eq!(
            eval(json!({"Fn::Select": ["1", {"Fn::Split": [",", "x,y,z"]}]})),
            "y"
        );
        assert_eq!(eval(json!({"Fn::Select": [2, {"Ref": "Zones"}]})), "c");
        assert_eq!(
            eval_with(
                &[("Env", "prod")],
                json!({"Fn::FindInMap": ["Memory", {"Ref": "Env"}, "MB"]})
            ),
            1024
        );
        assert_eq!(
            problem(json!({"Fn::FindInMap": ["Memory", "test", "MB"]})).1,
            "Fn::FindInMap: mapping \"Memory\" has no \"test\" with \"MB\""
        );
    }

    #[test]
    fn conditions_choose_with_if() {
        let choice = json!({"Fn::If": ["IsProd", "big", {"Fn::If": ["Either", "either", "no"]}]});
        assert_eq!(eval(choice.clone()), "either");
        assert_eq!(eval_with(&[("Env", "prod")], choice), "big");
        assert_eq!(
            eval(json!({"Fn::If": ["NotProd", {"Ref": "AWS::NoValue"}, 1]})),
            "<no value>"
        );
        assert_eq!(
            problem(json!({"Fn::If": ["Loop", 1, 2]})).1,
            "\"Loop\" and others refer to each other in a loop"
        );
        assert_eq!(
            problem(json!({"Fn::If": ["Nope", 1, 2]})).1,
            "condition \"Nope\" is not in the template's Conditions"
        );
    }

    #[test]
    fn what_cannot_be_resolved_is_named_where_it_is() {
        assert_eq!(
            problem(json!({"a": [0, {"Fn::ImportValue": "Shared"}]})),
            (
                "/x/a/1/Fn::ImportValue".to_owned(),
                "Fn::ImportValue is not supported by the local stack (write the value it stands \
                 for, or use a parameter)"
                    .to_owned()
            )
        );
        assert_eq!(
            problem(json!({"Ref": "Bucket"})).1,
            "parameter \"Bucket\" has no Default and no value (give --parameter Bucket=VALUE)"
        );
        assert_eq!(
            problem(json!({"Fn::Sub": "${Nope}"})).1,
            "Ref \"Nope\" names no parameter, resource or pseudo parameter of the template"
        );
        assert_eq!(
            problem(json!({"Fn::GetAtt": "Nope.Arn"})).1,
            "Fn::GetAtt names no resource \"Nope\" of the template"
        );
    }
}
