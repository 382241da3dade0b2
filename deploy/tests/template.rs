//! `wsstack template` and `wsstack policy` (issue 10): the generated
//! template passes cfn-lint (the project's `.venv`, installed by
//! `scripts/setup`) in both languages and reads back from YAML to the JSON
//! value; pure assertions over the template value (least privilege, route
//! wiring); and each bad input ends in a clear error from the real binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use wsadmin_core::TableConfig;
use wsadmin_core::stack::{RouteSpec, StackSpec};
use wsadmin_deploy::template::{Function, template};

const WSSTACK: &str = env!("CARGO_BIN_EXE_wsstack");

fn venv_bin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs scripts/requirements-test.txt into .venv)",
        path.display()
    );
    path
}

fn wsstack(args: &[&str]) -> Output {
    Command::new(WSSTACK)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run wsstack")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The default stack, renamed, plus a `chat` route to ws-message.
fn extra_route_spec() -> StackSpec {
    let mut spec = StackSpec {
        api_name: "chat-demo".into(),
        stage: "prod".into(),
        table: "CHAT_CONNECTIONS".into(),
        ..StackSpec::default()
    };
    spec.routes.push(RouteSpec::new("chat", "ws-message"));
    spec
}

// ------------------------------------------------------------ cfn-lint

#[test]
fn cfn_lint_passes_for_the_default_stack_and_an_extra_route_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let stack_file = dir.path().join("stack.toml");
    std::fs::write(&stack_file, extra_route_spec().to_toml()).unwrap();
    let stack_arg = stack_file.to_str().unwrap();

    let cases: [(&str, &[&str]); 2] = [("default", &[]), ("extra", &["--stack", stack_arg])];
    let mut files = Vec::new();
    for (name, stack) in cases {
        for format in ["yaml", "json"] {
            let path = dir.path().join(format!("{name}.{format}"));
            let mut args = vec!["template", "--format", format, "--out"];
            args.push(path.to_str().unwrap());
            args.extend_from_slice(stack);
            let out = wsstack(&args);
            assert!(out.status.success(), "{name} {format}: {}", stderr(&out));
            files.push(path);
        }
    }

    let lint = Command::new(venv_bin("cfn-lint"))
        .arg("--")
        .args(&files)
        .output()
        .expect("run cfn-lint");
    assert!(
        lint.status.success() && lint.stdout.is_empty(),
        "cfn-lint found errors or warnings (exit {:?}):\n{}{}",
        lint.status.code(),
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // The YAML form reads back (PyYAML, as cfn-lint reads it) to the JSON
    // form, and the JSON form is the library's value.
    for (name, spec) in [
        ("default", StackSpec::default()),
        ("extra", extra_route_spec()),
    ] {
        let yaml = dir.path().join(format!("{name}.yaml"));
        let json_path = dir.path().join(format!("{name}.json"));
        let out = Command::new(venv_bin("python3"))
            .args([
                "-c",
                "import json, sys, yaml\n\
                 a = yaml.safe_load(open(sys.argv[1]))\n\
                 b = json.load(open(sys.argv[2]))\n\
                 sys.exit(0 if a == b else 'YAML and JSON differ')",
            ])
            .arg(&yaml)
            .arg(&json_path)
            .output()
            .expect("run python3");
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(written, generated(&spec), "{name}");
    }
}

#[test]
fn yaml_goes_to_standard_output_by_default() {
    let out = wsstack(&["template"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("AWSTemplateFormatVersion: \"2010-09-09\"\n"),
        "{text}"
    );
    assert!(text.contains("\n  ConnectionsTable:\n"), "{text}");
}

// ------------------------------------------------------------ the value

fn generated(spec: &StackSpec) -> Value {
    template(spec, &TableConfig::new(&spec.table)).expect("a template for a valid description")
}

fn resources(t: &Value) -> &serde_json::Map<String, Value> {
    t["Resources"].as_object().expect("Resources is a map")
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

/// The least-privilege set per handler, written out here independently of
/// the code that builds it: (actions, resource) per statement.
fn expected_statements(f: Function, stage: &str) -> Vec<(Vec<&'static str>, Value)> {
    let logs = (
        vec!["logs:CreateLogStream", "logs:PutLogEvents"],
        get_att(&f.log_group_id(), "Arn"),
    );
    let table = get_att("ConnectionsTable", "Arn");
    match f {
        Function::Connect => vec![logs, (vec!["dynamodb:PutItem"], table)],
        Function::Disconnect => vec![logs, (vec!["dynamodb:DeleteItem"], table)],
        Function::Default => vec![logs],
        Function::Message => vec![
            logs,
            (vec!["dynamodb:Scan", "dynamodb:DeleteItem"], table),
            (
                vec!["execute-api:ManageConnections"],
                json!({ "Fn::Sub": format!(
                    "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{WebSocketApi}}/{stage}/POST/@connections/*"
                )}),
            ),
        ],
    }
}

fn specs() -> [StackSpec; 2] {
    [StackSpec::default(), extra_route_spec()]
}

#[test]
fn every_role_has_exactly_its_least_privilege_set() {
    for spec in specs() {
        let t = generated(&spec);
        let roles = of_type(&t, "AWS::IAM::Role");
        assert_eq!(roles.len(), 4, "one role per function");
        for f in Function::ALL {
            let role = &resources(&t)[&f.role_id()];
            assert_eq!(
                role["Properties"]["AssumeRolePolicyDocument"]["Statement"],
                json!([{
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }])
            );
            let policies = role["Properties"]["Policies"].as_array().unwrap();
            assert_eq!(policies.len(), 1, "{}", f.handler());
            let statements = policies[0]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap();
            let got: Vec<(Vec<&str>, Value)> = statements
                .iter()
                .map(|s| {
                    assert_eq!(s["Effect"], "Allow");
                    let actions = s["Action"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap())
                        .collect();
                    (actions, s["Resource"].clone())
                })
                .collect();
            assert_eq!(got, expected_statements(f, &spec.stage), "{}", f.handler());
            assert!(role["Properties"].get("ManagedPolicyArns").is_none());

            // The function runs as that role and logs to that group only.
            let function = &resources(&t)[&f.function_id()]["Properties"];
            assert_eq!(function["Role"], get_att(&f.role_id(), "Arn"));
            assert_eq!(
                function["LoggingConfig"]["LogGroup"],
                reference(&f.log_group_id())
            );
            assert_eq!(
                resources(&t)[&f.log_group_id()]["Properties"]["RetentionInDays"],
                reference("LogRetentionInDays")
            );
        }
    }
}

#[test]
fn functions_are_al2023_bootstraps_with_their_environment() {
    for spec in specs() {
        let t = generated(&spec);
        assert_eq!(of_type(&t, "AWS::Lambda::Function").len(), 4);
        for f in Function::ALL {
            let p = &resources(&t)[&f.function_id()]["Properties"];
            assert_eq!(p["Runtime"], "provided.al2023");
            assert_eq!(p["Handler"], "bootstrap");
            assert_eq!(p["Architectures"], json!([reference("Architecture")]));
            assert_eq!(
                p["Code"],
                json!({"S3Bucket": reference("CodeBucket"), "S3Key": reference(&f.code_key_parameter())})
            );
            let env = &p["Environment"]["Variables"];
            match f {
                Function::Default => assert!(p.get("Environment").is_none()),
                _ => {
                    assert_eq!(env["CONNECTIONS_TABLE"], reference("ConnectionsTable"));
                    assert_eq!(env["CONNECTIONS_TABLE_KEY"], "connectionId");
                }
            }
            assert_eq!(
                env.get("BROADCAST_CONCURRENCY").is_some(),
                f == Function::Message
            );
        }
    }
}

#[test]
fn the_table_is_on_demand_keyed_by_the_description_with_ttl_sse_streams_and_pitr_parameter() {
    let spec = extra_route_spec();
    let t = template(&spec, &TableConfig::new(&spec.table).with_key("cid")).unwrap();
    let p = &resources(&t)["ConnectionsTable"]["Properties"];
    assert_eq!(p["TableName"], "CHAT_CONNECTIONS");
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        p["KeySchema"],
        json!([{"AttributeName": "cid", "KeyType": "HASH"}])
    );
    assert_eq!(
        p["AttributeDefinitions"],
        json!([{"AttributeName": "cid", "AttributeType": "S"}])
    );
    assert_eq!(
        p["TimeToLiveSpecification"],
        json!({"AttributeName": "expiresAt", "Enabled": true})
    );
    assert_eq!(p["SSESpecification"], json!({"SSEEnabled": true}));
    assert_eq!(
        p["StreamSpecification"],
        json!({"StreamViewType": "NEW_AND_OLD_IMAGES"})
    );
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        json!({"Fn::If": ["PointInTimeRecoveryEnabled", true, false]})
    );
    assert_eq!(
        t["Parameters"]["PointInTimeRecovery"]["AllowedValues"],
        json!(["true", "false"])
    );
    // The functions are told the key.
    assert_eq!(
        resources(&t)["ConnectFunction"]["Properties"]["Environment"]["Variables"]["CONNECTIONS_TABLE_KEY"],
        "cid"
    );
}

/// The logical id a `Fn::Sub: "integrations/${X}"` target names.
fn target_integration(route: &Value) -> &str {
    route["Properties"]["Target"]["Fn::Sub"]
        .as_str()
        .and_then(|t| t.strip_prefix("integrations/${"))
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("route target is not integrations/${{...}}: {route}"))
}

#[test]
fn every_route_targets_the_integration_of_its_function_and_is_invoked_only_by_itself() {
    for spec in specs() {
        let t = generated(&spec);
        let routes = of_type(&t, "AWS::ApiGatewayV2::Route");
        assert_eq!(routes.len(), spec.routes.len());
        let permissions = of_type(&t, "AWS::Lambda::Permission");
        assert_eq!(
            permissions.len(),
            spec.routes.len(),
            "one permission per route"
        );
        assert_eq!(
            of_type(&t, "AWS::ApiGatewayV2::Integration").len(),
            4,
            "one integration per function"
        );

        let mut seen_arns = BTreeSet::new();
        for route_spec in &spec.routes {
            let f = Function::from_handler(&route_spec.handler).unwrap();
            let matching: Vec<_> = routes
                .iter()
                .filter(|(_, r)| r["Properties"]["RouteKey"] == route_spec.key.as_str())
                .collect();
            assert_eq!(matching.len(), 1, "route {}", route_spec.key);
            let (_, route) = matching[0];
            assert_eq!(route["Properties"]["ApiId"], reference("WebSocketApi"));

            let integration_id = target_integration(route);
            assert_eq!(
                integration_id,
                f.integration_id(),
                "route {}",
                route_spec.key
            );
            let integration = &resources(&t)[integration_id]["Properties"];
            assert_eq!(integration["IntegrationType"], "AWS_PROXY");
            let uri = integration["IntegrationUri"]["Fn::Sub"].as_str().unwrap();
            assert!(
                uri.ends_with(&format!(
                    "/functions/${{{}.Arn}}/invocations",
                    f.function_id()
                )),
                "{uri}"
            );

            // Exactly one permission names this route's execution ARN, and
            // it is for this route's function.
            let arn = format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{WebSocketApi}}/{}/{}",
                spec.stage, route_spec.key
            );
            let granting: Vec<_> = permissions
                .iter()
                .filter(|(_, p)| p["Properties"]["SourceArn"]["Fn::Sub"] == arn.as_str())
                .collect();
            assert_eq!(granting.len(), 1, "permission for {arn}");
            let p = &granting[0].1["Properties"];
            assert_eq!(p["FunctionName"], get_att(&f.function_id(), "Arn"));
            assert_eq!(p["Principal"], "apigateway.amazonaws.com");
            assert_eq!(p["Action"], "lambda:InvokeFunction");
            assert!(seen_arns.insert(arn));
        }
    }
}

#[test]
fn a_route_response_exists_for_default_only() {
    for spec in specs() {
        let t = generated(&spec);
        let responses = of_type(&t, "AWS::ApiGatewayV2::RouteResponse");
        assert_eq!(responses.len(), 1);
        let p = &responses[0].1["Properties"];
        assert_eq!(p["RouteResponseKey"], "$default");
        let route_id = p["RouteId"]["Ref"].as_str().unwrap();
        let route = &resources(&t)[route_id]["Properties"];
        assert_eq!(route["RouteKey"], "$default");
        for (_, r) in of_type(&t, "AWS::ApiGatewayV2::Route") {
            let has = r["Properties"].get("RouteResponseSelectionExpression");
            if r["Properties"]["RouteKey"] == "$default" {
                assert_eq!(has, Some(&json!("$default")));
            } else {
                assert_eq!(has, None, "{r}");
            }
        }
    }
    // A description that asks for one on another route gets it there.
    let mut spec = StackSpec::default();
    spec.routes
        .push(RouteSpec::new("echo", "ws-default").with_route_response());
    let t = generated(&spec);
    assert_eq!(of_type(&t, "AWS::ApiGatewayV2::RouteResponse").len(), 2);
}

/// Every `Action`/`NotAction` value and every `Resource` in the value.
fn walk<'a>(v: &'a Value, found: &mut BTreeMap<&'static str, Vec<&'a Value>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match k.as_str() {
                    "Action" => found.entry("Action").or_default().push(child),
                    "NotAction" => found.entry("NotAction").or_default().push(child),
                    "Resource" => found.entry("Resource").or_default().push(child),
                    _ => {}
                }
                walk(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
        _ => {}
    }
}

#[test]
fn no_wildcard_action_and_no_unscoped_resource_anywhere() {
    for spec in specs() {
        let t = generated(&spec);
        let mut found = BTreeMap::new();
        walk(&t, &mut found);
        assert!(!found.contains_key("NotAction"));
        let actions = &found["Action"];
        assert!(actions.len() > 10);
        for action in actions {
            let list = match action {
                Value::Array(a) => a.clone(),
                single => vec![(*single).clone()],
            };
            for a in list {
                let a = a.as_str().unwrap();
                assert!(!a.contains('*'), "wildcard action {a}");
            }
        }
        for resource in &found["Resource"] {
            assert_ne!(**resource, json!("*"));
            assert_ne!(**resource, json!(["*"]));
        }
    }
}

#[test]
fn the_api_stage_and_outputs() {
    let spec = extra_route_spec();
    let t = generated(&spec);
    let api = &resources(&t)["WebSocketApi"]["Properties"];
    assert_eq!(api["ProtocolType"], "WEBSOCKET");
    assert_eq!(api["RouteSelectionExpression"], "$request.body.type");
    assert_eq!(api["Name"], "chat-demo");

    let stage = &resources(&t)["Stage"]["Properties"];
    assert_eq!(stage["StageName"], "prod");
    assert_eq!(stage["AutoDeploy"], true);
    assert_eq!(
        stage["DefaultRouteSettings"],
        json!({
            "ThrottlingBurstLimit": reference("ThrottlingBurstLimit"),
            "ThrottlingRateLimit": reference("ThrottlingRateLimit"),
        })
    );
    assert!(
        stage["AccessLogSettings"]["DestinationArn"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(":log-group:${AccessLogGroup}")
    );
    let format: Value =
        serde_json::from_str(stage["AccessLogSettings"]["Format"].as_str().unwrap()).unwrap();
    assert_eq!(format["routeKey"], "$context.routeKey");

    let outputs = t["Outputs"].as_object().unwrap();
    assert_eq!(
        outputs.keys().collect::<Vec<_>>(),
        ["ApiId", "ManagementEndpoint", "TableName", "WebSocketUrl"]
    );
    assert_eq!(
        outputs["WebSocketUrl"]["Value"]["Fn::Sub"],
        "wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    );
    assert_eq!(
        outputs["ManagementEndpoint"]["Value"]["Fn::Sub"],
        "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    );
    assert_eq!(outputs["TableName"]["Value"], reference("ConnectionsTable"));
    assert_eq!(outputs["ApiId"]["Value"], reference("WebSocketApi"));
}

#[test]
fn a_description_using_fewer_functions_gets_only_those() {
    let spec = StackSpec {
        routes: vec![RouteSpec::new("$default", "ws-default").with_route_response()],
        ..StackSpec::default()
    };
    let t = generated(&spec);
    assert_eq!(of_type(&t, "AWS::Lambda::Function").len(), 1);
    assert_eq!(of_type(&t, "AWS::IAM::Role").len(), 1);
    assert!(t["Parameters"].get("ConnectCodeKey").is_none());
    assert!(t["Parameters"].get("BroadcastConcurrency").is_none());
}

// ------------------------------------------------------------ bad input

/// A failure: exit 1, one line on stderr that starts as given, no panic.
fn assert_one_line_error(out: &Output, starts: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(starts), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_handler_is_refused_naming_the_file_the_route_and_the_functions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(&path, "[[routes]]\nkey = \"chat\"\nhandler = \"ws-chat\"\n").unwrap();
    let out = wsstack(&["template", "--stack", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &format!(
            "wsstack: stack file \"{}\": route \"chat\": handler \"ws-chat\" is not a function \
             wsstack can deploy (use ws-connect, ws-disconnect, ws-default or ws-message)",
            path.display()
        ),
    );
}

#[test]
fn an_invalid_stack_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(&path, "stage = \"my stage\"\n").unwrap();
    for command in ["template", "policy"] {
        let out = wsstack(&[command, "--stack", path.to_str().unwrap()]);
        assert_one_line_error(
            &out,
            &format!(
                "wsstack: stack file \"{}\": stage name \"my stage\" is invalid",
                path.display()
            ),
        );
    }

    // A syntax error: toml's report shows the line, after a first line
    // that names the file and the position.
    std::fs::write(&path, "stage = \"dev\"\ntable = WS_CONNECTIONS\n").unwrap();
    let out = wsstack(&["template", "--stack", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.starts_with(&format!(
            "wsstack: stack file \"{}\": TOML parse error at line 2",
            path.display()
        )),
        "{err}"
    );

    let missing = dir.path().join("nope.toml");
    let out = wsstack(&["template", "--stack", missing.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &format!(
            "wsstack: stack file \"{}\": cannot read it:",
            missing.display()
        ),
    );
}

#[test]
fn an_invalid_override_is_refused() {
    let out = wsstack(&["template", "--table", "a/b"]);
    assert_one_line_error(&out, "wsstack: table name \"a/b\" is invalid");
}

#[test]
fn an_unknown_format_is_refused_with_the_known_ones() {
    let out = wsstack(&["template", "--format", "xml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("invalid value 'xml' for '--format <FORMAT>'"),
        "{err}"
    );
    assert!(err.contains("[possible values: yaml, json]"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unwritable_output_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir/template.yaml");
    let out = wsstack(&["template", "--out", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &format!(
            "wsstack: cannot write the template to \"{}\": ",
            path.display()
        ),
    );
    // A directory is not writable as a file either.
    let out = wsstack(&["template", "--out", dir.path().to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &format!(
            "wsstack: cannot write the template to \"{}\": ",
            dir.path().display()
        ),
    );
}

// ------------------------------------------------------------ policy

#[test]
fn policy_with_every_value_is_ready_for_create_policy() {
    let out = wsstack(&[
        "policy",
        "--api-id",
        "a1b2c3d4e5",
        "--stage",
        "prod",
        "--region",
        "eu-west-1",
        "--account",
        "123456789012",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(
        statements[0]["Resource"],
        "arn:aws:dynamodb:eu-west-1:123456789012:table/WS_CONNECTIONS"
    );
    for action in [
        "dynamodb:Scan",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:DescribeTable",
    ] {
        assert!(
            statements[0]["Action"]
                .as_array()
                .unwrap()
                .contains(&json!(action)),
            "{action}"
        );
    }
    assert_eq!(
        statements[1],
        json!({
            "Sid": "ManageConnections",
            "Effect": "Allow",
            "Action": ["execute-api:ManageConnections"],
            "Resource": [
                "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/GET/@connections/*",
                "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/@connections/*",
                "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/DELETE/@connections/*",
            ],
        })
    );
    assert_eq!(
        statements[2],
        json!({
            "Sid": "ReadRegistryStream",
            "Effect": "Allow",
            "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
            "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/WS_CONNECTIONS/stream/*",
        })
    );
    assert_eq!(statements[3]["Action"], json!(["apigateway:GET"]));
    let mut found = BTreeMap::new();
    walk(&policy, &mut found);
    for action in &found["Action"] {
        assert!(!action.to_string().contains('*'), "{action}");
    }
}

#[test]
fn policy_without_values_says_which_placeholders_to_replace() {
    let out = wsstack(&[
        "policy",
        "--table-arn",
        "arn:aws:dynamodb:us-east-1:123456789012:table/T",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        "arn:aws:dynamodb:us-east-1:123456789012:table/T"
    );
    assert_eq!(
        stderr(&out),
        "wsstack: replace <REGION>, <ACCOUNT_ID>, <API_ID> in the policy before using it \
         (or pass --region, --account, --api-id)\n"
    );
}

#[test]
fn policy_refuses_bad_values_by_name() {
    let out = wsstack(&["policy", "--account", "12345"]);
    assert_one_line_error(&out, "wsstack: account \"12345\" is not an AWS account id");
    let out = wsstack(&["policy", "--table-arn", "WS_CONNECTIONS"]);
    assert_one_line_error(
        &out,
        "wsstack: table ARN \"WS_CONNECTIONS\" is not a DynamoDB table ARN",
    );
}
