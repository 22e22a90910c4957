"""One streamed chat completion through the proxy with the official openai Python SDK, for the
mid-stream failover acceptance test (proxy/tests/failover_sdk.rs, which judges the result).

Reads PROXY_URL, CLIENT_KEY, MODEL and EXTRA (JSON merged into the request, e.g.
'{"logprobs": true}'). Prints one JSON line: what the client saw (text, the ids, created and
models of every chunk, finish reasons, usage, the SDK's accumulated final completion), or the
error the SDK raised. Exits 0 either way.
"""

import json
import os

import openai


def main() -> None:
    base_url = os.environ["PROXY_URL"] + "/v1"
    model = os.environ["MODEL"]
    extra = json.loads(os.environ.get("EXTRA") or "{}")
    client = openai.OpenAI(
        base_url=base_url, api_key=os.environ["CLIENT_KEY"], max_retries=0, timeout=20
    )
    seen = {"sdk": openai.__version__, "ids": [], "created": [], "models": [],
            "finish_reasons": [], "deltas": [], "usage": None, "roles": 0}
    try:
        with client.chat.completions.stream(
            model=model,
            messages=[{"role": "user", "content": "Count slowly."}],
            stream_options={"include_usage": True},
            extra_body=extra,
        ) as stream:
            for event in stream:
                if event.type != "chunk":
                    continue
                chunk = event.chunk
                seen["ids"].append(chunk.id)
                seen["created"].append(chunk.created)
                seen["models"].append(chunk.model)
                for choice in chunk.choices:
                    if choice.delta.role:
                        seen["roles"] += 1
                    if choice.delta.content:
                        seen["deltas"].append(choice.delta.content)
                    if choice.finish_reason:
                        seen["finish_reasons"].append(choice.finish_reason)
                if chunk.usage is not None:
                    seen["usage"] = chunk.usage.model_dump()
            final = stream.get_final_completion()
        seen["text"] = "".join(seen["deltas"])
        seen["final"] = {
            "id": final.id,
            "model": final.model,
            "content": final.choices[0].message.content,
            "finish_reason": final.choices[0].finish_reason,
            "usage": final.usage.model_dump() if final.usage else None,
        }
    except openai.APIError as e:
        seen["error"] = {"type": type(e).__name__, "message": e.message,
                         "body": e.body if isinstance(e.body, (dict, str)) else None}
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
