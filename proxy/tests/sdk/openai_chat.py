"""The official OpenAI Python SDK against the proxy: a plain and a streamed chat completion,
then the errors a client must be able to tell apart (bad key, unknown model, rate limit).
Reads PROXY_URL and CLIENT_KEY; prints one JSON line with what the SDK saw."""
import json
import os

import openai

base = os.environ["PROXY_URL"] + "/v1"
client = openai.OpenAI(base_url=base, api_key=os.environ["CLIENT_KEY"], max_retries=0)
messages = [{"role": "user", "content": "hi"}]
out = {}

plain = client.chat.completions.create(model="m", messages=messages)
out["plain_text"] = plain.choices[0].message.content
out["plain_finish"] = plain.choices[0].finish_reason
out["plain_usage"] = plain.usage.total_tokens

text, finishes, usage = [], [], None
with client.chat.completions.create(
    model="m", messages=messages, stream=True, stream_options={"include_usage": True}
) as stream:
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
        if chunk.usage:
            usage = chunk.usage.total_tokens
out["stream_text"] = "".join(text)
out["stream_finishes"] = finishes
out["stream_usage"] = usage


def error_of(call):
    try:
        call()
    except openai.APIStatusError as e:
        return {"class": type(e).__name__, "status": e.status_code, "code": e.code}
    return None


bad = openai.OpenAI(base_url=base, api_key="sk-not-a-key", max_retries=0)
out["bad_key"] = error_of(lambda: bad.chat.completions.create(model="m", messages=messages))
out["unknown_model"] = error_of(
    lambda: client.chat.completions.create(model="no-such-model", messages=messages)
)
print(json.dumps(out))
