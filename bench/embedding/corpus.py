#!/usr/bin/env python3
"""Helpers of bench/embedding/run.sh (standard library only).

  corpus.py generate DIR --docs N --sections M   Markdown documents of sections of about 150 words
  corpus.py texts CORPUS_DB OUT                  what sov embedded for each chunk, in order, to OUT
                                                 (one text per record, separated by SEPARATOR)
  corpus.py report RAW_DIR OUT_JSON              the table, from the runs' JSON lines

The text is deterministic (a seeded generator over a fixed vocabulary), so two runs embed the same
chunks. `texts` rebuilds each chunk's embedded text the way sov-knowledge does
(`Chunk::indexed_text`: the title, the heading path when there is one, the text, one per line), from
the corpus's own SQLite database, so llama-embedding receives exactly what `sov corpus add` embedded.
"""
import json
import random
import sqlite3
import statistics
import sys
from pathlib import Path

SEPARATOR = "<#sov-bench#>"

WORDS = """
account admission agreement annual appeal approval archive assessment audit authority balance
benefit board budget building bulletin calendar campus capital case catalogue certificate chamber
charter citizen claim clinic committee community complaint compliance contract council county court
credit custody database deadline decision department deposit director district division document
duty election emergency employee equipment estate evidence examination exemption facility faculty
finance fund grant guidance harbour health hearing holiday housing incident income inspection
insurance interest inventory invoice judgment laboratory ledger legislation licence loan maintenance
manager meeting member minister ministry notice office officer order patient payment pension permit
policy premises procedure programme property protocol provision purchase quarter record referral
region register regulation renewal report request reserve resident review revenue safety salary
schedule scheme secretary section service session settlement shift staff standard statement station
statute student subsidy supplier survey tariff tax tenant tender term training transfer treasury
tribunal trust unit vehicle visitor voucher ward warrant welfare
""".split()
GLUE = "the of and to in for on with by at from under within after before each every any".split()
VERBS = "approves records requires reviews issues files confirms grants refuses audits lists holds".split()


def sentence(rng):
    n = rng.randint(8, 18)
    words = []
    for i in range(n):
        if i % 3 == 1:
            words.append(rng.choice(GLUE))
        elif i % 5 == 2:
            words.append(rng.choice(VERBS))
        else:
            # Zipf-like: early words of the list are more common.
            words.append(WORDS[int(len(WORDS) * rng.random() ** 2)])
    if rng.random() < 0.3:
        words.append(str(rng.randint(2, 9999)))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def generate(out, docs, sections):
    rng = random.Random(20261203)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for d in range(docs):
        lines = [f"# Bench document {d + 1}: {rng.choice(WORDS)} {rng.choice(WORDS)}", ""]
        for s in range(sections):
            lines += [f"## Section {s + 1}: {rng.choice(WORDS)}", ""]
            words = 0
            para = []
            while words < 150:
                sent = sentence(rng)
                para.append(sent)
                words += len(sent.split())
            lines += [" ".join(para), ""]
        (out / f"doc-{d + 1:03}.md").write_text("\n".join(lines), encoding="utf-8")


def texts(db, out):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT d.title, c.heading, c.text FROM chunks c JOIN documents d ON d.key = c.doc"
        " ORDER BY d.key, c.idx").fetchall()
    parts = [f"{t}\n{h}\n{x}" if h else f"{t}\n{x}" for t, h, x in rows]
    for p in parts:
        if SEPARATOR in p:
            sys.exit(f"a chunk holds the separator {SEPARATOR!r}")
    Path(out).write_text(SEPARATOR.join(parts), encoding="utf-8")
    print(len(parts))


def report(raw, out):
    runs = [json.loads(line) for line in Path(raw, "runs.jsonl").read_text().splitlines() if line]
    meta = json.loads(Path(raw, "meta.json").read_text())
    by = {}
    for r in runs:
        by.setdefault(r["tool"], []).append(r)
    rows = {}
    for tool, rs in by.items():
        rates = [r["chunks"] / r["seconds"] for r in rs]
        rows[tool] = {"runs": len(rs), "chunks": rs[0]["chunks"],
                      "median_chunks_per_s": statistics.median(rates),
                      "best_chunks_per_s": max(rates),
                      "seconds": [r["seconds"] for r in rs]}
    result = {**meta, "tools": rows}
    ours = rows.get("sov corpus add")
    print(f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
          f"{meta['threads']} threads; {meta['chunks']} chunks of {meta['docs']} documents")
    print()
    print("| tool | runs | chunks/s (median) | best | ratio (median, sov / tool) |")
    print("|---|---|---|---|---|")
    for tool, row in rows.items():
        ratio = ""
        if ours and tool != "sov corpus add":
            ratio = f"{ours['median_chunks_per_s'] / row['median_chunks_per_s']:.2f}x"
            row["sov_ratio"] = ours["median_chunks_per_s"] / row["median_chunks_per_s"]
        print(f"| {tool} | {row['runs']} | {row['median_chunks_per_s']:.1f} | "
              f"{row['best_chunks_per_s']:.1f} | {ratio} |")
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    cmd = sys.argv[1:2]
    if cmd == ["generate"]:
        args = sys.argv[2:]
        generate(args[0], int(args[args.index("--docs") + 1]), int(args[args.index("--sections") + 1]))
    elif cmd == ["texts"]:
        texts(sys.argv[2], sys.argv[3])
    elif cmd == ["report"]:
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
