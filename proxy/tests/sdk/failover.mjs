// One streamed chat completion through the proxy with the official openai Node SDK.
//
// Usage: NODE_PATH=<folder holding openai> node failover.mjs BASE_URL API_KEY MODEL [EXTRA_JSON]
//
// EXTRA_JSON is merged into the request. Prints one JSON object: what the client saw (text,
// the ids/created/models of every chunk, finish reasons, usage, the SDK's accumulated final
// completion), or the error the SDK raised. Exits 0 either way; the Rust test
// (proxy/tests/failover_sdk.rs) judges the result.
import { createRequire } from 'node:module';

// An ES module ignores NODE_PATH; a CommonJS require made here honours it.
const require = createRequire(import.meta.url);
const { default: OpenAI, APIError } = require('openai');
const { VERSION: version } = require('openai/version');

const [baseURL, apiKey, model, extraJson] = process.argv.slice(2);
const extra = extraJson ? JSON.parse(extraJson) : {};
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });
const seen = {
  sdk: version, ids: [], created: [], models: [], finish_reasons: [], deltas: [], usage: null, roles: 0,
};
try {
  const stream = client.chat.completions.stream({
    model,
    messages: [{ role: 'user', content: 'Count slowly.' }],
    stream_options: { include_usage: true },
    ...extra,
  });
  for await (const chunk of stream) {
    seen.ids.push(chunk.id);
    seen.created.push(chunk.created);
    seen.models.push(chunk.model);
    for (const choice of chunk.choices) {
      if (choice.delta?.role) seen.roles += 1;
      if (choice.delta?.content) seen.deltas.push(choice.delta.content);
      if (choice.finish_reason) seen.finish_reasons.push(choice.finish_reason);
    }
    if (chunk.usage) seen.usage = chunk.usage;
  }
  const final = await stream.finalChatCompletion();
  seen.text = seen.deltas.join('');
  seen.final = {
    id: final.id,
    model: final.model,
    content: final.choices[0].message.content,
    finish_reason: final.choices[0].finish_reason,
    usage: final.usage ?? null,
  };
} catch (e) {
  if (!(e instanceof Error)) throw e;
  seen.error = { type: e.constructor.name, message: e.message, body: e instanceof APIError ? e.error ?? null : null };
}
console.log(JSON.stringify(seen));
