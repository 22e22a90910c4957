"""Acceptance of /v1/chat/completions translated to an Anthropic upstream, with the official
`openai` Python SDK.

Run by proxy/tests/anthropic_sdk.rs against the real proxy binary, whose model routes to the
Anthropic-format stand-in. Environment: PROXY_URL (the proxy's base URL), CLIENT_KEY, MODEL.
Exits non-zero on the first failed check; prints one line per check that passed.
"""

import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["PROXY_URL"], api_key=os.environ["CLIENT_KEY"], max_retries=0, timeout=20)
MODEL = os.environ["MODEL"]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {name}")


r = client.chat.completions.create(model=MODEL, messages=[
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
check("plain", r.choices[0].message.content == "Hello from Claude!" and r.choices[0].finish_reason == "stop", r)
check("plain usage", r.usage.prompt_tokens == 13 and r.usage.completion_tokens == 7, r.usage)

chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                             stream=True, stream_options={"include_usage": True}))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("streamed", text == "tok0 tok1 tok2 ", repr(text))
check("streamed finish", [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop")
check("streamed usage", chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 13
      and chunks[-1].usage.completion_tokens == 3, chunks[-1])
plain = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True))
check("no usage unless asked", all(c.usage is None for c in plain), plain[-1])

r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER])
calls = r.choices[0].message.tool_calls
check("tool call", r.choices[0].finish_reason == "tool_calls" and len(calls) == 1
      and json.loads(calls[0].function.arguments) == {"city": "Paris"}, r)
r = client.chat.completions.create(model=MODEL, tools=[WEATHER], messages=[
    {"role": "user", "content": "Weather?"}, r.choices[0].message,
    {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"}])
check("tool result", r.choices[0].message.content == "The tool said: 18C", r)

args = ""
for c in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Weather?"}],
                                        tools=[WEATHER], stream=True):
    for call in (c.choices[0].delta.tool_calls or []) if c.choices else []:
        args += call.function.arguments or ""
check("streamed tool call", json.loads(args) == {"city": "Paris"}, args)

try:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], logprobs=True)
    check("untranslatable refused", False, "no error")
except openai.BadRequestError as e:
    check("untranslatable refused", e.code == "untranslatable_request" and "logprobs" in e.message, e)
try:
    client.embeddings.create(model=MODEL, input="x")
    check("embeddings refused", False, "no error")
except openai.BadRequestError as e:
    check("embeddings refused", e.code == "untranslatable_request", e)

print(json.dumps({"passed": True}))
