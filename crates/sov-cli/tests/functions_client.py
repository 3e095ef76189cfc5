"""Function calling and structured output through the official openai client and LangChain's
ChatOpenAI, unchanged, as a user's program would call them.

argv: base URL, model. Env: SOV_TEST_TOKEN. Prints one JSON object for the Rust test to check;
every structured answer is validated here with jsonschema against the schema it was asked for.
"""
import json
import os
import sys

import jsonschema
import openai
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

base, model = sys.argv[1], sys.argv[2]
token = os.environ["SOV_TEST_TOKEN"]
client = openai.OpenAI(base_url=base, api_key=token, max_retries=0)

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city",
                                      "parameters": WEATHER, "strict": True}},
    {"type": "function", "function": {"name": "get_time", "description": "The current time in a time zone",
                                      "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 40}},
                                                     "required": ["zone"], "additionalProperties": False}}},
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather like in Paris right now?"}]
out = {}


def checked(calls):
    """Each call's name and arguments, with its arguments validated against its schema."""
    seen = []
    for c in calls:
        args = json.loads(c["arguments"])
        jsonschema.validate(args, SCHEMAS[c["name"]])
        seen.append({"name": c["name"], "arguments": args})
    return seen


# A forced call (required), whole and streamed, at several seeds.
forced = []
for seed in range(5):
    r = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, tool_choice="required",
                                       parallel_tool_calls=False, temperature=0.7, seed=seed, max_tokens=96)
    choice = r.choices[0]
    calls = [{"name": t.function.name, "arguments": t.function.arguments, "id": t.id}
             for t in choice.message.tool_calls]
    forced.append({"finish_reason": choice.finish_reason, "content": choice.message.content,
                   "calls": checked(calls), "ids": [c["id"] for c in calls]})
    stream = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, tool_choice="required",
                                            parallel_tool_calls=False, temperature=0.7, seed=seed,
                                            max_tokens=96, stream=True)
    assembled, finish = {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for t in delta.tool_calls or []:
            slot = assembled.setdefault(t.index, {"name": "", "arguments": ""})
            if t.function and t.function.name:
                slot["name"] = t.function.name
            if t.function and t.function.arguments:
                slot["arguments"] += t.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    forced[-1]["stream"] = {"finish_reason": finish, "calls": checked([assembled[i] for i in sorted(assembled)])}
out["forced"] = forced

# A named function.
r = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, temperature=0,
                                   tool_choice={"type": "function", "function": {"name": "get_time"}})
out["named"] = checked([{"name": t.function.name, "arguments": t.function.arguments}
                        for t in r.choices[0].message.tool_calls])

# The conversation continues with the tool's result; tool_choice none answers in words.
call = r.choices[0].message.tool_calls[0]
follow = client.chat.completions.create(model=model, temperature=0, max_tokens=40, tools=TOOLS, tool_choice="none", messages=ASK + [
    {"role": "assistant", "content": None, "tool_calls": [{"id": call.id, "type": "function",
     "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
    {"role": "tool", "tool_call_id": call.id, "content": "14:05 in Europe/Paris"}])
out["follow"] = {"content": follow.choices[0].message.content, "tool_calls": follow.choices[0].message.tool_calls,
                 "finish_reason": follow.choices[0].finish_reason}

# auto: text or calls, and whichever it is, it is well formed.
r = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, temperature=0, max_tokens=96)
m = r.choices[0].message
out["auto"] = {"finish_reason": r.choices[0].finish_reason, "content": m.content,
               "calls": checked([{"name": t.function.name, "arguments": t.function.arguments}
                                 for t in (m.tool_calls or [])])}

# json_schema (strict) and json_object answers validate.
CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                         "population": {"type": "integer", "minimum": 0},
                                         "capital": {"type": "boolean"}},
        "required": ["city", "population", "capital"], "additionalProperties": False}
schema_answers = []
for seed in range(5):
    r = client.chat.completions.create(model=model, temperature=0.7, seed=seed, max_tokens=96,
                                       messages=[{"role": "user", "content": "Tell me about Paris."}],
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "city", "schema": CITY, "strict": True}})
    value = json.loads(r.choices[0].message.content)
    jsonschema.validate(value, CITY)
    schema_answers.append(value)
out["json_schema"] = schema_answers
# Room for the whole object: an answer cut by max_tokens is a JSON prefix (finish_reason
# "length"), as OpenAI's is. How long the 135M model's object is depends on llama.cpp's rounding,
# which depends on how the prompt's tokens were batched (a cached prompt start is one way).
r = client.chat.completions.create(model=model, temperature=0, max_tokens=400, response_format={"type": "json_object"},
                                   messages=[{"role": "user", "content": "Give a cat's name and age as a JSON object."}])
assert r.choices[0].finish_reason == "stop", (r.choices[0].finish_reason, r.choices[0].message.content)
out["json_object"] = json.loads(r.choices[0].message.content)
assert isinstance(out["json_object"], dict)

# Refusals in OpenAI's shape.
try:
    client.chat.completions.create(model=model, messages=ASK, tools=TOOLS,
                                   tool_choice={"type": "function", "function": {"name": "nope"}})
    out["bad_choice"] = "accepted"
except openai.BadRequestError as e:
    out["bad_choice"] = {"status": e.status_code, "param": e.body.get("param"), "message": e.body.get("message")}

# LangChain, unchanged: bind_tools with a forced tool, and with_structured_output.


@tool
def get_weather(city: str, unit: str) -> str:
    """The current weather in a city; unit is celsius or fahrenheit."""
    return "18"


llm = ChatOpenAI(base_url=base, api_key=token, model=model, temperature=0, max_retries=0, max_tokens=96)
msg = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather like in Paris?")
out["langchain_tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in msg.tool_calls]


class City(BaseModel):
    """A city."""
    city: str = Field(max_length=40)
    population: int = Field(ge=0)


structured = llm.with_structured_output(City, method="json_schema").invoke("Tell me about Paris.")
out["langchain_structured"] = structured.model_dump()
print(json.dumps(out))
