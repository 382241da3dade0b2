# wsadmin-lambda's Python runtime: the Lambda Runtime API loop for one
# execution environment, standard library only. It imports the handler
# `_HANDLER` (`module.function`, `dir/module.function`) with LAMBDA_TASK_ROOT
# first on sys.path, then answers events one at a time. An init failure is
# posted to /runtime/init/error and ends the process. It never times out its
# `next` request. Run it unbuffered (`python3 -u`).
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"


class Api:
    """One keep-alive connection to the Runtime API, reopened after a failure."""

    def __init__(self):
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(API, timeout=None)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                res = self.conn.getresponse()
                return res.status, res.headers, res.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise


api = Api()


class InitError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def error_body(exc, error_type=None):
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": error_type or getattr(exc, "error_type", None) or type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def post_error(path, body):
    lines = [f"[ERROR] {body['errorType']}: {body['errorMessage']}"]
    if body["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in body["stackTrace"])
    print("\n".join(lines), file=sys.stderr, flush=True)
    data = json.dumps(body).encode()
    api.request(
        "POST",
        path,
        body=data,
        headers={
            "Content-Type": "application/json",
            "Lambda-Runtime-Function-Error-Type": body["errorType"],
        },
    )


def load_handler():
    handler = os.environ.get("_HANDLER", "")
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, root)
    module_name, sep, function_name = handler.rpartition(".")
    if not sep or not module_name or not function_name:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': use module.function")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}") from e
    except ImportError as e:
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}") from e
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InitError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return function


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    try:
        handler = load_handler()
    except Exception as e:
        try:
            post_error(f"{PREFIX}/init/error", error_body(e))
        finally:
            sys.exit(1)
    while True:
        status, headers, body = api.request("GET", f"{PREFIX}/invocation/next")
        if status != 200:
            raise RuntimeError(f"next answered {status}: {body!r}")
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        trace = headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            event = json.loads(body)
            result = handler(event, Context(headers))
        except Exception as e:
            post_error(f"{PREFIX}/invocation/{request_id}/error", error_body(e))
            continue
        try:
            answer = json.dumps(result).encode()
        except Exception as e:
            post_error(f"{PREFIX}/invocation/{request_id}/error", error_body(e, "Runtime.MarshalError"))
            continue
        api.request(
            "POST",
            f"{PREFIX}/invocation/{request_id}/response",
            body=answer,
            headers={"Content-Type": "application/json"},
        )


if __name__ == "__main__":
    main()
