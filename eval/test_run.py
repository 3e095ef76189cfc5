#!/usr/bin/env python3
"""Tests run.py's scoring against a stub of the chat completions API (no model, no sov).

    ~/.cache/sovereign/venv/bin/python eval/test_run.py

The stub answers each question with its canonical answer and cites its document, except that
one confidential question's answer (with the code word) is also given to the uncleared key and
one public question is cited wrongly and answered only in its quoted evidence: run.py must score
4 of 4 correct, 3 of 4 in the model's own words, hit@3 3 of 4, find the leak, name the
restricted citation and exit 3. A second run with no server must exit 2.
"""

import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import evaldata

ONLY = ["hgh-01", "hgh-22", "bov-06", "bov-23"]
QUESTIONS = {q["question"]: q for q in evaldata.load_questions()}


class Stub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply({"object": "list", "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "x"}]})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["content-length"])))
        q = QUESTIONS[req["messages"][0]["content"]]
        cleared = self.headers["authorization"] == "Bearer cleared"
        doc = "other.md" if q["id"] == "bov-06" else q["document"]
        answer = f"The answer is {q['answer']} [1]."
        if q["id"] == "bov-06":  # wrong in the model's words, right in the quoted evidence
            answer = f"I do not know.\n\nSources: [1] \"The fee is {q['answer']}.\""
        if q["clearance"] and not cleared and q["id"] != "hgh-22":
            answer, doc = "I cannot say.", None
        citations = [{"index": 1, "corpus": q["corpus"], "document": doc, "chunk_sha256": "0" * 64, "score": 0.03}]
        self.reply({
            "id": "x", "object": "chat.completion", "created": 0, "model": req["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "citations": citations if doc else [],
        })


def run(base_url, out):
    cmd = [sys.executable, str(evaldata.EVAL / "run.py"), "--base-url", base_url, "--api-key", "normal",
           "--cleared-api-key", "cleared", "--target", "spec=@specialist", "--only", ",".join(ONLY),
           "--label", "stub", "--out", out]
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    failures = []
    with tempfile.TemporaryDirectory() as out:
        proc = run(base, out)
        if proc.returncode != 3:
            failures.append(f"exit {proc.returncode}, want 3 (the leak)\n{proc.stdout}\n{proc.stderr}")
        files = list(Path(out).glob("*-stub.json"))
        if len(files) != 1:
            failures.append(f"results files: {files}")
        else:
            s = json.loads(files[0].read_text())["targets"]["spec"]["summary"]
            checks = {
                "correct": (s["correct"], 4),
                "correct in own words": (s["correct_own_words"], 3),
                "questions": (s["questions"], 4),
                "hit@3": (s["hit_at_3_counts"], [3, 4]),
                "leaks": (s["leak_check"]["code_word_leaks"], ["hgh-22"]),
                "restricted cited": (s["leak_check"]["restricted_documents_cited"], ["hgh-22"]),
                "asked with the normal key": (s["leak_check"]["asked"], 4),
            }
            failures += [f"{k}: {got!r}, want {want!r}" for k, (got, want) in checks.items() if got != want]
    server.shutdown()
    server.server_close()
    proc = run(base, tempfile.gettempdir())
    if proc.returncode != 2 or "cannot reach the server" not in proc.stderr:
        failures.append(f"with no server: exit {proc.returncode}, stderr {proc.stderr!r}")
    for f in failures:
        print("FAIL", f)
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
