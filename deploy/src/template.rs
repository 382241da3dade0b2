//! The CloudFormation template of a stack description: what `wsstack
//! template` prints and what a deploy hands to CloudFormation.
//!
//! Owns the mapping from a [`StackSpec`] to AWS resources: the registry
//! table, one function per handler with its own role (least privilege,
//! decided by the handler's name) and log group, the WebSocket API with its
//! integrations, routes, route responses, stage and invoke permissions, and
//! the outputs `wsadmin` needs. The template is a `serde_json::Value` built
//! by typed code; [`crate::yaml`] writes its YAML form.
//!
//! It must not call AWS or read files: the description comes in as a
//! value, so every rule here is tested over the returned value.
//!
//! Platform facts it encodes:
//! - a function logs to its own `AWS::Logs::LogGroup` through the function's
//!   `LoggingConfig`, so its role may write that group only and retention is
//!   ours to set;
//! - API Gateway writes a WebSocket stage's access logs only when the
//!   account's CloudWatch Logs role is set (once per account and region);
//!   `ApiGatewayCloudWatchRoleArn` sets it when given;
//! - the role of the function that posts to connections names the stage's
//!   `POST/@connections/*` only, and each invoke permission names its own
//!   route, as the seed grants them (`{api}/{stage}/{route key}`).

use serde_json::{Map, Value, json};
use wsadmin_core::TableConfig;
use wsadmin_core::stack::{ROUTE_DEFAULT, StackSpec};

/// One function wsstack knows how to deploy, by its handler name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Connect,
    Disconnect,
    Default,
    Message,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::Connect,
        Function::Disconnect,
        Function::Default,
        Function::Message,
    ];

    /// The handler name a stack description uses: the binary and the zip.
    pub fn handler(self) -> &'static str {
        match self {
            Function::Connect => "ws-connect",
            Function::Disconnect => "ws-disconnect",
            Function::Default => "ws-default",
            Function::Message => "ws-message",
        }
    }

    pub fn from_handler(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.handler() == name)
    }

    /// The stem of the logical ids of this function's resources.
    pub fn logical_stem(self) -> &'static str {
        match self {
            Function::Connect => "Connect",
            Function::Disconnect => "Disconnect",
            Function::Default => "Default",
            Function::Message => "Message",
        }
    }

    pub fn function_id(self) -> String {
        format!("{}Function", self.logical_stem())
    }
    pub fn role_id(self) -> String {
        format!("{}Role", self.logical_stem())
    }
    pub fn log_group_id(self) -> String {
        format!("{}LogGroup", self.logical_stem())
    }
    pub fn integration_id(self) -> String {
        format!("{}Integration", self.logical_stem())
    }
    /// The parameter naming the function's zip in the code bucket.
    pub fn code_key_parameter(self) -> String {
        format!("{}CodeKey", self.logical_stem())
    }

    /// The actions this function needs on the table, beyond its logs.
    pub fn table_actions(self) -> &'static [&'static str] {
        match self {
            Function::Connect => &["dynamodb:PutItem"],
            Function::Disconnect => &["dynamodb:DeleteItem"],
            Function::Default => &[],
            // A broadcast scans the registry and deletes the records of gone
            // connections. Every record our $connect writes has
            // `connectedAt`, so the stale rule never needs to mark one
            // (UpdateItem) in a stack deployed from this template.
            Function::Message => &["dynamodb:Scan", "dynamodb:DeleteItem"],
        }
    }

    /// Whether the function posts to connections (Management API).
    pub fn manages_connections(self) -> bool {
        self == Function::Message
    }
}

/// The logical ids of the resources that are not per function or route.
pub mod ids {
    pub const TABLE: &str = "ConnectionsTable";
    pub const API: &str = "WebSocketApi";
    pub const STAGE: &str = "Stage";
    pub const ACCESS_LOG_GROUP: &str = "AccessLogGroup";
    pub const API_GATEWAY_ACCOUNT: &str = "ApiGatewayAccount";
}

/// Template parameter names.
pub mod params {
    pub const ARCHITECTURE: &str = "Architecture";
    pub const CODE_BUCKET: &str = "CodeBucket";
    pub const LOG_RETENTION: &str = "LogRetentionInDays";
    pub const POINT_IN_TIME_RECOVERY: &str = "PointInTimeRecovery";
    pub const THROTTLING_BURST: &str = "ThrottlingBurstLimit";
    pub const THROTTLING_RATE: &str = "ThrottlingRateLimit";
    pub const BROADCAST_CONCURRENCY: &str = "BroadcastConcurrency";
    pub const CLOUDWATCH_ROLE: &str = "ApiGatewayCloudWatchRoleArn";
}

/// The metadata key naming the handler an `AWS::Lambda::Function` runs
/// (`ws-connect`), which the function's code alone does not say.
pub const HANDLER_METADATA: &str = "wsstack:handler";

/// The attribute DynamoDB's TTL deletes records by (the handlers write it).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// CloudWatch Logs' allowed retention periods, in days.
const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// API Gateway's integration timeout: a broadcast gets as long as the
/// message that started it may take.
const MESSAGE_TIMEOUT_SECONDS: u32 = 29;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "route \"{key}\": handler \"{handler}\" is not a function wsstack can deploy (use ws-connect, ws-disconnect, ws-default or ws-message)"
    )]
    UnknownHandler { key: String, handler: String },
    /// Deploying an unguarded `$connect` the description guards would be
    /// worse than refusing.
    #[error(
        "route \"{0}\": its authorization runs only on the local stack (wsstack template does not deploy authorizers yet: write your own template with an AWS::ApiGatewayV2::Authorizer)"
    )]
    Authorization(String),
}

/// One route of the description, resolved: its function and logical ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    pub key: String,
    pub function: Function,
    pub route_response: bool,
    /// Stem of the route's logical ids (`Connect`, `Message`, `ChatSend`),
    /// unique within the template.
    pub stem: String,
}

impl RoutePlan {
    pub fn route_id(&self) -> String {
        format!("{}Route", self.stem)
    }
    pub fn permission_id(&self) -> String {
        format!("{}Permission", self.stem)
    }
    pub fn route_response_id(&self) -> String {
        format!("{}RouteResponse", self.stem)
    }
}

/// The routes of `spec` with their functions, in the description's order;
/// refuses a handler wsstack has no function for.
pub fn plan_routes(spec: &StackSpec) -> Result<Vec<RoutePlan>, TemplateError> {
    let mut stems: Vec<String> = Vec::new();
    let mut plans = Vec::with_capacity(spec.routes.len());
    for (i, route) in spec.routes.iter().enumerate() {
        if !route.authorization.is_none() {
            return Err(TemplateError::Authorization(route.key.clone()));
        }
        let function = Function::from_handler(&route.handler).ok_or_else(|| {
            TemplateError::UnknownHandler {
                key: route.key.clone(),
                handler: route.handler.clone(),
            }
        })?;
        let mut stem = pascal(&route.key);
        if stem.is_empty() || stems.contains(&stem) {
            stem = format!("{stem}Route{}", i + 1);
        }
        stems.push(stem.clone());
        plans.push(RoutePlan {
            key: route.key.clone(),
            function,
            route_response: route.route_response,
            stem,
        });
    }
    Ok(plans)
}

/// The functions the routes use, each once, in a fixed order.
pub fn functions(routes: &[RoutePlan]) -> Vec<Function> {
    let mut fns: Vec<Function> = routes.iter().map(|r| r.function).collect();
    fns.sort();
    fns.dedup();
    fns
}

/// The CloudFormation template for `spec`, its table keyed as `table`
/// says (the table's name comes from the description).
pub fn template(spec: &StackSpec, table: &TableConfig) -> Result<Value, TemplateError> {
    let routes = plan_routes(spec)?;
    let fns = functions(&routes);

    let mut resources = Map::new();
    resources.insert(ids::TABLE.to_owned(), table_resource(spec, table));
    for &f in &fns {
        resources.insert(f.log_group_id(), log_group());
        resources.insert(f.role_id(), role(f, &spec.stage));
        resources.insert(f.function_id(), function(f, table));
        resources.insert(f.integration_id(), integration(f));
    }
    resources.insert(
        ids::API.to_owned(),
        json!({
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": spec.api_name,
                "ProtocolType": "WEBSOCKET",
                "RouteSelectionExpression": spec.route_selection_expression,
            }
        }),
    );
    for route in &routes {
        resources.insert(route.route_id(), route_resource(route));
        resources.insert(route.permission_id(), permission(route, &spec.stage));
        if route.route_response {
            resources.insert(
                route.route_response_id(),
                json!({
                    "Type": "AWS::ApiGatewayV2::RouteResponse",
                    "Properties": {
                        "ApiId": reference(ids::API),
                        "RouteId": reference(&route.route_id()),
                        "RouteResponseKey": ROUTE_DEFAULT,
                    }
                }),
            );
        }
    }
    resources.insert(ids::ACCESS_LOG_GROUP.to_owned(), log_group());
    resources.insert(
        ids::API_GATEWAY_ACCOUNT.to_owned(),
        json!({
            "Type": "AWS::ApiGateway::Account",
            "Condition": "SetApiGatewayAccount",
            "Properties": {"CloudWatchRoleArn": reference(params::CLOUDWATCH_ROLE)},
        }),
    );
    resources.insert(ids::STAGE.to_owned(), stage(spec, &routes));

    Ok(json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "{}: an API Gateway WebSocket API, its Lambda handlers and the DynamoDB \
             connection registry (generated by wsstack {})",
            spec.api_name,
            env!("CARGO_PKG_VERSION")
        ),
        "Parameters": parameters(&fns),
        "Conditions": {
            "PointInTimeRecoveryEnabled": {
                "Fn::Equals": [reference(params::POINT_IN_TIME_RECOVERY), "true"]
            },
            "SetApiGatewayAccount": {
                "Fn::Not": [{"Fn::Equals": [reference(params::CLOUDWATCH_ROLE), ""]}]
            },
        },
        "Resources": resources,
        "Outputs": outputs(),
    }))
}

fn parameters(fns: &[Function]) -> Value {
    let mut p = Map::new();
    p.insert(
        params::ARCHITECTURE.to_owned(),
        json!({
            "Type": "String",
            "Description": "Instruction set of the functions (the packaged zips must match)",
            "AllowedValues": ["x86_64", "arm64"],
            "Default": "x86_64",
        }),
    );
    p.insert(
        params::CODE_BUCKET.to_owned(),
        json!({
            "Type": "String",
            "Description": "S3 bucket holding the functions' bootstrap zips",
            "MinLength": 3,
        }),
    );
    for &f in fns {
        p.insert(
            f.code_key_parameter(),
            json!({
                "Type": "String",
                "Description": format!("S3 key of the {} bootstrap zip in CodeBucket", f.handler()),
                "MinLength": 1,
            }),
        );
    }
    if fns.contains(&Function::Message) {
        p.insert(
            params::BROADCAST_CONCURRENCY.to_owned(),
            json!({
                "Type": "Number",
                "Description": "Management API requests in flight during one broadcast",
                "Default": 64,
                "MinValue": 1,
                "MaxValue": 10000,
            }),
        );
    }
    p.insert(
        params::LOG_RETENTION.to_owned(),
        json!({
            "Type": "Number",
            "Description": "Days the functions' and the stage's logs are kept",
            "Default": 14,
            "AllowedValues": RETENTION_DAYS,
        }),
    );
    p.insert(
        params::POINT_IN_TIME_RECOVERY.to_owned(),
        json!({
            "Type": "String",
            "Description": "Point-in-time recovery of the connection table (costs extra; \
                            connection records are short-lived)",
            "AllowedValues": ["true", "false"],
            "Default": "false",
        }),
    );
    p.insert(
        params::THROTTLING_BURST.to_owned(),
        json!({
            "Type": "Number",
            "Description": "Default route throttling: burst of messages",
            "Default": 500,
            "MinValue": 0,
        }),
    );
    p.insert(
        params::THROTTLING_RATE.to_owned(),
        json!({
            "Type": "Number",
            "Description": "Default route throttling: messages per second",
            "Default": 1000,
            "MinValue": 0,
        }),
    );
    p.insert(
        params::CLOUDWATCH_ROLE.to_owned(),
        json!({
            "Type": "String",
            "Description": "API Gateway writes access logs only when the account's CloudWatch \
                            Logs role is set (once per account and region). Leave empty if it \
                            is; else give a role API Gateway may assume to write logs.",
            "Default": "",
        }),
    );
    Value::Object(p)
}

fn table_resource(spec: &StackSpec, table: &TableConfig) -> Value {
    json!({
        "Type": "AWS::DynamoDB::Table",
        // Connection records outlive no connection: `down` deletes them.
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "TableName": spec.table,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": table.key(), "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": table.key(), "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": true},
            "SSESpecification": {"SSEEnabled": true},
            "PointInTimeRecoverySpecification": {
                "PointInTimeRecoveryEnabled": {
                    "Fn::If": ["PointInTimeRecoveryEnabled", true, false]
                }
            },
            // Connection events for consumers of the registry.
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        }
    })
}

fn log_group() -> Value {
    json!({
        "Type": "AWS::Logs::LogGroup",
        // Deleted with the stack, like the functions that wrote them.
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {"RetentionInDays": reference(params::LOG_RETENTION)},
    })
}

/// The least-privilege statements of `f`'s role: its own log group, then
/// what its handler does. `stage` names the stage it may post to.
pub fn role_statements(f: Function, stage: &str) -> Vec<Value> {
    let mut statements = vec![json!({
        "Sid": "WriteOwnLogGroup",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": get_att(&f.log_group_id(), "Arn"),
    })];
    if !f.table_actions().is_empty() {
        statements.push(json!({
            "Sid": "ConnectionRegistry",
            "Effect": "Allow",
            "Action": f.table_actions(),
            "Resource": get_att(ids::TABLE, "Arn"),
        }));
    }
    if f.manages_connections() {
        statements.push(json!({
            "Sid": "PostToConnections",
            "Effect": "Allow",
            "Action": ["execute-api:ManageConnections"],
            "Resource": sub(&format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{}}}/{}/POST/@connections/*",
                ids::API,
                sub_literal(stage)
            )),
        }));
    }
    statements
}

fn role(f: Function, stage: &str) -> Value {
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": format!("Runs {}: least privilege", f.handler()),
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }],
            },
            "Policies": [{
                "PolicyName": f.handler(),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": role_statements(f, stage),
                },
            }],
        }
    })
}

fn function(f: Function, table: &TableConfig) -> Value {
    let mut properties = json!({
        "Description": format!("wsadmin {}", f.handler()),
        "Runtime": "provided.al2023",
        "Handler": "bootstrap",
        "Architectures": [reference(params::ARCHITECTURE)],
        "Code": {
            "S3Bucket": reference(params::CODE_BUCKET),
            "S3Key": reference(&f.code_key_parameter()),
        },
        "Role": get_att(&f.role_id(), "Arn"),
        "LoggingConfig": {"LogGroup": reference(&f.log_group_id()), "LogFormat": "Text"},
    });
    let mut variables = Map::new();
    if f != Function::Default {
        variables.insert("CONNECTIONS_TABLE".to_owned(), reference(ids::TABLE));
        variables.insert("CONNECTIONS_TABLE_KEY".to_owned(), json!(table.key()));
    }
    if f == Function::Message {
        variables.insert(
            "BROADCAST_CONCURRENCY".to_owned(),
            reference(params::BROADCAST_CONCURRENCY),
        );
        properties["Timeout"] = json!(MESSAGE_TIMEOUT_SECONDS);
    }
    if !variables.is_empty() {
        properties["Environment"] = json!({ "Variables": variables });
    }
    json!({
        "Type": "AWS::Lambda::Function",
        // Which of our handlers the function runs, for readers of the
        // template (`wsstack local --template`): the code is only a zip.
        "Metadata": {HANDLER_METADATA: f.handler()},
        "Properties": properties,
    })
}

fn integration(f: Function) -> Value {
    json!({
        "Type": "AWS::ApiGatewayV2::Integration",
        "Properties": {
            "ApiId": reference(ids::API),
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": sub(&format!(
                "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{{}.Arn}}/invocations",
                f.function_id()
            )),
        }
    })
}

fn route_resource(route: &RoutePlan) -> Value {
    let mut properties = json!({
        "ApiId": reference(ids::API),
        "RouteKey": route.key,
        "Target": sub(&format!("integrations/${{{}}}", route.function.integration_id())),
    });
    if route.route_response {
        properties["RouteResponseSelectionExpression"] = json!(ROUTE_DEFAULT);
    }
    json!({"Type": "AWS::ApiGatewayV2::Route", "Properties": properties})
}

/// The execution ARN of one route of the stage, as `Fn::Sub` text.
pub fn route_source_arn(stage: &str, key: &str) -> String {
    format!(
        "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{}}}/{}/{}",
        ids::API,
        sub_literal(stage),
        sub_literal(key)
    )
}

fn permission(route: &RoutePlan, stage: &str) -> Value {
    json!({
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": get_att(&route.function.function_id(), "Arn"),
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": sub(&route_source_arn(stage, &route.key)),
        }
    })
}

fn stage(spec: &StackSpec, routes: &[RoutePlan]) -> Value {
    // One JSON line per event; the keys are API Gateway's $context variables.
    let format = json!({
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "connectionId": "$context.connectionId",
        "status": "$context.status",
        "sourceIp": "$context.identity.sourceIp",
        "error": "$context.error.message",
    })
    .to_string();
    // The first automatic deployment waits for the routes.
    let depends_on: Vec<String> = routes.iter().map(RoutePlan::route_id).collect();
    // Access logging needs the account's logging role first. A DependsOn
    // cannot name a conditional resource; a reference inside Fn::If orders
    // the two only when this stack sets the role.
    let description = json!({
        "Fn::If": [
            "SetApiGatewayAccount",
            sub(&format!(
                "Stage {} (account logging role set by ${{{}}})",
                sub_literal(&spec.stage),
                ids::API_GATEWAY_ACCOUNT
            )),
            format!("Stage {}", spec.stage),
        ]
    });
    json!({
        "Type": "AWS::ApiGatewayV2::Stage",
        "DependsOn": depends_on,
        "Properties": {
            "ApiId": reference(ids::API),
            "Description": description,
            "StageName": spec.stage,
            "AutoDeploy": true,
            "DefaultRouteSettings": {
                "ThrottlingBurstLimit": reference(params::THROTTLING_BURST),
                "ThrottlingRateLimit": reference(params::THROTTLING_RATE),
            },
            "AccessLogSettings": {
                "DestinationArn": sub(&format!(
                    "arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{{}}}",
                    ids::ACCESS_LOG_GROUP
                )),
                "Format": format,
            },
        }
    })
}

fn outputs() -> Value {
    let endpoint = |scheme: &str| {
        sub(&format!(
            "{scheme}://${{{}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{}}}",
            ids::API,
            ids::STAGE
        ))
    };
    json!({
        "WebSocketUrl": {
            "Description": "What clients connect to",
            "Value": endpoint("wss"),
        },
        "ManagementEndpoint": {
            "Description": "The Management API (@connections) of the stage: wsadmin --endpoint",
            "Value": endpoint("https"),
        },
        "TableName": {
            "Description": "The connection registry: wsadmin --table",
            "Value": reference(ids::TABLE),
        },
        "ApiId": {
            "Description": "The WebSocket API: wsadmin --api-id",
            "Value": reference(ids::API),
        },
    })
}

fn reference(logical_id: &str) -> Value {
    json!({ "Ref": logical_id })
}

fn get_att(logical_id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [logical_id, attribute] })
}

fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

/// `text` as literal text inside `Fn::Sub`: a `${` would start a variable,
/// and `${!` is how Fn::Sub writes a literal `${`.
fn sub_literal(text: &str) -> String {
    text.replace("${", "${!")
}

/// A logical id stem from a route key: its ASCII letters and digits, each
/// run capitalised (`$connect` → `Connect`, `chat.send` → `ChatSend`), at
/// most 64 characters.
fn pascal(key: &str) -> String {
    let mut out = String::new();
    for part in key.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out.truncate(64);
    out
}

#[cfg(test)]
mod tests {
    use wsadmin_core::stack::RouteSpec;

    use super::*;

    #[test]
    fn logical_stems_are_unique_and_alphanumeric() {
        let spec = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "ws-connect"),
                RouteSpec::new("connect", "ws-message"),
                RouteSpec::new("chat.send", "ws-message"),
                RouteSpec::new("é", "ws-message"),
            ],
            ..StackSpec::default()
        };
        let stems: Vec<String> = plan_routes(&spec)
            .unwrap()
            .into_iter()
            .map(|r| r.stem)
            .collect();
        assert_eq!(stems, ["Connect", "ConnectRoute2", "ChatSend", "Route4"]);
    }

    #[test]
    fn sub_literals_escape_variables() {
        assert_eq!(sub_literal("a${b}"), "a${!b}");
        assert_eq!(sub_literal("$default"), "$default");
    }
}
