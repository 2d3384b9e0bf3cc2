// End-to-end tests of `axllama serve`'s OpenAI-compatible API with the official `openai` npm
// client (baseURL .../v1, any API key), on the built-in model (axllama-emu, fast profile, which
// echoes the last user message): chat with and without streaming, usage, max_tokens -> length,
// stop, completions, models, errors as APIError, tools and response_format.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServe } from './serve.mjs';

const MODEL = 'qwen3-emu';
let client;

let srv;

before(async () => {
  srv = await startServe();
  client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'any-key', maxRetries: 0, timeout: 60000 });
});

after(() => srv?.stop());

const user = (content) => [{ role: 'user', content }];

test('chat without streaming answers the reply with usage', async () => {
  const res = await client.chat.completions.create({ model: MODEL, messages: user('Hello from openai') });
  assert.equal(res.object, 'chat.completion');
  assert.match(res.id, /^chatcmpl-/);
  assert.equal(res.model, MODEL);
  assert.equal(res.choices.length, 1);
  assert.equal(res.choices[0].message.role, 'assistant');
  assert.equal(res.choices[0].message.content, 'Hello from openai');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.ok(res.usage.prompt_tokens > 0 && res.usage.completion_tokens > 0);
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
});

test('chat streams deltas that add up to the reply, with a usage chunk when asked', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL, stream: true, stream_options: { include_usage: true }, messages: user('stream these words please'),
  });
  let text = '', roles = 0, finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) roles++;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, 'stream these words please');
  assert.equal(roles, 1);
  assert.equal(finish, 'stop');
  assert.ok(chunks >= 3);
  assert.ok(usage && usage.completion_tokens > 0 && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens);
});

test('the stream helper (runner) assembles the final message', async () => {
  const runner = client.chat.completions.stream({ model: MODEL, messages: user('assembled by the helper') });
  const done = await runner.finalChatCompletion();
  assert.equal(done.choices[0].message.content, 'assembled by the helper');
  assert.equal(done.choices[0].finish_reason, 'stop');
});

test('max_tokens ends the reply with finish_reason length', async () => {
  // thinking off: the model answers at once (no think block of its own), one token per word here
  const res = await client.chat.completions.create({ model: MODEL, max_tokens: 2, messages: user('one two three four five six seven') });
  assert.equal(res.choices[0].finish_reason, 'length');
  assert.equal(res.usage.completion_tokens, 2);
  assert.equal(res.choices[0].message.content, 'one two');
});

test('stop sequences cut the reply', async () => {
  const res = await client.chat.completions.create({ model: MODEL, stop: ['gamma'], messages: user('alpha beta gamma delta') });
  assert.equal(res.choices[0].message.content, 'alpha beta ');
  assert.equal(res.choices[0].finish_reason, 'stop');
});

test('completions answer a prompt, streamed and not', async () => {
  const res = await client.completions.create({ model: MODEL, prompt: 'complete me' });
  assert.equal(res.object, 'text_completion');
  assert.equal(res.choices[0].text, 'complete me');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.ok(res.usage.prompt_tokens > 0);
  let text = '', finish = null;
  for await (const chunk of await client.completions.create({ model: MODEL, prompt: 'streamed completion', stream: true })) {
    for (const c of chunk.choices) { text += c.text; if (c.finish_reason) finish = c.finish_reason; }
  }
  assert.equal(text, 'streamed completion');
  assert.equal(finish, 'stop');
});

test('models list and retrieve', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('qwen3-emu:latest'));
  const m = await client.models.retrieve('qwen3-emu:latest');
  assert.equal(m.id, 'qwen3-emu:latest');
  assert.equal(m.object, 'model');
  assert.equal(m.owned_by, 'library');
  await assert.rejects(client.models.retrieve('no-such-model'), (err) => err instanceof OpenAI.APIError && err.status === 404);
});

test('an unknown model is an APIError with status 404', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: user('x') }),
    (err) => err instanceof OpenAI.NotFoundError && err.status === 404 && /not found/.test(err.message));
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', stream: true, messages: user('x') }),
    (err) => err instanceof OpenAI.APIError && err.status === 404);
});

test('a bad request is an APIError with status 400 and the OpenAI error fields', async () => {
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }),
    (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.type === 'invalid_request_error'
      && /too short/.test(err.message));
  await assert.rejects(client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
  }), (err) => err.status === 400 && /image input is not supported/.test(err.message));
});

const weather = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const callText = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

test('tools: a tool call comes back as tool_calls, streamed and not, and its result can be sent back', async () => {
  const res = await client.chat.completions.create({ model: MODEL, tools: [weather], messages: user(callText) });
  const choice = res.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  const runner = client.chat.completions.stream({ model: MODEL, tools: [weather], messages: user(callText) });
  const streamed = await runner.finalChatCompletion();
  assert.equal(streamed.choices[0].finish_reason, 'tool_calls');
  assert.equal(streamed.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(streamed.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });

  const next = await client.chat.completions.create({
    model: MODEL, tools: [weather],
    messages: [...user('weather in Paris?'), choice.message, { role: 'tool', tool_call_id: call.id, content: 'sunny' },
      ...user('thank you')],
  });
  assert.equal(next.choices[0].message.content, 'thank you');
  assert.equal(next.choices[0].finish_reason, 'stop');
});

test('response_format: JSON replies pass, others are an APIError', async () => {
  const res = await client.chat.completions.create({
    model: MODEL, response_format: { type: 'json_object' }, messages: user('{"ok": true}'),
  });
  assert.deepEqual(JSON.parse(res.choices[0].message.content), { ok: true });
  const schema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
  const fmt = { type: 'json_schema', json_schema: { name: 'person', schema } };
  const good = await client.chat.completions.create({ model: MODEL, response_format: fmt, messages: user('{"name": "Ada"}') });
  assert.deepEqual(JSON.parse(good.choices[0].message.content), { name: 'Ada' });
  await assert.rejects(client.chat.completions.create({ model: MODEL, response_format: fmt, messages: user('{"age": 3}') }),
    (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && /does not match the format schema/.test(err.message)
      && err.headers.get('x-should-retry') === 'false');
});

test('an error event inside a stream is raised by the SDK as an APIError', async () => {
  const fmt = { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', required: ['name'] } } };
  const stream = await client.chat.completions.create({ model: MODEL, stream: true, response_format: fmt, messages: user('not json') });
  let content = '';
  await assert.rejects((async () => {
    for await (const chunk of stream) for (const c of chunk.choices) content += c.delta.content ?? '';
  })(), (err) => err instanceof OpenAI.APIError && /not valid JSON/.test(err.message));
  assert.equal(content, ''); // nothing of the non-conforming reply was sent
});

test('a reply of parallel tool calls only has content null, streamed without content deltas', async () => {
  const rome = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>';
  const res = await client.chat.completions.create({ model: MODEL, tools: [weather], messages: user(`${callText}\n${rome}\n`) });
  assert.equal(res.choices[0].message.content, null);
  assert.deepEqual(res.choices[0].message.tool_calls.map((c) => JSON.parse(c.function.arguments).city), ['Paris', 'Rome']);
  const contents = [];
  let calls = 0;
  for await (const chunk of await client.chat.completions.create({
    model: MODEL, stream: true, tools: [weather], messages: user(`${callText}\n${rome}\n`),
  })) {
    for (const c of chunk.choices) {
      if ('content' in c.delta) contents.push(c.delta.content);
      calls += c.delta.tool_calls?.length ?? 0;
    }
  }
  assert.equal(calls, 2);
  assert.deepEqual(contents, []);
});

test('embeddings are refused with an OpenAI error, not a text 404', async () => {
  await assert.rejects(client.embeddings.create({ model: MODEL, input: 'hello' }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'model' && /does not support embeddings/.test(err.message));
});
