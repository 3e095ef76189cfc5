#!/usr/bin/env python3
"""Aggregate generation throughput of an OpenAI-compatible server, with C concurrent clients.

Each client (a thread with its own keep-alive HTTP connection) sends REQUESTS non-streaming
chat completions one after another. Throughput = the sum of every response's
usage.completion_tokens / the wall time from the common start to the last response.
One untimed request warms the server up first. Prints one JSON object on stdout.

Standard library only, so it runs with any python3.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

QUESTION = (
    "Write a long, detailed essay about the history of the printing press, "
    "its inventors, and its effects on science, religion and politics in Europe."
)


def build_body(args, client, index):
    body = {
        "model": args.model,
        "messages": [
            # A distinct question per request: no server may answer from a prompt cache
            # of an identical earlier request (all do prefix caching of some kind).
            {"role": "user", "content": f"({client}-{index}) {QUESTION}"},
        ],
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "stream": False,
    }
    if args.ignore_eos:
        body["ignore_eos"] = True
    if args.min_tokens:
        body["min_tokens"] = args.min_tokens
    return json.dumps(body).encode()


def post(conn, path, payload, timeout, token=None):
    conn.timeout = timeout
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=payload, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
    return json.loads(data)


def run_clients(n, client, barrier):
    """Starts `client(i)` on n threads, each waiting at `barrier` (of n + 1 parties); returns the
    wall time from the common start to the end of the last one."""
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8787")
    ap.add_argument("--model", default="bench")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=2, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--ignore-eos", action="store_true", help='send "ignore_eos": true')
    ap.add_argument("--min-tokens", type=int, default=0, help='send "min_tokens" (llama-cpp-python)')
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--label", default="")
    ap.add_argument("--token-env", default="", help="name of the environment variable holding a bearer token")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    path = url.path.rstrip("/") + "/v1/chat/completions"

    # Warm-up: loads pages of the model, fills caches, JIT-free servers still allocate buffers.
    conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    token = os.environ.get(args.token_env) if args.token_env else None
    post(conn, path, build_body(args, "warmup", 0), args.timeout, token)
    conn.close()

    results = []  # (completion_tokens, latency_s)
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.clients + 1)

    def client(cid):
        c = http.client.HTTPConnection(host, port, timeout=args.timeout)
        bodies = [build_body(args, cid, i) for i in range(args.requests)]
        barrier.wait()
        for payload in bodies:
            t0 = time.perf_counter()
            try:
                out = post(c, path, payload, args.timeout, token)
                n = int(out["usage"]["completion_tokens"])
                with lock:
                    results.append((n, time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - report every failure, keep going
                with lock:
                    errors.append(repr(e))
                c.close()
                c = http.client.HTTPConnection(host, port, timeout=args.timeout)
        c.close()

    wall = run_clients(args.clients, client, barrier)

    tokens = sum(n for n, _ in results)
    out = {
        "label": args.label,
        "clients": args.clients,
        "requests": len(results),
        "errors": len(errors),
        "error_samples": errors[:3],
        "completion_tokens": tokens,
        "mean_completion_tokens": tokens / len(results) if results else 0,
        "wall_s": wall,
        "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        "mean_latency_s": statistics.mean(l for _, l in results) if results else None,
    }
    print(json.dumps(out))
    return 0 if results and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
