"""Deploys the article's stack (deploy/tests/fixtures/article) onto a running
ministack through its API, the way its README says: the table, the four
functions (zips of the same index.js; the JS SDK v3 from runtimes/nodejs as
a layer, as ministack documents for npm packages), the WebSocket API, its
integrations, routes (with the $default RouteResponse) and the stage.
Prints one JSON object: apiId, websocketUrl (ministack's path form), stage.

usage: ministack_deploy.py ENDPOINT REPO_ROOT [DNS_PRELOAD]
With DNS_PRELOAD (the workaround runs), ws-message alone also gets
NODE_OPTIONS=--require DNS_PRELOAD in its environment; its code is unchanged.
"""
import io, json, os, sys, zipfile

import boto3

endpoint, root = sys.argv[1], sys.argv[2]
dns_preload = sys.argv[3] if len(sys.argv) > 3 else None
region, account = "us-east-1", "000000000000"
kw = dict(endpoint_url=endpoint, region_name=region,
          aws_access_key_id="test", aws_secret_access_key="test")
ddb = boto3.client("dynamodb", **kw)
lam = boto3.client("lambda", **kw)
apigw = boto3.client("apigatewayv2", **kw)
fixture = os.path.join(root, "deploy/tests/fixtures/article")
stage = "dev"
table = "WS_CONNECTIONS"


def zip_dir(src, prefix=""):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for base, _dirs, files in os.walk(src):
            for f in files:
                full = os.path.join(base, f)
                z.write(full, os.path.join(prefix, os.path.relpath(full, src)))
    return buf.getvalue()


ddb.create_table(
    TableName=table,
    AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
    BillingMode="PAY_PER_REQUEST",
)

layer = lam.publish_layer_version(
    LayerName="aws-sdk-js-v3",
    Content={"ZipFile": zip_dir(os.path.join(root, "runtimes/nodejs/node_modules"), "nodejs/node_modules")},
    CompatibleRuntimes=["nodejs20.x"],
)["LayerVersionArn"]

api = apigw.create_api(Name="article-ws", ProtocolType="WEBSOCKET",
                       RouteSelectionExpression="$request.body.type")
api_id = api["ApiId"]

routes = {"$connect": "ws-connect", "$disconnect": "ws-disconnect",
          "$default": "ws-default", "message": "ws-message"}
for route_key, name in routes.items():
    env = {} if name == "ws-default" else {"CONNECTIONS_TABLE": table}
    if name == "ws-message" and dns_preload:
        env["NODE_OPTIONS"] = f"--require {dns_preload}"
    fn = lam.create_function(
        FunctionName=name, Runtime="nodejs20.x", Handler="index.handler",
        Role=f"arn:aws:iam::{account}:role/{name}", Timeout=10, MemorySize=256,
        Code={"ZipFile": zip_dir(os.path.join(fixture, "functions", name))},
        Layers=[layer], Environment={"Variables": env},
    )
    arn = fn["FunctionArn"]
    integ = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY",
        IntegrationUri=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
    )
    route = apigw.create_route(ApiId=api_id, RouteKey=route_key,
                               Target=f"integrations/{integ['IntegrationId']}")
    if route_key == "$default":
        apigw.create_route_response(ApiId=api_id, RouteId=route["RouteId"],
                                    RouteResponseKey="$default")
    lam.add_permission(FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{route_key}")

apigw.create_stage(ApiId=api_id, StageName=stage, AutoDeploy=True)
scheme, host = endpoint.split("://", 1)
ws_scheme = "wss" if scheme == "https" else "ws"
print(json.dumps({"apiId": api_id, "stage": stage,
                  "websocketUrl": f"{ws_scheme}://{host}/_aws/execute-api/{api_id}/{stage}"}))
