"""Asks Sovereign's specialists through the official openai client, as a user's program would.

argv: base URL. Env: SOV_TEST_TOKEN (analyst at clearance 0), SOV_TEST_CLEARED (clearance 5).
Prints one JSON object with what each call returned, for the Rust test to check.
"""
import json
import os
import sys

import openai

base = sys.argv[1]
plain = openai.OpenAI(base_url=base, api_key=os.environ["SOV_TEST_TOKEN"], max_retries=0)
cleared = openai.OpenAI(base_url=base, api_key=os.environ["SOV_TEST_CLEARED"], max_retries=0)


def ask(client, model, question, stream=False):
    try:
        if stream:
            chunks = list(client.chat.completions.create(
                model=model, temperature=0, max_tokens=48, stream=True,
                messages=[{"role": "user", "content": question}]))
            first = chunks[0].model_dump()
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return {"model": chunks[0].model, "text": text, "citations": first.get("citations"),
                    "route": first.get("sov_route")}
        r = client.chat.completions.create(
            model=model, temperature=0, max_tokens=48,
            messages=[{"role": "user", "content": question}])
        d = r.model_dump()
        return {"model": r.model, "text": r.choices[0].message.content,
                "citations": d.get("citations"), "route": d.get("sov_route")}
    except openai.APIStatusError as e:
        return {"status": e.status_code, "error": e.response.text}


out = {
    "models": sorted(m.id for m in plain.models.list()),
    "clerk": ask(plain, "hollowmere-clerk",
                 "How many days of annual leave does a full-time member of staff at Hollowmere General Hospital get each year?"),
    "clerk_stream": ask(plain, "hollowmere-clerk",
                        "How many days of annual leave does a full-time member of staff at Hollowmere General Hospital get each year?",
                        stream=True),
    "banker": ask(plain, "veloria-clerk",
                  "What is the cut-off time for interbank payments in the VELPAY system at the Bank of Veloria?"),
    "auto": ask(plain, "auto",
                "What is the cut-off time for interbank payments in the VELPAY system of the Bank of Veloria?"),
    "unrelated_auto": ask(plain, "auto", "Write a short poem about autumn leaves falling in the park."),
    "secret_plain": ask(plain, "hollowmere-clerk",
                        "What code word does the Hollowmere General Hospital switchboard broadcast to activate a Level 4 major incident?"),
    "secret_plain_auto": ask(plain, "auto",
                             "What code word does the Hollowmere General Hospital switchboard broadcast to activate a Level 4 major incident?"),
    "secret_cleared": ask(cleared, "hollowmere-clerk",
                          "What code word does the Hollowmere General Hospital switchboard broadcast to activate a Level 4 major incident?"),
}
print(json.dumps(out))
