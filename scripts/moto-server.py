#!/usr/bin/env python3
"""Starts moto (the AWS control-plane stand-in the tests use for API Gateway
v2) on 127.0.0.1 and a port the OS picks, prints one JSON line
{"port": N} once it listens, and exits when its standard input closes, so a
parent that dies (even by SIGKILL) never leaves it running."""
import json
import logging
import os
import sys

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
try:
    from moto.server import ThreadedMotoServer
except ImportError:
    sys.stderr.write("moto is not installed: run scripts/setup (it creates .venv)\n")
    sys.exit(3)

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
_, port = server.get_host_and_port()
sys.stdout.write(json.dumps({"port": port}) + "\n")
sys.stdout.flush()
try:
    while sys.stdin.buffer.read(4096):
        pass
except KeyboardInterrupt:
    pass
