// The seed article's broadcast logic (its message function,
// deploy/tests/fixtures/article/functions/ws-message/index.js) run against
// the local stack from the command line: one Scan page, then every
// PostToConnection at once through the JS SDK v3 (`Promise.all`), a
// DeleteItem on a 410. The same SDK calls with the SDK's defaults; the
// only change is where they go: the stack's plain-HTTP Management
// endpoint and DynamoDB, read from WSADMIN_LOCAL_STATE, so that it and
// `wsadmin broadcast` reach the stack the same way.
//
// Usage: NODE_PATH=runtimes/nodejs/node_modules node seed_message.js DATA
// Prints one JSON line: the logic's own seconds (after the SDK is loaded),
// the items the Scan page held, posts that succeeded, and 410s.
'use strict';
const fs = require('fs');
const started = process.hrtime.bigint();
const { DeleteItemCommand, DynamoDBClient, ScanCommand } = require('@aws-sdk/client-dynamodb');
const {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand
} = require('@aws-sdk/client-apigatewaymanagementapi');

const info = JSON.parse(fs.readFileSync(process.env.WSADMIN_LOCAL_STATE, 'utf8'));
const credentials = { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey };
const dbClient = new DynamoDBClient({
  region: info.region,
  endpoint: info.dynamodbEndpoint,
  credentials
});
const table = info.table;

async function handler(data) {
  const connections = await getConnections(table);
  const apiGw = new ApiGatewayManagementApiClient({
    apiVersion: '2018-11-29',
    region: info.region,
    endpoint: info.managementEndpoint,
    credentials
  });
  let delivered = 0;
  let gone = 0;
  await Promise.all(
    connections.map(async (connection) => {
      try {
        const input = { ConnectionId: connection.connectionId.S, Data: data };
        const command = new PostToConnectionCommand(input);
        const out = await apiGw.send(command);
        delivered += 1;
        return out;
      } catch (error) {
        if (error.$metadata && error.$metadata.httpStatusCode === 410) {
          gone += 1;
          await handleStaleConnection(table, connection.connectionId.S);
        }
      }
    })
  );
  return { items: connections.length, delivered, gone };
}

async function getConnections(table) {
  const { Items } = await dbClient.send(new ScanCommand({ TableName: table }));
  return Items;
}

async function handleStaleConnection(table, connectionId) {
  await dbClient.send(
    new DeleteItemCommand({ TableName: table, Key: { connectionId: { S: connectionId } } })
  );
}

const loaded = process.hrtime.bigint();
handler(process.argv[2] || 'hello from the seed').then((r) => {
  const done = process.hrtime.bigint();
  console.log(JSON.stringify({
    ...r,
    seconds: Number(done - loaded) / 1e9,
    loadSeconds: Number(loaded - started) / 1e9
  }));
});
