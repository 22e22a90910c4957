// The official OpenAI Node SDK against the proxy: a plain and a streamed chat completion,
// then a bad key and an unknown model. Reads PROXY_URL and CLIENT_KEY; prints one JSON line.
import { createRequire } from "node:module";

const require = createRequire(process.env.NODE_PATH + "/");
const { default: OpenAI, APIError } = require("openai");

const baseURL = process.env.PROXY_URL + "/v1";
const client = new OpenAI({ baseURL, apiKey: process.env.CLIENT_KEY, maxRetries: 0 });
const messages = [{ role: "user", content: "hi" }];
const out = {};

const plain = await client.chat.completions.create({ model: "m", messages });
out.plain_text = plain.choices[0].message.content;
out.plain_finish = plain.choices[0].finish_reason;
out.plain_usage = plain.usage.total_tokens;

const text = [];
const finishes = [];
let usage = null;
const stream = await client.chat.completions.create({
  model: "m",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  for (const choice of chunk.choices) {
    if (choice.delta.content) text.push(choice.delta.content);
    if (choice.finish_reason) finishes.push(choice.finish_reason);
  }
  if (chunk.usage) usage = chunk.usage.total_tokens;
}
out.stream_text = text.join("");
out.stream_finishes = finishes;
out.stream_usage = usage;

async function errorOf(call) {
  try {
    await call();
  } catch (e) {
    if (e instanceof APIError) return { class: e.constructor.name, status: e.status, code: e.code };
    throw e;
  }
  return null;
}
const bad = new OpenAI({ baseURL, apiKey: "sk-not-a-key", maxRetries: 0 });
out.bad_key = await errorOf(() => bad.chat.completions.create({ model: "m", messages }));
out.unknown_model = await errorOf(() =>
  client.chat.completions.create({ model: "no-such-model", messages }),
);
console.log(JSON.stringify(out));
