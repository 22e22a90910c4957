"""Acceptance of /v1/messages with the official `anthropic` Python SDK.

Run by proxy/tests/anthropic_sdk.rs against the real proxy binary, whose model routes to a
stand-in upstream of either kind (UPSTREAM_KIND: `anthropic`, relayed as it is, or `openai`,
translated). Environment: PROXY_URL (the proxy's base URL), CLIENT_KEY, MODEL, UPSTREAM_KIND.
Exits non-zero on the first failed check; prints one line per check that passed.
"""

import json
import os
import sys

import anthropic

BASE = os.environ["PROXY_URL"]
KEY = os.environ["CLIENT_KEY"]
MODEL = os.environ["MODEL"]
KIND = os.environ["UPSTREAM_KIND"]

client = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)
# The SDK sends x-api-key; Authorization: Bearer works too (ANTHROPIC_AUTH_TOKEN).
bearer = anthropic.Anthropic(base_url=BASE, auth_token=KEY, api_key=None, max_retries=0, timeout=20)

PLAIN = {"anthropic": "Hello from Claude!", "openai": "Hello!"}[KIND]
STREAMED = "tok0 tok1 tok2 "
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {name}")


def ask(c, **kw):
    return c.messages.create(model=MODEL, max_tokens=64, **kw)


# Plain.
m = ask(client, messages=[{"role": "user", "content": "Hi"}], system="Be brief.")
check("plain text", [b.type for b in m.content] == ["text"] and m.content[0].text == PLAIN, m.model_dump_json())
check("plain stop reason", m.stop_reason == "end_turn", m.stop_reason)
check("plain usage", m.usage.input_tokens > 0 and m.usage.output_tokens > 0, m.usage)
m = ask(bearer, messages=[{"role": "user", "content": "Hi"}])
check("bearer key", m.content[0].text == PLAIN)

# Streamed: text events in order, the final message accumulated by the SDK.
with client.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
check("streamed text", text == STREAMED, repr(text))
check("streamed final", final.content[0].text == STREAMED and final.stop_reason == "end_turn", final.model_dump_json())
check("streamed usage", final.usage.input_tokens > 0 and final.usage.output_tokens > 0, final.usage)

# Raw events: Anthropic's order.
names = [e.type for e in ask(client, messages=[{"role": "user", "content": "Hi"}], stream=True)]
check("event order", names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
      and "content_block_start" in names and "content_block_stop" in names, names)

# Tools: a call, then its result.
messages = [{"role": "user", "content": "Weather in Paris?"}]
m = ask(client, messages=messages, tools=[WEATHER], tool_choice={"type": "auto"})
uses = [b for b in m.content if b.type == "tool_use"]
check("tool call", m.stop_reason == "tool_use" and len(uses) == 1 and uses[0].name == "get_weather"
      and uses[0].input == {"city": "Paris"}, m.model_dump_json())
messages += [
    {"role": "assistant", "content": m.content},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "18C"}]},
]
m = ask(client, messages=messages, tools=[WEATHER])
check("tool result", m.content[0].text == "The tool said: 18C" and m.stop_reason == "end_turn", m.model_dump_json())

# Tools, streamed: the SDK rebuilds the arguments from input_json_delta pieces.
with client.messages.stream(model=MODEL, max_tokens=64, tools=[WEATHER],
                            messages=[{"role": "user", "content": "Weather in Paris?"}]) as s:
    final = s.get_final_message()
uses = [b for b in final.content if b.type == "tool_use"]
check("streamed tool call", final.stop_reason == "tool_use" and len(uses) == 1
      and uses[0].input == {"city": "Paris"}, final.model_dump_json())

# count_tokens: the upstream's count (anthropic) or the proxy's estimate (openai).
n = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hello there, how are you?"}])
check("count tokens", n.input_tokens == (42 if KIND == "anthropic" else 7), n)

# Errors in Anthropic's shape, raised as the SDK's own exceptions.
try:
    anthropic.Anthropic(base_url=BASE, api_key="sk-wrong", max_retries=0).messages.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    check("wrong key refused", False, "no error")
except anthropic.AuthenticationError as e:
    check("wrong key refused", e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e.body)
try:
    client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    check("unknown model", False, "no error")
except anthropic.NotFoundError as e:
    check("unknown model", e.body["type"] == "error" and e.body["error"]["type"] == "not_found_error", e.body)
if KIND == "openai":
    try:
        ask(client, messages=[{"role": "user", "content": "Hi"}], extra_body={"top_k": 5})
        check("untranslatable refused", False, "no error")
    except anthropic.BadRequestError as e:
        check("untranslatable refused", "top_k" in e.body["error"]["message"], e.body)

print(json.dumps({"passed": True, "kind": KIND}))
