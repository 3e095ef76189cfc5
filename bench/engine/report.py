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

# (our measurement, reference, target ratio at which we pass; None: informative only)
TARGETS = {
    ("pp", "llama-bench"): 0.95,
    ("tg", "llama-bench"): 0.95,
    ("http-8", "llama-server"): 1.0,
    ("http-8", "llama-cpp-python"): 1.2,
    # The seal (Landlock + seccomp on every syscall) must cost under 3% of throughput.
    ("http-1", "sov-serve-unsealed"): 0.97,
    ("http-8", "sov-serve-unsealed"): 0.97,
}


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
    ap.add_argument("--llama-cpp-python", required=True)
    ap.add_argument("--loadavg-start", default="")
    args = ap.parse_args()
    raw = Path(args.raw)

    ours, refs = {}, {}
    llama_bench = load(raw / "llama-bench.json")
    build = None
    if llama_bench:
        for row in llama_bench:
            kind = "pp" if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0 else "tg"
            refs[(kind, "llama-bench")] = row["avg_ts"]
            build = f'{row.get("build_commit")} ({row.get("build_number")})'
    engine = load(raw / "sov-bench-engine.json")
    if engine:
        ours["pp"] = engine["pp"]["avg_ts"]
        ours["tg"] = engine["tg"]["avg_ts"]

    http = {}
    for f in sorted(raw.glob("http-*.json")):
        d = load(f)
        if d:
            http[(d["label"], d["clients"])] = d
    clients = sorted({c for _, c in http})
    for (label, c), d in http.items():
        if label == "sov-serve":
            ours[f"http-{c}"] = d["tokens_per_s"]
        else:
            refs[(f"http-{c}", label)] = d["tokens_per_s"]

    rows = []
    def row(name, key, ref, unit):
        o, r = ours.get(key), refs.get((key, ref))
        ratio = o / r if o and r else None
        target = TARGETS.get((key, ref))
        verdict = "" if target is None or ratio is None else ("meets" if ratio >= target else "MISSES")
        rows.append({"test": name, "ref": ref, "ours": o, "theirs": r, "ratio": ratio, "target": target, "verdict": verdict, "unit": unit})

    row("pp512", "pp", "llama-bench", "tokens/s")
    row("tg128", "tg", "llama-bench", "tokens/s")
    for c in clients:
        for ref in ("llama-server", "llama-cpp-python", "sov-serve-unsealed"):
            row(f"HTTP, {c} client{'s' if c > 1 else ''}", f"http-{c}", ref, "completion tokens/s")

    fmt = lambda x: "n/a" if x is None else f"{x:.1f}"
    lines = [
        "| Test | Sovereign | Reference | Reference tokens/s | Ratio | Target |",
        "|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        target = "-" if r["target"] is None else f">= {r['target']:.2f}x {r['verdict']}"
        lines.append(f"| {r['test']} | {fmt(r['ours'])} | {r['ref']} | {fmt(r['theirs'])} | {ratio} | {target} |")
    table = "\n".join(lines)

    mach = machine()
    detail = []
    for (label, c), d in sorted(http.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        detail.append(
            f"- {label}, {c} client(s): {d['requests']} requests, {d['errors']} errors, "
            f"{d['mean_completion_tokens']:.0f} completion tokens each, {d['wall_s']:.1f} s wall, "
            f"{d['tokens_per_s']:.1f} tokens/s, mean latency {d['mean_latency_s'] or 0:.2f} s"
        )
    if engine:
        detail.append(f"- sov-bench-engine samples: pp {[round(x, 1) for x in engine['pp']['samples_ts']]}, tg {[round(x, 1) for x in engine['tg']['samples_ts']]}")
    if llama_bench:
        for rowd in llama_bench:
            detail.append(f"- llama-bench {'pp' if rowd.get('n_gen', 0) == 0 else 'tg'}: {rowd['avg_ts']:.1f} +- {rowd['stddev_ts']:.1f} tokens/s")

    header = (
        f"Model {os.path.basename(args.model)}, {args.threads} threads, {args.reps} repetitions of pp/tg, "
        f"{args.requests} requests per client of max_tokens 128, {args.parallel} server slots.\n"
        f"Machine: {mach.get('model_name', '?')}, {mach.get('cpus')} logical CPUs, {mach.get('memory_gib', '?')} GiB; "
        f"llama.cpp tools {build or '?'} from llama-cpp-python {args.llama_cpp_python}.\n"
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
        "llama_cpp_python": args.llama_cpp_python,
        "llama_cpp_build": build,
        "loadavg_start": args.loadavg_start,
        "rows": rows,
        "raw": {
            "llama_bench": llama_bench,
            "sov_bench_engine": engine,
            "http": [d for _, d in sorted(http.items())],
        },
        "markdown": table,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"\nraw results: {args.out}")


if __name__ == "__main__":
    main()
