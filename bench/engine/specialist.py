#!/usr/bin/env python3
"""A specialist-shaped load: long shared instructions, varying passages, short answers.

Every request is a streamed chat completion whose prompt is
  system: a fixed instruction block of about PREFIX tokens (the same in every request),
  user:   a passage block of about PASSAGES tokens that differs per request, then a question,
and whose answer is exactly MAX_TOKENS tokens ("ignore_eos": true). This is what a specialist
sends its model: its instructions, the passages retrieval found, the user's question. A server
that keeps the KV cache of the shared instructions (llama-server's cache_prompt, Sovereign's
prompt reuse) reads only the passages and the question of each request.

C clients (threads) send R requests each, one after another, each on a new connection. Measured per request: the time to the first streamed token (TTFT), from sending the
request to the first chunk carrying content; and the whole latency. Throughput = completion
tokens of all requests / wall time. Two untimed requests warm the server up first (the second
one sees the instructions cached, as every later request may). Prints one JSON object.

The token counts are approximate (words chosen to be one token each in common BPE
vocabularies); the prompt's exact size as the server counted it is reported from a non-streamed
warm-up request's usage.

Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse

from load import post, run_clients

WORDS = (
    "the of and to in is for on that with as by at from this be are or an it not which have "
    "all was were can has more one their will other its also new any may time such must only "
    "each when who use used any office record file law court case state public person staff "
    "rule form date name part year day work home city water land tax fee pay rate cost fund "
    "bank loan card risk plan care health doctor nurse drug test time report policy review "
    "notice request order claim right duty power board group team unit level type kind area"
).split()


def text(rng, tokens):
    return " ".join(rng.choice(WORDS) for _ in range(tokens))


def instructions(tokens):
    # Fixed for every request and every server: the same seed.
    rng = random.Random(8000)
    head = (
        "You are the records office's specialist. Answer only from the passages given, cite "
        "each passage you use by its number, and say plainly when the passages do not answer. "
    )
    return head + "Rules: " + text(rng, max(tokens - 40, 1))


def user_turn(client, index, tokens):
    rng = random.Random(client * 100_003 + index + 1)
    passages = []
    per = max(tokens // 4, 1)
    for n in range(4):
        passages.append(f"[{n + 1}] {text(rng, per)}")
    question = f"Question {client}-{index}: which passage says who may see a sealed {rng.choice(WORDS)} record?"
    return "Passages:\n" + "\n".join(passages) + "\n\n" + question


def body(args, client, index, stream):
    b = {
        "model": args.model,
        "messages": [
            {"role": "system", "content": instructions(args.prefix_tokens)},
            {"role": "user", "content": user_turn(client, index, args.passage_tokens)},
        ],
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": stream,
    }
    if args.cache_prompt:
        b["cache_prompt"] = True
    if stream:
        b["stream_options"] = {"include_usage": True}
    return json.dumps(b).encode()


def stream(conn, path, payload, timeout, token):
    """Sends one streamed request; returns (ttft_s, latency_s, completion_tokens)."""
    conn.timeout = timeout
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    t0 = time.perf_counter()
    conn.request("POST", path, body=payload, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    ttft = None
    pieces = 0
    usage = None
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                pieces += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
    latency = time.perf_counter() - t0
    resp.read()
    if ttft is None:
        raise RuntimeError("the stream carried no content")
    tokens = int(usage["completion_tokens"]) if usage else pieces
    return ttft, latency, tokens


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", default="bench")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=4, help="requests per client")
    ap.add_argument("--prefix-tokens", type=int, default=800)
    ap.add_argument("--passage-tokens", type=int, default=400)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--cache-prompt", action="store_true", help='send "cache_prompt": true (llama-server)')
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--label", default="")
    ap.add_argument("--token-env", default="")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    path = url.path.rstrip("/") + "/v1/chat/completions"
    token = os.environ.get(args.token_env) if args.token_env else None

    conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    warm = post(conn, path, body(args, 10_000, 0, False), args.timeout, token)
    prompt_tokens = int(warm["usage"]["prompt_tokens"])
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    stream(conn, path, body(args, 10_000, 1, True), args.timeout, token)
    conn.close()

    results, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(args.clients + 1)

    def client(cid):
        payloads = [body(args, cid, i, True) for i in range(args.requests)]
        barrier.wait()
        for payload in payloads:
            # A connection per streamed request: llama-server closes the connection after an
            # event stream, so a kept-alive one would fail its next request. Connecting on
            # loopback costs well under a millisecond, the same for every server.
            c = http.client.HTTPConnection(host, port, timeout=args.timeout)
            try:
                r = stream(c, path, payload, args.timeout, token)
                with lock:
                    results.append(r)
            except Exception as e:  # noqa: BLE001 - report every failure, keep going
                with lock:
                    errors.append(repr(e))
            finally:
                c.close()

    wall = run_clients(args.clients, client, barrier)

    ttfts = [r[0] for r in results]
    tokens = sum(r[2] for r in results)
    out = {
        "label": args.label,
        "shape": "specialist",
        "clients": args.clients,
        "requests": len(results),
        "errors": len(errors),
        "error_samples": errors[:3],
        "prompt_tokens": prompt_tokens,
        "prefix_tokens_asked": args.prefix_tokens,
        "passage_tokens_asked": args.passage_tokens,
        "completion_tokens": tokens,
        "mean_completion_tokens": tokens / len(results) if results else 0,
        "wall_s": wall,
        "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        "ttft_p50_s": pct(ttfts, 50),
        "ttft_p99_s": pct(ttfts, 99),
        "ttft_mean_s": statistics.mean(ttfts) if ttfts else None,
        "mean_latency_s": statistics.mean(r[1] for r in results) if results else None,
    }
    print(json.dumps(out))
    return 0 if results and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
