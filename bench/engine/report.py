#!/usr/bin/env python3
"""Collects the raw files of one bench/engine run, prints the comparison table with ratios
(markdown, ready for docs/benchmarks.md) and writes everything as one JSON file."""

import argparse
import json
import os
import platform
import re
import subprocess
from pathlib import Path

# (our measurement, reference) -> the ratio at which we pass; absent: informative only.
# "same": llama.cpp's tools built from the llama.cpp our engine links, with our flags;
# "release": the current llama.cpp release with its defaults (bench/lib.sh).
TARGETS = {
    ("pp", "llama-bench-same"): 0.97,
    ("tg", "llama-bench-same"): 0.97,
    ("http-1", "llama-server-same"): 1.0,
    ("http-8", "llama-server-same"): 1.1,
    ("pp", "llama-bench-release"): 1.0,
    ("tg", "llama-bench-release"): 1.0,
    ("http-1", "llama-server-release"): 1.0,
    ("http-8", "llama-server-release"): 1.0,
    # The seal (Landlock + seccomp on every syscall) must cost under 3% of throughput.
    ("http-1", "sov-serve-unsealed"): 0.97,
    ("http-8", "sov-serve-unsealed"): 0.97,
}
for c in (1, 8):
    for build in ("same", "release"):
        # Specialist-shaped: time to first token (ratio = theirs / ours: above 1 is faster)
        # and throughput.
        TARGETS[(f"spec-ttft50-{c}", f"llama-server-{build}")] = 1.0
        TARGETS[(f"spec-tps-{c}", f"llama-server-{build}")] = 1.0


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def machine():
    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_at_report": os.getloadavg()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for key in ("Model name", "Thread(s) per core", "Core(s) per socket", "Socket(s)", "Flags"):
            m = re.search(rf"^{re.escape(key)}:\s*(.*)$", out, re.M)
            if m:
                value = m.group(1).strip()
                if key == "Flags":
                    value = " ".join(f for f in value.split() if f in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile"))
                info[key.lower().replace("(s)", "s").replace(" ", "_")] = value
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--parallel", type=int, required=True)
    ap.add_argument("--loadavg-start", default="")
    args = ap.parse_args()
    raw = Path(args.raw)

    ours, refs = {}, {}
    builds = load(raw / "builds.json") or {}
    failures = [load(f) for f in sorted(raw.glob("failed-*.json"))]
    failures = [f for f in failures if f]
    bench_rows = {}
    for build in ("same", "release"):
        rows_ = load(raw / f"llama-bench-{build}.json")
        if not rows_:
            continue
        bench_rows[build] = rows_
        for row_ in rows_:
            kind = "pp" if row_.get("n_prompt", 0) > 0 and row_.get("n_gen", 0) == 0 else "tg"
            refs[(kind, f"llama-bench-{build}")] = row_["avg_ts"]
    engine = load(raw / "sov-bench-engine.json")
    if engine:
        ours["pp"] = engine["pp"]["avg_ts"]
        ours["tg"] = engine["tg"]["avg_ts"]

    http, spec = {}, {}
    for f in sorted(raw.glob("http-*.json")):
        d = load(f)
        if d:
            http[(d["label"], d["clients"])] = d
    for f in sorted(raw.glob("specialist-*.json")):
        d = load(f)
        if d:
            spec[(d["label"], d["clients"])] = d
    clients = sorted({c for _, c in http} | {c for _, c in spec})
    for (label, c), d in http.items():
        if label == "sov-serve":
            ours[f"http-{c}"] = d["tokens_per_s"]
        else:
            refs[(f"http-{c}", label)] = d["tokens_per_s"]
    for (label, c), d in spec.items():
        # Lower is better for time to first token: the ratio is theirs / ours.
        if label == "sov-serve":
            ours[f"spec-ttft50-{c}"] = d["ttft_p50_s"]
            ours[f"spec-ttft99-{c}"] = d["ttft_p99_s"]
            ours[f"spec-tps-{c}"] = d["tokens_per_s"]
        else:
            refs[(f"spec-ttft50-{c}", label)] = d["ttft_p50_s"]
            refs[(f"spec-ttft99-{c}", label)] = d["ttft_p99_s"]
            refs[(f"spec-tps-{c}", label)] = d["tokens_per_s"]

    rows = []
    def row(name, key, ref, unit, lower_is_better=False):
        o, r = ours.get(key), refs.get((key, ref))
        ratio = None
        if o and r:
            ratio = r / o if lower_is_better else o / r
        target = TARGETS.get((key, ref))
        verdict = "" if target is None or ratio is None else ("meets" if ratio >= target else "MISSES")
        rows.append({"test": name, "ref": ref, "ours": o, "theirs": r, "ratio": ratio, "target": target, "verdict": verdict, "unit": unit})

    for build in ("same", "release"):
        row("pp512", "pp", f"llama-bench-{build}", "tokens/s")
        row("tg128", "tg", f"llama-bench-{build}", "tokens/s")
    for c in clients:
        plural = "s" if c > 1 else ""
        for ref in ("llama-server-same", "llama-server-release", "sov-serve-unsealed"):
            row(f"HTTP, {c} client{plural}", f"http-{c}", ref, "completion tokens/s")
    for c in clients:
        plural = "s" if c > 1 else ""
        for ref in ("llama-server-same", "llama-server-release"):
            row(f"specialist, {c} client{plural}: TTFT p50", f"spec-ttft50-{c}", ref, "s", True)
            row(f"specialist, {c} client{plural}: TTFT p99", f"spec-ttft99-{c}", ref, "s", True)
            row(f"specialist, {c} client{plural}: throughput", f"spec-tps-{c}", ref, "completion tokens/s")

    def fmt(x, unit):
        if x is None:
            return "n/a"
        return f"{x:.2f} s" if unit == "s" else f"{x:.1f}"
    lines = [
        "| Test | Sovereign | Reference | Reference | Ratio | Target |",
        "|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        if r["ours"] is None and r["theirs"] is None:
            continue
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        target = "-" if r["target"] is None else f">= {r['target']:.2f}x {r['verdict']}"
        lines.append(f"| {r['test']} | {fmt(r['ours'], r['unit'])} | {r['ref']} | {fmt(r['theirs'], r['unit'])} | {ratio} | {target} |")
    table = "\n".join(lines)

    mach = machine()
    detail = []
    for (label, c), d in sorted(http.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        detail.append(
            f"- {label}, {c} client(s): {d['requests']} requests, {d['errors']} errors, "
            f"{d['mean_completion_tokens']:.0f} completion tokens each, {d['wall_s']:.1f} s wall, "
            f"{d['tokens_per_s']:.1f} tokens/s, mean latency {d['mean_latency_s'] or 0:.2f} s"
        )
    for (label, c), d in sorted(spec.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        detail.append(
            f"- specialist, {label}, {c} client(s): {d['requests']} requests of {d['prompt_tokens']} prompt tokens, "
            f"{d['errors']} errors, {d['mean_completion_tokens']:.0f} completion tokens each, {d['wall_s']:.1f} s wall, "
            f"TTFT p50 {d['ttft_p50_s']:.2f} s / p99 {d['ttft_p99_s']:.2f} s, {d['tokens_per_s']:.1f} tokens/s"
        )
    if engine:
        detail.append(f"- sov-bench-engine samples: pp {[round(x, 1) for x in engine['pp']['samples_ts']]}, tg {[round(x, 1) for x in engine['tg']['samples_ts']]}")
    for build, rows_ in bench_rows.items():
        for rowd in rows_:
            detail.append(f"- llama-bench ({build}, {rowd.get('build_commit')}): {'pp' if rowd.get('n_gen', 0) == 0 else 'tg'} {rowd['avg_ts']:.1f} +- {rowd['stddev_ts']:.1f} tokens/s")
    for f in failures:
        detail.append(f"- FAILED: {f['tool']}: {f['failure']}")

    header = (
        f"Model {os.path.basename(args.model)}, {args.threads} threads, {args.reps} repetitions of pp/tg, "
        f"{args.requests} requests per client (max_tokens 128; specialist-shaped: 64), {args.parallel} server slots.\n"
        f"Machine: {mach.get('model_name', '?')}, {mach.get('cpus')} logical CPUs, {mach.get('memory_gib', '?')} GiB, "
        f"flags {mach.get('flags', '?')}.\n"
        f"Builds: same = {builds.get('same', '?')}; release = {builds.get('release', '?')}.\n"
        f"Load average at the end (1/5/15 min): {' '.join(f'{x:.2f}' for x in mach['loadavg_at_report'])}; "
        f"at the start: {args.loadavg_start or '?'} (other processes on the machine skew every number)."
    )
    print()
    print(header)
    print()
    print(table)
    print()
    print("\n".join(detail))

    result = {
        "machine": mach,
        "model": args.model,
        "threads": args.threads,
        "reps": args.reps,
        "requests_per_client": args.requests,
        "server_slots": args.parallel,
        "builds": builds,
        "failures": failures,
        "loadavg_start": args.loadavg_start,
        "rows": rows,
        "raw": {
            "llama_bench": bench_rows,
            "sov_bench_engine": engine,
            "http": [d for _, d in sorted(http.items())],
            "specialist": [d for _, d in sorted(spec.items())],
        },
        "markdown": table,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"\nraw results: {args.out}")


if __name__ == "__main__":
    main()
