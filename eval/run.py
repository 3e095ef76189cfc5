#!/usr/bin/env python3
"""Asks the eval's questions of a running `sov serve` and scores the answers.

    SOV_EVAL_API_KEY=sov_... SOV_EVAL_CLEARED_API_KEY=sov_... \\
    ~/.cache/sovereign/venv/bin/python eval/run.py --base-url http://127.0.0.1:8787/v1 \\
        --target specialist=@specialist --target bare=smollm2-135m-instruct --target auto=auto

A target is NAME=MODEL. MODEL `@specialist` sends each question to its institution's specialist
(`--specialist INSTITUTION=NAME`, default the `specialist` of institutions.json). Every question is
one user message, at temperature 0. A question with clearance above 0 is asked with the cleared
caller's key (it is skipped without one) and asked again with the normal key as a leak check: no
answer or citation given to the normal key may contain a code word, of any institution.

Scores per target: accuracy (an accepted string in the answer); the same in the model's own
words (the answer without the evidence sentence that sov quotes after a grounded answer); hit@3
(the question's document among the documents of the first 3 `citations`, for targets whose
answers carry citations); retrieval hit@k (the document anywhere in an optional `sov_retrieval`
list); p50 latency. Writes
eval/results/<date>-<label>.json and prints Markdown tables. Exit status: 0, 2 if the server
cannot be used, 3 if a code word leaked, 4 if every request to a target failed.
"""

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import evaldata

try:
    import openai
except ImportError:
    sys.exit("error: the openai package is missing: run with ~/.cache/sovereign/venv/bin/python")

SPECIALIST = "@specialist"


def die(message, status=2):
    """Ends the run with `message` on stderr: 2 for a server or usage problem."""
    print(message, file=sys.stderr)
    sys.exit(status)


def parse_pairs(values, flag):
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            die(f"error: {flag} takes NAME=VALUE, got {value!r}")
        if name in pairs:
            die(f"error: {flag} {name} is given twice")
        pairs[name] = rest
    return pairs


def client(args, key):
    return openai.OpenAI(base_url=args.base_url, api_key=key, max_retries=0, timeout=args.timeout)


def preflight(args, keys):
    """The served model ids; exits 2 with the reason if the server or a key cannot be used."""
    served = set()
    for who, key in keys.items():
        try:
            served |= {m.id for m in client(args, key).models.list()}
        except openai.APIConnectionError as e:
            die(f"error: cannot reach the server at {args.base_url} ({e.__cause__ or e}); is `sov serve` running?")
        except openai.AuthenticationError:
            die(f"error: the server at {args.base_url} refused the {who} API key (401)")
        except openai.APIStatusError as e:
            die(f"error: GET {args.base_url}/models with the {who} key answered {e.status_code}: {e.message}")
    return served


def ask(cl, model, question, args):
    """One chat completion: (body as JSON or None, answer text, latency in seconds, error or None)."""
    start = time.perf_counter()
    try:
        raw = cl.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=args.max_tokens,
        )
        latency = time.perf_counter() - start
        body = json.loads(raw.text)
    except openai.APIConnectionError as e:
        raise ConnectionError(f"lost the server at {args.base_url}: {e.__cause__ or e}") from e
    except openai.APIStatusError as e:
        return None, "", time.perf_counter() - start, f"HTTP {e.status_code}: {e.message}"
    except (json.JSONDecodeError, ValueError) as e:
        return None, "", time.perf_counter() - start, f"the answer is not JSON: {e}"
    choices = body.get("choices") or [{}]
    text = ((choices[0] or {}).get("message") or {}).get("content") or ""
    return body, text, latency, None


def doc_hit(entries, q, k=None):
    """Whether one of the first k entries (all if k is None) names the question's document."""
    if not isinstance(entries, list):
        return False
    for e in entries[:k]:
        if not isinstance(e, dict):
            continue
        corpus = e.get("corpus")
        if (corpus is None or corpus == q["corpus"]) and evaldata.same_document(e.get("document"), q["document"]):
            return True
    return False


# A grounded answer ends with its best evidence quoted: `\n\nSources: [n] "..." [m] "..."`
# (sov-kernel's ground::tail). What precedes it is the model's own words.
QUOTED_SOURCE = re.compile(r"\n\nSources: \[\d+\] \"")


def own_words(text):
    """The answer without the quoted evidence sov appends to a grounded answer."""
    return QUOTED_SOURCE.split(text, maxsplit=1)[0]


def record(q, model, who, body, text, latency, error, code_words):
    citations = (body or {}).get("citations")
    retrieval = (body or {}).get("sov_retrieval")
    seen = json.dumps([text, citations, retrieval], ensure_ascii=False)
    return {
        "id": q["id"],
        "institution": q["institution"],
        "kind": q["kind"],
        "clearance": q["clearance"],
        "model": model,
        "served_by": (body or {}).get("model"),
        "key": who,
        "answer": text,
        "matched": evaldata.matches(text, q["accept"]) if body else None,
        "correct": bool(body) and evaldata.matches(text, q["accept"]) is not None,
        "correct_own_words": bool(body) and evaldata.matches(own_words(text), q["accept"]) is not None,
        "citations": citations,
        "hit_at_3": doc_hit(citations, q, 3) if isinstance(citations, list) else None,
        "sov_retrieval": retrieval,
        "retrieval_hit": doc_hit(retrieval, q) if isinstance(retrieval, list) else None,
        "leaked": evaldata.leaks(seen, code_words),
        "latency_s": round(latency, 3),
        "usage": (body or {}).get("usage"),
        "error": error,
    }


def rate(rows, field):
    """(hits, out of) over the rows where `field` is not None."""
    known = [r[field] for r in rows if r[field] is not None]
    return sum(1 for v in known if v), len(known)


def pct(hits, total):
    return f"{100 * hits / total:.1f}% ({hits}/{total})" if total else "n/a"


def summarise(rows, leak_rows, restricted):
    hits, total = rate(rows, "correct")
    own, _ = rate(rows, "correct_own_words")
    h3 = rate(rows, "hit_at_3")
    hk = rate(rows, "retrieval_hit")
    lat = [r["latency_s"] for r in rows if r["error"] is None]
    # Every answer the normal key got, to public and confidential questions alike, is checked.
    uncleared = [r for r in rows + leak_rows if r["key"] == "normal"]
    cited_restricted = sorted({
        r["id"]
        for r in uncleared
        for c in (r["citations"] if isinstance(r["citations"], list) else [])
        if isinstance(c, dict)
        and any(inst == r["institution"] and evaldata.same_document(c.get("document"), d) for inst, d in restricted)
    })
    by_kind = {}
    for r in rows:
        k = by_kind.setdefault(r["kind"], [0, 0])
        k[0] += r["correct"]
        k[1] += 1
    return {
        "questions": total,
        "correct": hits,
        "accuracy": hits / total if total else None,
        "correct_own_words": own,
        "hit_at_3": h3[0] / h3[1] if h3[1] else None,
        "hit_at_3_counts": list(h3),
        "retrieval_hit_at_k": hk[0] / hk[1] if hk[1] else None,
        "retrieval_hit_counts": list(hk),
        "p50_latency_s": round(statistics.median(lat), 3) if lat else None,
        "errors": sum(1 for r in rows + leak_rows if r["error"]),
        "by_kind": {k: {"correct": c, "questions": n} for k, (c, n) in sorted(by_kind.items())},
        "leak_check": {
            "asked": len(uncleared),
            "code_word_leaks": sorted({r["id"] for r in uncleared if r["leaked"]}),
            "restricted_documents_cited": cited_restricted,
            "uncleared_correct": [r["id"] for r in leak_rows if r["correct"]],
        },
    }


def table(summaries):
    lines = [
        "| target | model | accuracy | own words | hit@3 | retrieval hit@k | p50 latency | questions | errors"
        " | code-word leaks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (model, s) in summaries.items():
        h3, hk = s["hit_at_3_counts"], s["retrieval_hit_counts"]
        p50 = f"{s['p50_latency_s']:.2f} s" if s["p50_latency_s"] is not None else "n/a"
        leaks = s["leak_check"]
        lines.append(
            f"| {name} | {model} | {pct(s['correct'], s['questions'])} | {pct(s['correct_own_words'], s['questions'])} "
            f"| {pct(*h3)} | {pct(*hk)} | {p50} "
            f"| {s['questions']} | {s['errors']} | {len(leaks['code_word_leaks'])} of {leaks['asked']} |"
        )
    kinds = sorted({k for _, s in summaries.values() for k in s["by_kind"]})
    lines += ["", "| target | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, (_, s) in summaries.items():
        cells = [pct(s["by_kind"][k]["correct"], s["by_kind"][k]["questions"]) if k in s["by_kind"] else "n/a" for k in kinds]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description="Ask the eval's questions of `sov serve` and score the answers.")
    p.add_argument("--base-url", required=True, help="the API's base URL, e.g. http://127.0.0.1:8787/v1")
    # Tokens may come from the environment, so that they do not show in the process list.
    p.add_argument("--api-key", default=os.environ.get("SOV_EVAL_API_KEY"),
                   help="a normal (uncleared) caller's token (default: $SOV_EVAL_API_KEY)")
    p.add_argument("--cleared-api-key", default=os.environ.get("SOV_EVAL_CLEARED_API_KEY"),
                   help="a cleared caller's token, for questions with clearance > 0 (default: $SOV_EVAL_CLEARED_API_KEY)")
    p.add_argument("--target", action="append", default=[], metavar="NAME=MODEL", required=True,
                   help=f"a target (repeatable); MODEL {SPECIALIST} means each institution's specialist")
    p.add_argument("--specialist", action="append", default=[], metavar="INSTITUTION=NAME",
                   help="the specialist of an institution (default: institutions.json)")
    p.add_argument("--label", help="names the results file (default: the target names)")
    p.add_argument("--questions", help="the questions file (default: eval/questions.jsonl)")
    p.add_argument("--only", help="comma-separated question ids to ask")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--timeout", type=float, default=300, help="seconds one request may take")
    p.add_argument("--out", default=str(evaldata.EVAL / "results"), help="folder for the results file")
    args = p.parse_args()
    if not args.api_key:
        p.error("--api-key (or $SOV_EVAL_API_KEY) is required")

    institutions = evaldata.load_institutions()
    targets = parse_pairs(args.target, "--target")
    specialists = {k: v["specialist"] for k, v in institutions.items()}
    specialists.update(parse_pairs(args.specialist, "--specialist"))
    questions_path = Path(args.questions) if args.questions else evaldata.EVAL / "questions.jsonl"
    try:
        questions = evaldata.load_questions(questions_path)
    except (OSError, ValueError) as e:
        die(f"error: {e}")
    if args.only:
        wanted = set(args.only.split(","))
        questions = [q for q in questions if q["id"] in wanted]
    code_words = [w for inst in institutions.values() for w in inst["code_words"]]
    restricted = {
        (key, doc_id)
        for key, inst in institutions.items()
        for doc_id, (_, is_restricted) in evaldata.documents(inst).items()
        if is_restricted
    }

    keys = {"normal": args.api_key}
    if args.cleared_api_key:
        keys["cleared"] = args.cleared_api_key
    served = preflight(args, keys)
    for name, model in targets.items():
        models = specialists.values() if model == SPECIALIST else [model]
        missing = [m for m in models if m not in served]
        if missing:
            print(f"note: {', '.join(missing)} (target {name}) not in GET /models; asking anyway", file=sys.stderr)
    clients = {who: client(args, key) for who, key in keys.items()}

    results, summaries = {}, {}
    started = datetime.now(timezone.utc)
    try:
        for name, model_spec in targets.items():
            rows, leak_rows = [], []
            for i, q in enumerate(questions, 1):
                model = specialists.get(q["institution"]) if model_spec == SPECIALIST else model_spec
                if model is None:
                    die(f"error: no specialist for institution {q['institution']}: pass --specialist")
                plan = []
                if q["clearance"] == 0:
                    plan.append(("normal", rows))
                elif "cleared" in clients:
                    plan.append(("cleared", rows))
                if q["clearance"] > 0:
                    plan.append(("normal", leak_rows))
                for who, into in plan:
                    body, text, latency, error = ask(clients[who], model, q["question"], args)
                    into.append(record(q, model, who, body, text, latency, error, code_words))
                    r = into[-1]
                    mark = "error" if error else ("ok" if r["correct"] else "--")
                    print(f"[{name} {i}/{len(questions)}] {q['id']} ({who}) {mark} {latency:.1f}s", file=sys.stderr)
            results[name] = {"model": model_spec, "results": rows, "leak_check": leak_rows}
            summaries[name] = (model_spec, summarise(rows, leak_rows, restricted))
            results[name]["summary"] = summaries[name][1]
    except ConnectionError as e:
        die(f"error: {e}")

    label = args.label or "-".join(targets)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started.date().isoformat()}-{label}.json"
    report = {
        "started": started.isoformat(timespec="seconds"),
        "label": label,
        "base_url": args.base_url,
        "questions_file": questions_path.name,
        "questions_sha256": hashlib.sha256(questions_path.read_bytes()).hexdigest(),
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "specialists": specialists,
        "cleared_key": "cleared" in keys,
        "targets": results,
    }
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(summaries))
    print(f"\nresults: {path}")
    dead = []
    for name, res in results.items():
        failed = [r for r in res["results"] + res["leak_check"] if r["error"]]
        if failed:
            print(f"target {name}: {len(failed)} requests failed; the first: {failed[0]['error']}", file=sys.stderr)
        if res["results"] and len(failed) == len(res["results"] + res["leak_check"]):
            dead.append(name)
    leaked = {n: s["leak_check"]["code_word_leaks"] for n, (_, s) in summaries.items() if s["leak_check"]["code_word_leaks"]}
    if leaked:
        print(f"LEAK: a code word reached the uncleared caller: {leaked}", file=sys.stderr)
        return 3
    if dead:
        print(f"error: no request to {', '.join(dead)} succeeded", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
