// One streamed chat completion through the proxy with the official openai Node SDK, for the
// mid-stream failover acceptance test (proxy/tests/failover_sdk.rs, which judges the result).
//
// Reads PROXY_URL, CLIENT_KEY, MODEL, EXTRA (JSON merged into the request) and NODE_PATH (the
// node_modules holding openai). Prints one JSON line: what the client saw (text, the ids,
// created and models of every chunk, finish reasons, usage, the SDK's accumulated final
// completion), or the error the SDK raised. Exits 0 either way.
import { createRequire } from 'node:module';

// An ES module ignores NODE_PATH: require from there.
const require = createRequire(process.env.NODE_PATH + '/');
const { default: OpenAI, APIError } = require('openai');
const { VERSION: version } = require('openai/version');

const baseURL = process.env.PROXY_URL + '/v1';
const model = process.env.MODEL;
const extra = JSON.parse(process.env.EXTRA || '{}');
const client = new OpenAI({ baseURL, apiKey: process.env.CLIENT_KEY, maxRetries: 0, timeout: 20_000 });
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
