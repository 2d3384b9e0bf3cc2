// End-to-end tests of the reasoning text on `axllama serve`'s OpenAI-compatible API with the
// official `openai` npm client, on a model whose emulator reasons (axllama-emu --emu-think-text,
// fast profile; it echoes the last user message after its think block): message.reasoning and
// delta.reasoning (Ollama's field name; the SDK passes unknown fields through), reasoning_effort
// "none" turning it off. Own server and models dir (openai_client.test.mjs uses the built-in model,
// which exists only while no manifest does).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { emuManifest, startServe } from './serve.mjs';

const MODEL = 'reason';
const REASONING = 'The user wrote a word.\n\nI will repeat it, "exactly".';
let client;

let srv;

before(async () => {
  srv = await startServe({
    'reason.json': emuManifest(MODEL, { thinking: true, think_default: true }, ['--emu-think-text', REASONING]),
  });
  client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'any-key', maxRetries: 0, timeout: 60000 });
});

after(() => srv?.stop());

const user = (content) => [{ role: 'user', content }];

test('chat answers the reasoning in message.reasoning, apart from the content', async () => {
  const res = await client.chat.completions.create({ model: MODEL, messages: user('Hi') }); // default: on
  assert.equal(res.choices[0].message.reasoning, REASONING);
  assert.equal(res.choices[0].message.content, 'Hi');
  assert.equal(res.choices[0].finish_reason, 'stop');
  const high = await client.chat.completions.create({ model: MODEL, reasoning_effort: 'high', messages: user('Hi') });
  assert.equal(high.choices[0].message.reasoning, REASONING);
});

test('streamed chat sends the reasoning deltas before the content deltas', async () => {
  const stream = await client.chat.completions.create({ model: MODEL, stream: true, messages: user('Hi') });
  let reasoning = '', content = '', reasoningAfterContent = false, finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.reasoning) { reasoning += c.delta.reasoning; if (content) reasoningAfterContent = true; }
    if (c.delta.content) content += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(reasoning, REASONING);
  assert.equal(content, 'Hi');
  assert.equal(reasoningAfterContent, false);
  assert.equal(finish, 'stop');
});

test('reasoning_effort "none" hides the reasoning, streamed and not', async () => {
  const res = await client.chat.completions.create({ model: MODEL, reasoning_effort: 'none', messages: user('Hi') });
  assert.equal(res.choices[0].message.reasoning, undefined);
  assert.equal(res.choices[0].message.content, 'Hi');
  const stream = await client.chat.completions.create({ model: MODEL, reasoning_effort: 'none', stream: true, messages: user('Hi') });
  let content = '';
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    assert.equal(c.delta.reasoning, undefined);
    if (c.delta.content) content += c.delta.content;
  }
  assert.equal(content, 'Hi');
});
