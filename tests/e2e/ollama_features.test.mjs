// End-to-end tests of tools, format and think through `axllama serve` with the official `ollama`
// npm client, on axllama-emu (fast profile). The emulator echoes the last user block, so the last
// user message (or tool result) is what the "model" answers: a <tool_call> block, JSON, prose.
// Models: "feat" (Qwen3 template, thinking, think off by default), "plain" (Qwen2.5 template,
// no thinking, no tools) and "reason" (like feat, but the emulator reasons: --emu-think-text).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { emuManifest, startServe } from './serve.mjs';

let ollama;
// what the "reason" model's emulator puts into its think block
const REASONING = 'The user wrote a word.\n\nI will repeat it, "exactly".';

let srv;

before(async () => {
  srv = await startServe({
    'feat.json': emuManifest('feat', { thinking: true, think_default: false }),
    'plain.json': emuManifest('plain', { template: 'qwen2.5', thinking: false }),
    'reason.json': emuManifest('reason', { thinking: true, think_default: false }, ['--emu-think-text', REASONING]),
  });
  ollama = new Ollama({ host: srv.base });
});

after(() => srv?.stop());

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Get the weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['C', 'F'] } }, required: ['city'] },
  },
}];
const callText = (name, args) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;

test('show lists tools and thinking for a Qwen3 model, neither for the Qwen2.5 one', async () => {
  assert.deepEqual((await ollama.show({ model: 'feat' })).capabilities, ['completion', 'tools', 'thinking']);
  assert.deepEqual((await ollama.show({ model: 'plain' })).capabilities, ['completion']);
});

test('chat with tools returns tool_calls with object arguments (no streaming)', async () => {
  const res = await ollama.chat({
    model: 'feat', tools,
    messages: [{ role: 'user', content: callText('get_weather', { city: 'Paris', unit: 'C' }) }],
  });
  assert.equal(res.message.content, '');
  assert.equal(res.message.tool_calls.length, 1);
  const call = res.message.tool_calls[0];
  assert.match(call.id, /^call_[a-z0-9]{8}$/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(call.function.arguments, { city: 'Paris', unit: 'C' });
  assert.equal(call.function.index, 0);
  assert.equal(res.done_reason, 'stop');
});

test('chat with tools streams each call whole; text around it stays content', async () => {
  const stream = await ollama.chat({
    model: 'feat', tools, stream: true,
    messages: [{ role: 'user', content: `One moment. ${callText('get_weather', { city: 'Oslo' })}${callText('get_weather', { city: 'Rome' })}` }],
  });
  let content = '', last;
  const calls = [];
  for await (const part of stream) {
    content += part.message.content;
    if (part.message.tool_calls) {
      assert.equal(part.done, false);
      assert.equal(part.message.content, '');
      calls.push(...part.message.tool_calls);
    }
    last = part;
  }
  assert.equal(content, 'One moment. ');
  assert.deepEqual(calls.map((c) => [c.function.index, c.function.name, c.function.arguments.city]),
                   [[0, 'get_weather', 'Oslo'], [1, 'get_weather', 'Rome']]);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'stop');
});

test('a tool result fed back is rendered as the template does and continues the conversation', async () => {
  const messages = [{ role: 'user', content: callText('get_weather', { city: 'Paris' }) }];
  const first = await ollama.chat({ model: 'feat', tools, messages });
  messages.push(first.message, { role: 'tool', tool_name: 'get_weather', content: '{"temp": 21}' });
  const second = await ollama.chat({ model: 'feat', tools, messages });
  assert.equal(second.message.content, '<tool_response>\n{"temp": 21}\n</tool_response>');
  assert.equal(second.message.tool_calls, undefined);
  // only the new turn was prefilled: the cache held the call the model made
  assert.ok(second.prompt_eval_count < 30, `prompt_eval_count ${second.prompt_eval_count}`);
});

test('malformed tool-call text comes back as content', async () => {
  const text = '<tool_call>{"name": "get_weather", "arguments": </tool_call>';
  const res = await ollama.chat({ model: 'feat', tools, messages: [{ role: 'user', content: text }] });
  assert.equal(res.message.content, text);
  assert.equal(res.message.tool_calls, undefined);
});

test('tools on a model without the capability is an error', async () => {
  await assert.rejects(ollama.chat({ model: 'plain', tools, messages: [{ role: 'user', content: 'x' }] }),
                       { message: 'registry.ollama.ai/library/plain:latest does not support tools' });
});

test('format json: a JSON reply passes, prose is an error (streamed or not)', async () => {
  const ok = await ollama.generate({ model: 'feat', format: 'json', prompt: '{"ok": true, "n": [1, 2]}' });
  assert.deepEqual(JSON.parse(ok.response), { ok: true, n: [1, 2] });
  await assert.rejects(ollama.generate({ model: 'feat', format: 'json', prompt: 'It is sunny.' }),
                       { message: /^the model's reply is not valid JSON: / });
  const stream = await ollama.chat({ model: 'feat', format: 'json', stream: true, messages: [{ role: 'user', content: 'It is sunny.' }] });
  let text = '';
  await assert.rejects((async () => { for await (const part of stream) text += part.message.content; })(),
                       { message: /^the model's reply is not valid JSON: / });
  assert.equal(text, 'It is sunny.'); // the pieces came before the error line
});

test('format schema: a conforming reply passes, a wrong one names the failing path', async () => {
  const format = { type: 'object', properties: { city: { type: 'string' }, temp: { type: 'integer' } }, required: ['city', 'temp'] };
  const ok = await ollama.chat({ model: 'feat', format, messages: [{ role: 'user', content: '{"city": "Paris", "temp": 21}' }] });
  assert.deepEqual(JSON.parse(ok.message.content), { city: 'Paris', temp: 21 });
  let text = '';
  const stream = await ollama.chat({ model: 'feat', format, stream: true, messages: [{ role: 'user', content: '{"city": "Paris"}' }] });
  await assert.rejects((async () => { for await (const part of stream) text += part.message.content; })(),
                       { message: 'the model\'s reply does not match the format schema: $: missing required property "temp"' });
  assert.equal(text, '{"city": "Paris"}');
  await assert.rejects(ollama.chat({ model: 'feat', format: { type: 'decimal' }, messages: [{ role: 'user', content: 'x' }] }),
                       { message: /^invalid format schema: \$: "type" must be one of / });
});

test('think true / false / levels; a model without thinking refuses them', async () => {
  const prompt = (think) => ollama.chat({ model: 'feat', think, messages: [{ role: 'user', content: 'Hi' }] });
  const off = await prompt(false), on = await prompt(true), level = await prompt('high'), dflt = await prompt(undefined);
  for (const r of [off, on, level, dflt]) assert.equal(r.message.content, 'Hi');
  // off renders Qwen3's empty think block into the prompt (4 tokens); on and levels do not
  assert.equal(off.prompt_eval_count, on.prompt_eval_count + 4);
  assert.equal(level.prompt_eval_count, on.prompt_eval_count);
  assert.equal(dflt.prompt_eval_count, off.prompt_eval_count); // the manifest's think_default: false
  await assert.rejects(ollama.chat({ model: 'plain', think: true, messages: [{ role: 'user', content: 'Hi' }] }),
                       { message: '"plain" does not support thinking' });
  await assert.rejects(ollama.generate({ model: 'plain', think: 'low', prompt: 'Hi' }), { message: '"plain" does not support thinking' });
  assert.equal((await ollama.generate({ model: 'plain', think: false, prompt: 'Hi' })).response, 'Hi');
  await assert.rejects(ollama.chat({ model: 'feat', think: 'very', messages: [{ role: 'user', content: 'Hi' }] }),
                       { message: 'invalid think value: "very" (must be "high", "medium", "low", "max", true, or false)' });
});

test('a reasoning model: think true gives message.thinking (streamed first), think false hides it', async () => {
  const messages = [{ role: 'user', content: 'Hi' }];
  const on = await ollama.chat({ model: 'reason', think: true, messages });
  assert.equal(on.message.thinking, REASONING);
  assert.equal(on.message.content, 'Hi');
  const off = await ollama.chat({ model: 'reason', think: false, messages });
  assert.equal(off.message.thinking, undefined);
  assert.equal(off.message.content, 'Hi');

  let thinking = '', content = '', thinkingAfterContent = false;
  for await (const part of await ollama.chat({ model: 'reason', think: true, stream: true, messages })) {
    if (part.message.thinking) { thinking += part.message.thinking; if (content) thinkingAfterContent = true; }
    content += part.message.content;
  }
  assert.equal(thinking, REASONING);
  assert.equal(content, 'Hi');
  assert.equal(thinkingAfterContent, false);

  const gen = await ollama.generate({ model: 'reason', think: true, prompt: 'Hi' });
  assert.equal(gen.thinking, REASONING);
  assert.equal(gen.response, 'Hi');
});

test('a reasoning turn sent back with its thinking continues the cached conversation', async () => {
  const first = await ollama.chat({ model: 'reason', think: true, messages: [{ role: 'user', content: 'q1' }] });
  assert.equal(first.message.thinking, REASONING);
  const second = await ollama.chat({
    model: 'reason', think: true,
    messages: [{ role: 'user', content: 'q1' }, first.message, { role: 'user', content: 'q2' }],
  });
  assert.equal(second.message.content, 'q2');
  assert.equal(second.message.thinking, REASONING);
  // only the new turn is prefilled: "<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n"
  assert.equal(second.prompt_eval_count, 12);
});
