"""Drives `sov serve` with the official openai Python client, unchanged.

Usage: SOV_TEST_TOKEN=sov_... python openai_client.py BASE_URL MODEL
Prints one JSON object with what it saw; the Rust test checks it.
"""
import json
import os
import sys

import openai

base_url, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=os.environ["SOV_TEST_TOKEN"], max_retries=0)

models = [m.id for m in client.models.list()]

chat = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Name the capital city of France."}],
    temperature=0,
    max_tokens=48,
)

stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Name the capital city of France."}],
    temperature=0,
    max_tokens=48,
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage = [], None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        usage = chunk.usage.model_dump()

text = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
emb = client.embeddings.create(model=model, input=["hello world", "goodbye"])

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    not_found = None
except openai.NotFoundError as e:
    not_found = {"status": e.status_code, "code": e.code}

try:
    openai.OpenAI(base_url=base_url, api_key="sov_" + "A" * 43, max_retries=0).models.list()
    unauthenticated = None
except openai.AuthenticationError as e:
    unauthenticated = {"status": e.status_code, "code": e.code}

print(json.dumps({
    "unauthenticated": unauthenticated,
    "models": models,
    "chat": chat.choices[0].message.content,
    "chat_usage": chat.usage.model_dump(),
    "finish_reason": chat.choices[0].finish_reason,
    "stream": "".join(pieces),
    "stream_usage": usage,
    "text": text.choices[0].text,
    "embedding_dims": [len(d.embedding) for d in emb.data],
    "not_found": not_found,
}))
