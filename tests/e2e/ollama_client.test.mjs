// End-to-end tests of `axllama serve` with the official `ollama` npm client, on the built-in model
// (axllama-emu, fast profile): what real Ollama clients rely on, streaming and not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startServe } from './serve.mjs';

const MODEL = 'qwen3-emu';
let ollama;

let srv;

before(async () => {
  srv = await startServe();
  ollama = new Ollama({ host: srv.base });
});

after(() => srv?.stop());

test('list shows the built-in model', async () => {
  const { models } = await ollama.list();
  assert.ok(models.some((m) => m.name === 'qwen3-emu:latest' && m.model === 'qwen3-emu:latest'));
});

test('chat without streaming answers with the reply and token counts', async () => {
  const res = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Hello from node' }] });
  assert.equal(res.message.role, 'assistant');
  assert.equal(res.message.content, 'Hello from node');
  assert.equal(res.done, true);
  assert.equal(res.done_reason, 'stop');
  assert.ok(res.prompt_eval_count > 0 && res.eval_count > 0);
});

test('chat streams pieces that add up to the reply, ending with done', async () => {
  const stream = await ollama.chat({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'stream these words please' }] });
  let text = '', parts = 0, last;
  for await (const part of stream) { text += part.message.content; parts++; last = part; }
  assert.equal(text, 'stream these words please');
  assert.ok(parts >= 2);
  assert.equal(last.done, true);
});

test('generate streams and the second chat turn reuses the cache', async () => {
  let text = '';
  for await (const part of await ollama.generate({ model: MODEL, prompt: 'gen text', stream: true })) text += part.response;
  assert.equal(text, 'gen text');
  const messages = [{ role: 'user', content: 'turn one' }];
  const one = await ollama.chat({ model: MODEL, messages });
  messages.push(one.message, { role: 'user', content: 'turn two' });
  const two = await ollama.chat({ model: MODEL, messages });
  assert.equal(two.message.content, 'turn two');
  assert.ok(two.prompt_eval_count < one.prompt_eval_count + 12, `turn 2 prefilled ${two.prompt_eval_count}`);
});

test('show reports capabilities and the context length', async () => {
  const info = await ollama.show({ model: MODEL });
  assert.ok(info.capabilities.includes('completion'));
  assert.ok(info.capabilities.includes('thinking'));
  const ctx = Object.entries(info.model_info).find(([k]) => k.endsWith('.context_length'));
  assert.ok(ctx && ctx[1] === 2559);
});

test('ps lists the loaded model', async () => {
  await ollama.generate({ model: MODEL, prompt: 'x' });
  const { models } = await ollama.ps();
  assert.ok(models.some((m) => m.name === 'qwen3-emu:latest'));
});

test('an unknown model is a 404 ResponseError', async () => {
  await assert.rejects(ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err.status_code === 404 && /not found/.test(err.message));
});

test('abort ends a stream and the next request is served', async () => {
  const stream = await ollama.generate({ model: MODEL, prompt: 'a '.repeat(400), stream: true });
  let seen = 0;
  await assert.rejects((async () => { for await (const _ of stream) { if (++seen === 2) ollama.abort(); } })(),
    (err) => err.name === 'AbortError');
  const t0 = Date.now();
  const res = await ollama.generate({ model: MODEL, prompt: 'after abort' });
  assert.equal(res.response, 'after abort');
  assert.ok(Date.now() - t0 < 5000);
});

// A prompt far over the model's 2,048-token prefill: cut to fit by default (Ollama's truncate),
// refused with a 400 when the request says truncate: false.
test('an over-long prompt is truncated by default and refused with truncate: false', async () => {
  const long = `${'many words '.repeat(2500)}the end`;
  const res = await ollama.generate({ model: MODEL, prompt: long, options: { num_predict: 4 } });
  assert.equal(res.done, true);
  assert.ok(res.prompt_eval_count > 0 && res.prompt_eval_count <= 2048);
  const chat = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: long }], options: { num_predict: 4 } });
  assert.equal(chat.done, true);
  for (const call of [
    () => ollama.generate({ model: MODEL, prompt: long, truncate: false }),
    () => ollama.chat({ model: MODEL, messages: [{ role: 'user', content: long }], truncate: false, stream: true }),
  ]) {
    await assert.rejects(call(), (err) => err.name === 'ResponseError' && err.status_code === 400
      && /^the prompt is too long: \d+ tokens/.test(err.message));
  }
});

// The routes of Ollama's API that axllama does not carry out answer JSON errors the client shows.
test('embed, pull, delete, copy, create: JSON answers the client understands', async () => {
  await assert.rejects(ollama.embed({ model: MODEL, input: 'hello' }),
    (err) => err.name === 'ResponseError' && err.status_code === 400 && err.message === '"qwen3-emu" does not support embeddings');
  await assert.rejects(ollama.embeddings({ model: MODEL, prompt: 'hello' }),
    (err) => err.status_code === 400 && /does not support embeddings/.test(err.message));
  // pulling an installed model is a no-op that ends with success, streamed or not
  assert.deepEqual(await ollama.pull({ model: MODEL }), { status: 'success' });
  const statuses = [];
  for await (const part of await ollama.pull({ model: MODEL, stream: true })) statuses.push(part.status);
  assert.equal(statuses[0], 'pulling manifest');
  assert.equal(statuses.at(-1), 'success');
  await assert.rejects(ollama.pull({ model: 'llama3.2:1b' }),
    (err) => err.status_code === 404 && /is not installed, and axllama cannot pull models/.test(err.message));
  await assert.rejects(ollama.delete({ model: MODEL }),
    (err) => err.status_code === 400 && /^deleting models is not supported: remove the manifest/.test(err.message));
  await assert.rejects(ollama.delete({ model: 'nope' }), (err) => err.status_code === 404);
  await assert.rejects(ollama.copy({ source: MODEL, destination: 'mine' }),
    (err) => err.status_code === 400 && /^copying models is not supported/.test(err.message));
  await assert.rejects(ollama.create({ model: 'mine', from: MODEL, system: 'Be brief.' }),
    (err) => err.status_code === 400 && /^creating models is not supported/.test(err.message));
  // the model is still there and answers
  const res = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'still here' }] });
  assert.equal(res.message.content, 'still here');
});
