"""Asks a specialist with the calculator the eval's 40 arithmetic questions through the official
openai client, and calls the tool endpoints directly, as a user's program would.

argv: base URL, the questions file. Env: SOV_TEST_TOKEN (an analyst), SOV_TEST_SERVICE (a
service, which may not use tools). Prints one JSON object for the Rust test to check.
"""
import json
import os
import sys
import urllib.error
import urllib.request

import openai

base, questions = sys.argv[1], sys.argv[2]
token = os.environ["SOV_TEST_TOKEN"]
client = openai.OpenAI(base_url=base, api_key=token, max_retries=0)


def ask(question, stream=False, model="calc"):
    if stream:
        chunks = list(client.chat.completions.create(
            model=model, temperature=0, max_tokens=48, stream=True,
            messages=[{"role": "user", "content": question}]))
        first = chunks[0].model_dump()
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return {"text": text, "tool_calls": first.get("sov_tool_calls")}
    raw = client.chat.completions.with_raw_response.create(
        model=model, temperature=0, max_tokens=48,
        messages=[{"role": "user", "content": question}])
    r = raw.parse()
    return {"text": r.choices[0].message.content, "model": r.model,
            "tool_calls": r.model_dump().get("sov_tool_calls"),
            "salt": raw.headers.get("sov-audit-salt"), "entry": raw.headers.get("sov-audit-index")}


def direct(method, path, body=None, key=token):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return {"status": r.status, "body": json.load(r), "salt": r.headers.get("sov-audit-salt")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": json.loads(e.read() or b"null")}


asked = []
with open(questions) as f:
    for line in f:
        q = json.loads(line)
        asked.append({**q, **ask(q["question"])})

out = {
    "asked": asked,
    "stream": ask("What is 3 to the power of 50?", stream=True),
    "clerk": [ask(q, model="clerk") for q in [
        "Convert 12.5 miles to kilometres.", "What weekday is 2026-12-25?",
        "How many days are there between 2026-01-01 and 2026-03-01?", "What is the capital of France?"]],
    "list": direct("GET", "/tools"),
    "units": direct("POST", "/tools/units", {"value": "12.5", "from": "mi", "to": "km"}),
    "dates": direct("POST", "/tools/dates", {"op": "add_business_days", "date": "2026-12-04", "days": 1}),
    "ledger": direct("POST", "/tools/ledger", {"query": "SELECT sum(balance) FROM accounts"}),
    "ledger_write": direct("POST", "/tools/ledger", {"query": "DELETE FROM accounts"}),
    "divide_by_zero": direct("POST", "/tools/calculator", {"expression": "1/0"}),
    "bad_arguments": direct("POST", "/tools/calculator", {"expr": "1+1"}),
    "unknown": direct("POST", "/tools/abacus", {"x": 1}),
    "service": direct("POST", "/tools/calculator", {"expression": "1+1"},
                      key=os.environ["SOV_TEST_SERVICE"]),
}
print(json.dumps(out))
