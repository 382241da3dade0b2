// wsadmin-lambda's Node.js runtime: the Lambda Runtime API loop for one
// execution environment, over Node's built-in `http` only. It loads the
// handler `_HANDLER` (`file.export`, `dir/file.export`, nested exports) from
// LAMBDA_TASK_ROOT as CommonJS or as an ES module, then answers events one
// at a time. An init failure is posted to /runtime/init/error and ends the
// process. It never times out its `next` request.
"use strict";

const http = require("http");
const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const PREFIX = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const [apiHost, apiPort] = API.split(":");

function request(method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: apiHost,
        port: Number(apiPort),
        path: urlPath,
        method,
        agent,
        headers: Object.assign(
          body === undefined ? {} : { "Content-Type": "application/json" },
          headers || {},
        ),
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.setTimeout(0);
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorBody(err) {
  if (err instanceof Error) {
    const stack = typeof err.stack === "string" ? err.stack.split("\n") : [];
    return { errorType: err.name || "Error", errorMessage: err.message, stackTrace: stack, trace: stack };
  }
  let message;
  try {
    message = typeof err === "string" ? err : JSON.stringify(err);
  } catch (_) {
    message = String(err);
  }
  return { errorType: typeof err, errorMessage: String(message), stackTrace: [], trace: [] };
}

async function postError(urlPath, body, label) {
  console.error(`ERROR\t${label} \t${JSON.stringify(body)}`);
  await request("POST", urlPath, JSON.stringify(body), {
    "Lambda-Runtime-Function-Error-Type": body.errorType,
  });
}

class InitError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type;
  }
}

// `src/app.handler` -> module `src/app`, export path `handler`: the first
// dot after the last slash splits them, as Lambda's runtime does.
function splitHandler(handler) {
  const slash = handler.lastIndexOf("/") + 1;
  const dot = handler.indexOf(".", slash);
  if (dot < 0) throw new InitError("Runtime.MalformedHandlerName", `Bad handler ${handler}`);
  return [handler.slice(0, dot), handler.slice(dot + 1)];
}

async function loadModule(root, moduleName) {
  const base = path.resolve(root, moduleName);
  for (const ext of [".js", ".mjs", ".cjs"]) {
    const file = base + ext;
    if (!fs.existsSync(file)) continue;
    try {
      if (ext === ".mjs") return await import(pathToFileURL(file).href);
      try {
        return require(file);
      } catch (e) {
        if (e && (e.code === "ERR_REQUIRE_ESM" || e.code === "ERR_REQUIRE_ASYNC_MODULE")) {
          return await import(pathToFileURL(file).href);
        }
        throw e;
      }
    } catch (e) {
      if (e instanceof SyntaxError) throw new InitError("Runtime.UserCodeSyntaxError", `${e.name}: ${e.message}`);
      throw e;
    }
  }
  throw new InitError(
    "Runtime.ImportModuleError",
    `Error: Cannot find module '${moduleName}' (looked for ${moduleName}.js, .mjs and .cjs in ${root})`,
  );
}

async function loadHandler() {
  const handler = process.env._HANDLER || "";
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const [moduleName, exportPath] = splitHandler(handler);
  let target = await loadModule(root, moduleName);
  for (const key of exportPath.split(".")) {
    target = target == null ? undefined : target[key];
  }
  if (typeof target !== "function") {
    throw new InitError("Runtime.HandlerNotFound", `${handler} is undefined or not exported`);
  }
  return target;
}

function contextFor(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis() {
      return Math.max(0, deadline - Date.now());
    },
  };
}

// Runs the handler once; resolves with ["ok", value] or ["error", err]. A
// callback-style answer waits for the event loop to empty unless the
// handler set `callbackWaitsForEmptyEventLoop = false`, as on Lambda.
function runHandler(handler, event, context) {
  return new Promise((resolve) => {
    let settled = false;
    // What a callback answered, sent once the event loop is empty; a
    // handler that never answers succeeds with null then, as on Lambda.
    let pending = null;
    const onEmpty = () => finish(pending || ["ok", null]);
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      process.removeListener("beforeExit", onEmpty);
      resolve(outcome);
    };
    process.on("beforeExit", onEmpty);
    const callback = (err, value) => {
      const outcome = err != null ? ["error", err] : ["ok", value];
      if (context.callbackWaitsForEmptyEventLoop) pending = pending || outcome;
      else finish(outcome);
    };
    context.done = callback;
    context.succeed = (value) => callback(null, value);
    context.fail = (err) => callback(err == null ? new Error("handled") : err);
    try {
      const result = handler(event, context, callback);
      if (result && typeof result.then === "function") {
        result.then((value) => finish(["ok", value]), (err) => finish(["error", err]));
      }
    } catch (err) {
      finish(["error", err]);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    await postError(`${PREFIX}/init/error`, errorBody(err), "Uncaught Exception").catch(() => {});
    process.exit(1);
  }
  for (;;) {
    const next = await request("GET", `${PREFIX}/invocation/next`);
    if (next.status !== 200) throw new Error(`next answered ${next.status}: ${next.body}`);
    const id = next.headers["lambda-runtime-aws-request-id"];
    const trace = next.headers["lambda-runtime-trace-id"];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    let event;
    try {
      event = JSON.parse(next.body);
    } catch (err) {
      await postError(`${PREFIX}/invocation/${id}/error`, errorBody(err), "Invoke Error");
      continue;
    }
    const [kind, value] = await runHandler(handler, event, contextFor(next.headers));
    if (kind === "ok") {
      let body;
      try {
        body = JSON.stringify(value === undefined ? null : value);
      } catch (err) {
        await postError(`${PREFIX}/invocation/${id}/error`, errorBody(err), "Invoke Error");
        continue;
      }
      await request("POST", `${PREFIX}/invocation/${id}/response`, body);
    } else {
      await postError(`${PREFIX}/invocation/${id}/error`, errorBody(value), "Invoke Error");
    }
  }
}

process.on("uncaughtException", (err) => {
  console.error(`ERROR\tUncaught Exception \t${JSON.stringify(errorBody(err))}`);
  process.exit(129);
});
process.on("unhandledRejection", (err) => {
  console.error(`ERROR\tUnhandled Promise Rejection \t${JSON.stringify(errorBody(err))}`);
  process.exit(128);
});

main().catch((err) => {
  console.error(`ERROR\tRuntime failure \t${JSON.stringify(errorBody(err))}`);
  process.exit(1);
});
