#!/usr/bin/env python3
"""Where a `perf record --call-graph dwarf` profile's samples go, by layer.

Usage: perf script -i perf.data | perf_categories.py [--top N] [--compact]

Each sample goes to the innermost frame of its stack (from the leaf up)
that names a layer, so a malloc called by the SDK's orchestrator counts as
orchestration, a write(2) made by hyper as HTTP, and SHA-256 as signing;
where one frame matches several patterns, the first in the list wins. Prints one
JSON object: {"samples": N, "categories": {name: percent}, "leaves": [...]}.
"""
import collections
import json
import re
import sys

# (category, regex over a frame's symbol).
CATEGORIES = [
    ("signing", re.compile(r"aws_sigv4|SigV4Signer|gateway::sigv4|hmac|sha2::")),
    ("scan (DynamoDB client and decoding)", re.compile(r"aws_sdk_dynamodb|store::|record::")),
    ("SDK orchestration (interceptors, config bags, endpoint, identity, retry classifiers)",
     re.compile(r"aws_smithy_runtime|aws_runtime::|aws_smithy_types::config_bag|aws_sdk_apigatewaymanagement|aws_smithy_http::|aws_smithy_runtime_api|aws_smithy_http_client|aws_credential_types|aws_config")),
    ("HTTP (our HTTP/1.1 client or hyper, sockets)", re.compile(r"gateway::h1|httparse|hyper|h2::|tokio::net|mio::|tcp_|sock_|__sys_sendto|writev|readv|recvfrom")),
    ("engine (sweep, pacing, stale rule, report)", re.compile(r"wsadmin_core::(sweep|fanout|rate|stale|retry|failure|clock)|wsadmin::")),
    ("gateway (ours, outside the SDK)", re.compile(r"wsadmin_core::gateway")),
    ("tokio scheduler, wake-ups, parking", re.compile(r"tokio::runtime|futex|schedule|epoll")),
]


def main():
    top = 25
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
    counts = collections.Counter()
    leaves = collections.Counter()
    total = 0
    stack = []
    header = None

    def flush():
        nonlocal total
        if header is None:
            return
        total += 1
        symbols = [f for f in stack]
        cat = "other (startup, libc outside the above, kernel)"
        for s in symbols:
            hit = next((name for name, rx in CATEGORIES if rx.search(s)), None)
            if hit:
                cat = hit
                break
        counts[cat] += 1
        if symbols:
            leaves[symbols[0]] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            header, stack = None, []
            continue
        if not line.startswith((" ", "\t")):
            header = line
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].rsplit(" (", 1)[0])
            stack.append(sym)
    flush()
    out = {
        "samples": total,
        "categories": {k: round(100.0 * v / total, 1) for k, v in counts.most_common()},
        "leaves": [[k[:120], round(100.0 * v / total, 1)] for k, v in leaves.most_common(top)],
    }
    print(json.dumps(out) if "--compact" in sys.argv else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
