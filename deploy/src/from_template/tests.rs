//! One test per case: `wsstack template`'s own templates both ways, the
//! article's SAM stack, a plain CloudFormation JSON echo, parameters and
//! conditions, and each bad template refused naming the resource, the
//! property and the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wsadmin_core::TableConfig;
use wsadmin_core::function::{FunctionCode, FunctionSpec};
use wsadmin_core::stack::{KeyAttribute, RouteSpec, StackSpec, TableKeys};

use super::*;
use crate::template::template;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/templates");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).expect("fixture")
}

fn generated(spec: &StackSpec) -> Value {
    template(spec, &TableConfig::new(&spec.table)).unwrap()
}

/// The stack of a template value (no lines), with the default inputs.
fn stack(value: &Value) -> Result<StackSpec, FromTemplateError> {
    stack_from_template(
        &Document::from_value(value.clone()),
        &Inputs::default(),
        Path::new("."),
    )
    .map(|t| t.stack)
}

fn err(value: &Value) -> String {
    stack(value).unwrap_err().to_string()
}

/// The stack of a template's text, read from `base` with `inputs`.
fn read_text(text: &str, inputs: &Inputs, base: &Path) -> Result<TemplateStack, String> {
    let doc = parse(text).map_err(|e| format!("{e:?}"))?;
    stack_from_template(&doc, inputs, base).map_err(|e| e.to_string())
}

fn text_err(text: &str) -> String {
    read_text(text, &Inputs::default(), Path::new(".")).unwrap_err()
}

fn function(name: &str, runtime: &str, handler: &str, code: FunctionCode) -> FunctionSpec {
    FunctionSpec::new(name, runtime, handler, code)
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ------------------------------------------------------- wsstack template

#[test]
fn the_default_stack_comes_back_from_its_template_in_both_forms() {
    let spec = StackSpec::default();
    let value = generated(&spec);
    assert_eq!(stack(&value).unwrap(), spec);
    let yaml = crate::yaml::to_yaml(&value);
    let from_yaml = read_text(&yaml, &Inputs::default(), Path::new(".")).unwrap();
    assert_eq!(from_yaml.stack, spec);
    assert!(from_yaml.authorizers.is_empty());
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
    assert_eq!(stack(&generated(&spec)).unwrap(), spec);
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
        "no WebSocket API (AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET) in the template"
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
         (use ws-connect, ws-disconnect, ws-default or ws-message as wsstack:handler, or leave \
         the metadata out to run the function's own code)"
    );
}

#[test]
fn an_s3_function_without_code_is_refused_naming_the_flag() {
    // Without its metadata, wsstack's function is a zip in S3.
    let text = fixture("parameters-conditions.yaml");
    assert_eq!(
        text_err(&text),
        "resource \"ChatFunction\", property Code, line 52: the code is in S3 (S3Bucket, \
         S3Key), which the local stack does not fetch (give --code ChatFunction=DIR, a \
         directory holding the code unzipped)"
    );
    let mut t = generated(&StackSpec::default());
    t["Resources"]["ConnectFunction"]
        .as_object_mut()
        .unwrap()
        .remove("Metadata");
    assert!(
        err(&t).starts_with("resource \"ConnectFunction\", property Code: the code is in S3"),
        "{}",
        err(&t)
    );
}

#[test]
fn a_route_to_nowhere_is_refused() {
    let mut t = generated(&StackSpec::default());
    t["Resources"]["MessageRoute"]["Properties"]["Target"] =
        json!({"Fn::Sub": "integrations/${Nowhere}"});
    assert_eq!(
        err(&t),
        "resource \"MessageRoute\", property Target: Ref \"Nowhere\" names no parameter, \
         resource or pseudo parameter of the template"
    );
    let mut t = generated(&StackSpec::default());
    t["Resources"]["MessageIntegration"]["Properties"]["IntegrationUri"] =
        json!("arn:aws:lambda:us-east-1:123456789012:function:elsewhere");
    assert_eq!(
        err(&t),
        "resource \"MessageIntegration\", property IntegrationUri: names function \
         \"elsewhere\", which is not a function of the template (route \"message\" uses it)"
    );
}

#[test]
fn missing_names_and_another_table_key_for_our_handlers_are_refused() {
    let mut t = generated(&StackSpec::default());
    t["Resources"]["Stage"]["Properties"]
        .as_object_mut()
        .unwrap()
        .remove("StageName");
    assert_eq!(
        err(&t),
        "resource \"Stage\", property StageName: is missing"
    );
    let t = template(
        &StackSpec::default(),
        &TableConfig::new("WS_CONNECTIONS").with_key("id"),
    )
    .unwrap();
    assert_eq!(
        err(&t),
        "table \"ConnectionsTable\": hash key \"id\" is not the one wsstack's handlers write \
         (connectionId)"
    );
}

#[test]
fn what_it_reads_is_validated_like_a_description() {
    let mut t = generated(&StackSpec::default());
    t["Resources"]["Stage"]["Properties"]["StageName"] = json!("my stage");
    assert!(err(&t).starts_with("stage name \"my stage\" is invalid"));
}

// ------------------------------------------------------- people's templates

/// The article's SAM template in a directory with its functions' code.
fn article_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("template.yaml"),
        fixture("article-sam.yaml"),
    )
    .unwrap();
    for f in ["ws-connect", "ws-disconnect", "ws-default", "ws-message"] {
        std::fs::create_dir_all(dir.path().join("functions").join(f)).unwrap();
    }
    dir
}

#[test]
fn the_articles_sam_template_reads_with_its_four_node_functions() {
    let dir = article_dir();
    let read = load(&dir.path().join("template.yaml"), &Inputs::default()).unwrap();
    let node = |name: &str, timeout: u32, extra: &[(&str, &str)]| {
        let mut f = function(
            name,
            "nodejs20.x",
            "index.handler",
            FunctionCode::Dir(dir.path().join("functions").join(name)),
        );
        f.environment = env(&[
            ("CONNECTIONS_TABLE", "WS_CONNECTIONS"),
            ("LOG_LEVEL", "info"),
        ]);
        f.environment.extend(env(extra));
        f.timeout_seconds = timeout;
        f.memory_mb = 256;
        f
    };
    let expected = StackSpec {
        api_name: "wsstack-local-ws".into(),
        route_selection_expression: "$request.body.type".into(),
        stage: "dev".into(),
        table: "WS_CONNECTIONS".into(),
        table_keys: None,
        routes: vec![
            RouteSpec::new("$connect", "ws-connect"),
            RouteSpec::new("$disconnect", "ws-disconnect"),
            RouteSpec::new("$default", "ws-default").with_route_response(),
            RouteSpec::new("message", "ws-message"),
        ],
        functions: vec![
            node("ws-connect", 10, &[]),
            node("ws-default", 3, &[]),
            node("ws-disconnect", 10, &[]),
            node(
                "ws-message",
                29,
                &[
                    (
                        "ENDPOINT",
                        "https://wsstacklocal.execute-api.us-east-1.amazonaws.com/dev",
                    ),
                    ("GREETING", "Hello,\nWorld!\n"),
                ],
            ),
        ],
    };
    assert_eq!(read.stack, expected);
    assert!(read.authorizers.is_empty());
}

#[test]
fn a_plain_cloudformation_json_template_runs_its_inline_python() {
    let read = read_text(
        &fixture("echo-python.json"),
        &Inputs::default(),
        Path::new("."),
    )
    .unwrap()
    .stack;
    let echo = function(
        "wsstack-local-echo",
        "python3.12",
        "index.handler",
        FunctionCode::Inline(
            "def handler(event, context):\n    return {\"statusCode\": 200, \"body\": \
             event.get(\"body\", \"\")}\n"
                .into(),
        ),
    );
    assert_eq!(
        read,
        StackSpec {
            api_name: "echo".into(),
            route_selection_expression: "$request.body.action".into(),
            stage: "live".into(),
            table: TableConfig::DEFAULT_NAME.into(),
            table_keys: None,
            routes: vec![RouteSpec::new("$default", "wsstack-local-echo").with_route_response()],
            functions: vec![echo],
        }
    );
}

fn chat_inputs(parameters: &[(&str, &str)]) -> Inputs {
    Inputs {
        parameters: env(parameters),
        code: BTreeMap::from([("ChatFunction".to_owned(), PathBuf::from("/srv/chat"))]),
        ..Inputs::default()
    }
}

#[test]
fn parameters_take_their_defaults_and_conditions_choose() {
    let text = fixture("parameters-conditions.yaml");
    let read = read_text(&text, &chat_inputs(&[]), Path::new("."))
        .unwrap()
        .stack;
    let mut chat = function(
        "ChatFunction",
        "nodejs22.x",
        "chat.handler",
        FunctionCode::Dir("/srv/chat".into()),
    );
    chat.environment = env(&[("TABLE", "CHAT-dev"), ("DEBUG", "true")]);
    chat.timeout_seconds = 5;
    chat.memory_mb = 128;
    assert_eq!(
        read,
        StackSpec {
            api_name: "chat-dev".into(),
            route_selection_expression: "${request.body.action}".into(),
            stage: "dev".into(),
            table: "CHAT-dev".into(),
            table_keys: Some(TableKeys {
                hash: KeyAttribute {
                    name: "room".into(),
                    kind: "S".into()
                },
                range: Some(KeyAttribute {
                    name: "at".into(),
                    kind: "N".into()
                }),
                indexes: vec![],
            }),
            routes: vec![
                RouteSpec::new("debug", "ChatFunction"),
                RouteSpec::new("send", "ChatFunction"),
            ],
            functions: vec![chat],
        }
    );
}

#[test]
fn parameter_values_override_defaults_and_flip_conditions() {
    let text = fixture("parameters-conditions.yaml");
    // Env=prod also creates AuditTable: the function's Ref chooses Table.
    let read = read_text(
        &text,
        &chat_inputs(&[("Env", "prod"), ("TableName", "ROOMS")]),
        Path::new("."),
    )
    .unwrap()
    .stack;
    assert_eq!(read.api_name, "chat");
    assert_eq!(read.stage, "prod");
    assert_eq!(read.table, "ROOMS-prod");
    assert_eq!(read.routes, [RouteSpec::new("send", "ChatFunction")]);
    let chat = &read.functions[0];
    assert_eq!(chat.environment, env(&[("TABLE", "ROOMS-prod")]));
    assert_eq!((chat.memory_mb, chat.timeout_seconds), (1024, 29));

    assert_eq!(
        read_text(&text, &chat_inputs(&[("Stage", "x")]), Path::new(".")).unwrap_err(),
        "--parameter Stage: the template has no parameter \"Stage\""
    );
}

// ------------------------------------------------------- bad templates

/// A WebSocket API, a stage and a route to `function`, whose properties
/// (from line 21 on, indented by 6) are `properties`.
fn with_function(ty: &str, properties: &str) -> String {
    format!(
        "\
Parameters:
  Bucket: {{ Type: String }}
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {{ Name: a, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.type }}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {{ ApiId: !Ref Api, StageName: dev }}
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {{ ApiId: !Ref Api, RouteKey: $default, Target: integrations/Integration }}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationUri: !Sub 'arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Fn.Arn}}/invocations'
  Fn:
    Type: {ty}
    Properties:
{properties}"
    )
}

#[test]
fn unreadable_yaml_is_refused_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "Resources:\n  Api:\n    Type: [AWS::ApiGatewayV2::Api\n",
    )
    .unwrap();
    let message = load(&path, &Inputs::default()).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "template file \"{}\" is not valid YAML: line 4: ",
            path.display()
        )),
        "{message}"
    );
}

#[test]
fn an_unsupported_intrinsic_is_refused_by_name() {
    let text = with_function(
        "AWS::Lambda::Function",
        "      Runtime: python3.12
      Handler: index.handler
      Code: { ZipFile: 'def handler(e, c): return e' }
      Environment:
        Variables:
          SHARED: !ImportValue shared-table
",
    );
    assert_eq!(
        text_err(&text),
        "resource \"Fn\", property Environment.Variables.SHARED, line 26: Fn::ImportValue is \
         not supported by the local stack (write the value it stands for, or use a parameter)"
    );
}

#[test]
fn a_route_whose_integration_names_a_missing_function_is_refused() {
    let text = with_function(
        "AWS::Lambda::Function",
        "      FunctionName: other
      Runtime: python3.12
      Handler: index.handler
      Code: { ZipFile: 'def handler(e, c): return e' }
",
    )
    .replace(
        "${Fn.Arn}",
        "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:ghost",
    );
    assert_eq!(
        text_err(&text),
        "resource \"Integration\", property IntegrationUri, line 17: names function \"ghost\", \
         which is not a function of the template (route \"$default\" uses it)"
    );
}

#[test]
fn a_code_uri_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = with_function(
        "AWS::Serverless::Function",
        "      Runtime: nodejs20.x
      Handler: index.handler
      CodeUri: functions/missing/
",
    );
    let message = read_text(&text, &Inputs::default(), dir.path()).unwrap_err();
    assert_eq!(
        message,
        format!(
            "resource \"Fn\", property CodeUri, line 23: directory \"{}\" does not exist \
             (CodeUri is read relative to the template's directory)",
            dir.path().join("functions/missing/").display()
        )
    );
}

#[test]
fn a_runtime_the_local_stack_cannot_run_is_refused() {
    let text = with_function(
        "AWS::Serverless::Function",
        "      Runtime: java17
      Handler: app.Handler::handleRequest
      InlineCode: 'class A {}'
",
    );
    assert_eq!(
        text_err(&text),
        "resource \"Fn\", property Runtime, line 21: function \"Fn\" has runtime \"java17\", \
         which the local stack cannot run (it runs provided.al2023, provided.al2, nodejs18.x \
         to nodejs24.x, python3.9 to python3.13)"
    );
}

#[test]
fn a_parameter_without_a_value_is_refused_naming_it() {
    let text = with_function(
        "AWS::Lambda::Function",
        "      Runtime: python3.12
      Handler: index.handler
      Code: { ZipFile: 'def handler(e, c): return e' }
      Environment: { Variables: { BUCKET: !Ref Bucket } }
",
    );
    assert_eq!(
        text_err(&text),
        "resource \"Fn\", property Environment.Variables.BUCKET, line 24: parameter \"Bucket\" \
         has no Default and no value (give --parameter Bucket=VALUE)"
    );
    let inputs = Inputs {
        parameters: env(&[("Bucket", "b")]),
        ..Inputs::default()
    };
    let read = read_text(&text, &inputs, Path::new(".")).unwrap().stack;
    assert_eq!(read.functions[0].environment, env(&[("BUCKET", "b")]));
}

#[test]
fn flags_are_checked_as_they_are_given() {
    assert_eq!(
        parse_parameter("Env=prod=1"),
        Ok(("Env".into(), "prod=1".into()))
    );
    assert_eq!(parse_parameter("Env=").unwrap().1, "");
    assert!(parse_parameter("Env").unwrap_err().contains("KEY=VALUE"));
    assert!(
        parse_parameter("my-env=1")
            .unwrap_err()
            .contains("not a parameter name")
    );
    assert_eq!(
        parse_code("Echo=build/echo"),
        Ok(("Echo".into(), PathBuf::from("build/echo")))
    );
    assert!(parse_code("Echo").unwrap_err().contains("LOGICAL_ID=DIR"));
    assert!(
        parse_code("Echo=")
            .unwrap_err()
            .contains("names no directory")
    );
}

#[test]
fn a_request_authorizer_guards_connect_and_its_function_runs_locally() {
    let read = read_text(
        &fixture("token-authorizer.yaml"),
        &Inputs::default(),
        Path::new("."),
    )
    .unwrap();
    let connect = read.stack.route("$connect").expect("$connect");
    assert_eq!(
        connect.authorizer,
        Some(wsadmin_core::stack::AuthorizerSpec {
            name: "token".into(),
            function: "wsstack-local-auth".into(),
            identity_source: vec!["route.request.querystring.token".into()],
        })
    );
    assert_eq!(
        connect.authorization,
        wsadmin_core::stack::Authorization::Custom
    );
    assert!(read.stack.function("wsstack-local-auth").is_some());
    assert_eq!(read.authorizers.len(), 1);
    assert_eq!(read.authorizers[0].routes, ["$connect"]);
    assert!(read.stack.route("$default").unwrap().authorizer.is_none());
}

#[test]
fn iam_on_connect_is_read_and_authorization_elsewhere_is_refused() {
    let text = fixture("token-authorizer.yaml");
    let iam = text.replace(
        "      AuthorizationType: CUSTOM\n      AuthorizerId: !Ref TokenAuthorizer\n",
        "      AuthorizationType: AWS_IAM\n",
    );
    let read = read_text(&iam, &Inputs::default(), Path::new(".")).unwrap();
    assert_eq!(
        read.stack.route("$connect").unwrap().authorization,
        wsadmin_core::stack::Authorization::AwsIam
    );
    let elsewhere = text.replace(
        "      RouteKey: $default\n",
        "      RouteKey: $default\n      AuthorizationType: AWS_IAM\n",
    );
    let error = text_err(&elsewhere);
    assert!(
        error.contains("DefaultRoute") && error.contains("only $connect may be authorized"),
        "{error}"
    );
}

#[test]
fn wsstack_template_refuses_a_guarded_connect_rather_than_deploy_it_open() {
    let spec = StackSpec {
        routes: vec![
            RouteSpec::new("$connect", "ws-connect").with_iam(),
            RouteSpec::new("$disconnect", "ws-disconnect"),
        ],
        ..StackSpec::default()
    };
    let error = template(&spec, &TableConfig::new(&spec.table))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("route \"$connect\"") && error.contains("does not deploy authorizers"),
        "{error}"
    );
}
