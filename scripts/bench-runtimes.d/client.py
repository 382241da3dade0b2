"""WebSocket clients for scripts/bench-runtimes (python websockets; the same
client for every stack). Each mode prints one JSON object on stdout.

  client.py rtt URL N WARMUP            one client, N sequential Marko?/Polo!
  client.py rtt-many URL CLIENTS EACH   CLIENTS clients at once, EACH each
  client.py broadcast URL CLIENTS TIMEOUT DDB_ENDPOINT
        CLIENTS connected (32 handshakes in flight), one sends a message-route
        broadcast; time from send until every client has it (or TIMEOUT s),
        how many got it; then all close and the table is waited empty.
"""
import asyncio, json, os, ssl, sys, time

import websockets


def pct(samples, p):
    s = sorted(samples)
    if not s:
        return None
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


SSL = None
if os.environ.get("BENCH_CA"):
    SSL = ssl.create_default_context(cafile=os.environ["BENCH_CA"])


async def connect(url):
    extra = {"ssl": SSL} if url.startswith("wss:") else {}
    return await websockets.connect(url, open_timeout=60, max_queue=None,
                                    ping_interval=None, compression=None, **extra)


async def marko(ws):
    t = time.perf_counter()
    await ws.send("Marko?")
    while True:
        reply = await asyncio.wait_for(ws.recv(), 30)
        if reply == "Polo!":
            return (time.perf_counter() - t) * 1000.0


async def rtt(url, n, warmup):
    ws = await connect(url)
    for _ in range(warmup):
        await marko(ws)
    samples = [await marko(ws) for _ in range(n)]
    await ws.close()
    return {"samples": len(samples), "p50_ms": round(pct(samples, 50), 3),
            "p99_ms": round(pct(samples, 99), 3)}


async def rtt_many(url, clients, each):
    sem = asyncio.Semaphore(16)

    async def one_connect():
        async with sem:
            return await connect(url)

    conns = await asyncio.gather(*[one_connect() for _ in range(clients)])
    await asyncio.gather(*[marko(ws) for ws in conns])  # warm-up: one each
    start = asyncio.Event()

    async def run(ws):
        await start.wait()
        return [await marko(ws) for _ in range(each)]

    tasks = [asyncio.create_task(run(ws)) for ws in conns]
    t = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - t
    await asyncio.gather(*[ws.close() for ws in conns])
    samples = [x for r in results for x in r]
    return {"clients": clients, "samples": len(samples), "p50_ms": round(pct(samples, 50), 3),
            "p99_ms": round(pct(samples, 99), 3), "round_trips_per_s": round(len(samples) / wall, 1)}


async def table_count(endpoint):
    import boto3
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    n, kw = 0, {}
    while True:
        page = await asyncio.to_thread(ddb.scan, TableName="WS_CONNECTIONS", Select="COUNT", **kw)
        n += page["Count"]
        if "LastEvaluatedKey" not in page:
            return n
        kw = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


async def broadcast(url, clients, timeout, ddb_endpoint):
    sem = asyncio.Semaphore(32)
    t0 = time.perf_counter()
    failed = []

    async def one_connect():
        async with sem:
            try:
                return await connect(url)
            except Exception as e:  # counted, not fatal
                failed.append(repr(e)[:200])
                return None

    # warm the message function first (one client, one broadcast to itself),
    # so the measured broadcast is not a cold start on either stack
    first = await connect(url)
    warm = "warm-%d" % time.time_ns()
    await first.send(json.dumps({"type": "message", "data": warm}))
    warm_ok = False
    try:
        async def wait_warm():
            while await first.recv() != warm:
                pass
        await asyncio.wait_for(wait_warm(), 20)
        warm_ok = True
    except asyncio.TimeoutError:
        pass
    t0 = time.perf_counter()
    rest = await asyncio.gather(*[one_connect() for _ in range(clients - 1)])
    conns = [first] + [c for c in rest if c]
    connect_s = time.perf_counter() - t0
    records = await table_count(ddb_endpoint)
    token = "bench-%d" % time.time_ns()
    got = {}
    others = []
    done = asyncio.Event()

    async def reader(i, ws):
        try:
            while True:
                m = await ws.recv()
                if m == token:
                    got[i] = time.perf_counter()
                    if len(got) == len(conns):
                        done.set()
                else:
                    others.append(m[:80])
        except Exception:
            pass

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(conns)]
    await asyncio.sleep(0.2)
    sent = time.perf_counter()
    await conns[0].send(json.dumps({"type": "message", "data": token}))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        pass
    elapsed = (max(got.values()) - sent) if got else None
    for r in readers:
        r.cancel()
    sem_close = asyncio.Semaphore(64)

    async def close(ws):
        async with sem_close:
            try:
                await asyncio.wait_for(ws.close(), 10)
            except Exception:
                pass

    await asyncio.gather(*[close(ws) for ws in conns])
    # wait for $disconnect to empty the table, so the next run starts alike
    t_close = time.perf_counter()
    left = await table_count(ddb_endpoint)
    while left and time.perf_counter() - t_close < float(os.environ.get("BENCH_DRAIN_S", "120")):
        await asyncio.sleep(1)
        left = await table_count(ddb_endpoint)
    return {"clients": clients, "warmup_delivered": warm_ok, "connected": len(conns), "connect_failed": len(failed),
            "connect_error": failed[0] if failed else None, "connect_s": round(connect_s, 3),
            "connects_per_s": round((len(conns) - 1) / connect_s, 1),
            "records_before": records, "delivered": len(got),
            "all_delivered_s": round(elapsed, 4) if elapsed is not None and len(got) == len(conns) else None,
            "last_delivery_s": round(elapsed, 4) if elapsed is not None else None,
            "other_frames": len(others), "other_frame": others[0] if others else None,
            "table_left_after_close": left,
            "disconnects_drained_s": round(time.perf_counter() - t_close, 2)}


def main():
    mode, url = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    if mode == "rtt":
        out = asyncio.run(rtt(url, int(a[0]), int(a[1])))
    elif mode == "rtt-many":
        out = asyncio.run(rtt_many(url, int(a[0]), int(a[1])))
    elif mode == "broadcast":
        out = asyncio.run(broadcast(url, int(a[0]), float(a[1]), a[2]))
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
