// End-to-end tests of `axllama serve`'s /v1/responses (the OpenAI Responses API) with the official
// `openai` npm client: responses.create (text input, message arrays, instructions, usage,
// max_output_tokens -> incomplete), responses.stream (the event sequence the SDK's ResponseStream
// checks, finalResponse), a function-tool loop with the tool's output sent back, text.format
// validated like response_format (an APIError, never retried), reasoning as a reasoning item, and
// the stateless refusals. Models on axllama-emu (fast profile), which echoes the last user message;
// "reason" reasons first (--emu-think-text).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { emuManifest, startServe } from './serve.mjs';

const MODEL = 'echo';
const REASONER = 'reason';
const REASONING = 'Let me repeat it.';
let client;
let srv;

before(async () => {
  srv = await startServe({
    'echo.json': emuManifest(MODEL, { thinking: false }),
    'reason.json': emuManifest(REASONER, { thinking: true, think_default: true }, ['--emu-think-text', REASONING]),
  });
  client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'any-key', maxRetries: 0, timeout: 60000 });
});

after(() => srv?.stop());

test('responses.create answers a text input with one message and usage', async () => {
  const res = await client.responses.create({ model: MODEL, input: 'Hello from the Responses API', instructions: 'Be brief.' });
  assert.equal(res.object, 'response');
  assert.match(res.id, /^resp_/);
  assert.equal(res.status, 'completed');
  assert.equal(res.model, MODEL);
  assert.equal(res.instructions, 'Be brief.');
  assert.equal(res.store, false);
  assert.equal(res.output_text, 'Hello from the Responses API'); // the SDK's convenience, from the output
  assert.equal(res.output.length, 1);
  const msg = res.output[0];
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.status, 'completed');
  assert.match(msg.id, /^msg_/);
  assert.deepEqual(msg.content[0].annotations, []);
  assert.ok(res.usage.input_tokens > 0 && res.usage.output_tokens > 0);
  assert.equal(res.usage.total_tokens, res.usage.input_tokens + res.usage.output_tokens);
  assert.equal(typeof res.usage.input_tokens_details.cached_tokens, 'number');
  assert.equal(typeof res.usage.output_tokens_details.reasoning_tokens, 'number');
});

test('a message array with content parts and history answers the last user message', async () => {
  const res = await client.responses.create({
    model: MODEL,
    input: [
      { role: 'developer', content: 'You repeat things.' },
      { role: 'user', content: [{ type: 'input_text', text: 'first' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'first' }] },
      { role: 'user', content: [{ type: 'input_text', text: 'second turn' }] },
    ],
  });
  assert.equal(res.output_text, 'second turn');
});

test('max_output_tokens cuts the reply: status incomplete, reason max_output_tokens', async () => {
  const res = await client.responses.create({ model: MODEL, max_output_tokens: 3, input: 'one two three four five six' });
  assert.equal(res.status, 'incomplete');
  assert.equal(res.incomplete_details.reason, 'max_output_tokens');
  assert.equal(res.usage.output_tokens, 3);
  assert.equal(res.max_output_tokens, 3);
  assert.equal(res.output[0].status, 'incomplete');
});

test('responses.stream sends the events the SDK expects and assembles the final response', async () => {
  const stream = client.responses.stream({ model: MODEL, input: 'streamed through the helper' });
  const types = [];
  let deltas = '';
  stream.on('event', (ev) => types.push(ev.type));
  stream.on('response.output_text.delta', (ev) => { deltas += ev.delta; });
  const final = await stream.finalResponse();
  assert.equal(final.status, 'completed');
  assert.equal(final.output[0].content[0].text, 'streamed through the helper'); // (no output_text here: the SDK adds it to create()'s answers only)
  assert.equal(deltas, 'streamed through the helper');
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added',
    'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed']);
  assert.ok(final.usage.output_tokens > 0);
});

test('responses.create with stream: true yields events with increasing sequence numbers', async () => {
  const events = [];
  for await (const ev of await client.responses.create({ model: MODEL, input: 'count my events', stream: true })) {
    events.push(ev);
  }
  events.forEach((ev, i) => assert.equal(ev.sequence_number, i));
  const done = events.at(-1);
  assert.equal(done.type, 'response.completed');
  assert.equal(done.response.output[0].content[0].text, 'count my events');
  assert.ok(done.response.usage.input_tokens > 0);
});

const weather = {
  type: 'function', name: 'get_weather', description: 'Weather of a city', strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const callText = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

test('function tools: the call comes back as a function_call item and its output can be sent back', async () => {
  const res = await client.responses.create({ model: MODEL, tools: [weather], input: callText });
  assert.equal(res.output.length, 1);
  const call = res.output[0];
  assert.equal(call.type, 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.match(call.call_id, /^call_/);
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.equal(res.output_text, '');
  assert.equal(res.tools[0].name, 'get_weather'); // echoed

  // streamed: the arguments arrive as a delta of the function_call item
  const stream = client.responses.stream({ model: MODEL, tools: [weather], input: callText });
  let args = '';
  stream.on('response.function_call_arguments.delta', (ev) => { args += ev.delta; });
  const final = await stream.finalResponse();
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
  assert.equal(final.output[0].type, 'function_call');

  // the loop: the call and its output go back as input items
  const next = await client.responses.create({
    model: MODEL, tools: [weather],
    input: [{ role: 'user', content: 'Weather in Paris?' }, call,
      { type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21 C' },
      { role: 'user', content: 'thanks' }],
  });
  assert.equal(next.output_text, 'thanks');
  assert.equal(next.status, 'completed');
});

test('text.format: a conforming reply is the JSON, another one is a 400 the SDK does not retry', async () => {
  const format = { type: 'json_schema', name: 'person', strict: true,
    schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } };
  const good = await client.responses.create({ model: MODEL, text: { format }, input: '{"name": "Ada"}' });
  assert.deepEqual(JSON.parse(good.output_text), { name: 'Ada' });
  assert.equal(good.text.format.type, 'json_schema');

  let attempts = 0;
  const counting = new OpenAI({
    baseURL: `${srv.base}/v1`, apiKey: 'k', maxRetries: 3, timeout: 60000,
    fetch: (url, init) => { attempts++; return fetch(url, init); },
  });
  await assert.rejects(counting.responses.create({ model: MODEL, text: { format }, input: '{"age": 3}' }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'text.format'
      && /does not match the format schema/.test(err.message));
  assert.equal(attempts, 1);

  // streamed: nothing of the reply is sent, the stream ends with an error the SDK raises
  const stream = client.responses.stream({ model: MODEL, text: { format }, input: 'no json here' });
  let text = '';
  stream.on('response.output_text.delta', (ev) => { text += ev.delta; });
  await assert.rejects(stream.finalResponse(), (err) => err instanceof OpenAI.APIError && /not valid JSON/.test(err.message));
  assert.equal(text, '');
});

test('reasoning comes back as a reasoning item before the message, and effort none turns it off', async () => {
  const res = await client.responses.create({ model: REASONER, input: 'Hi' });
  assert.equal(res.output.length, 2);
  assert.equal(res.output[0].type, 'reasoning');
  assert.equal(res.output[0].summary[0].text, REASONING);
  assert.equal(res.output_text, 'Hi');

  const stream = client.responses.stream({ model: REASONER, input: 'Hi' });
  let reasoning = '';
  stream.on('response.reasoning_summary_text.delta', (ev) => { reasoning += ev.delta; });
  const final = await stream.finalResponse();
  assert.equal(reasoning, REASONING);
  assert.deepEqual(final.output.map((o) => o.type), ['reasoning', 'message']);

  // the reasoning item goes back as input with the next turn
  const next = await client.responses.create({ model: REASONER, input: [{ role: 'user', content: 'Hi' }, ...res.output,
    { role: 'user', content: 'again' }] });
  assert.equal(next.output_text, 'again');

  const off = await client.responses.create({ model: REASONER, reasoning: { effort: 'none' }, input: 'Hi' });
  assert.deepEqual(off.output.map((o) => o.type), ['message']);
});

test('stateless: previous_response_id and stored items are refused with a clear 400', async () => {
  await assert.rejects(client.responses.create({ model: MODEL, previous_response_id: 'resp_123', input: 'x' }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'previous_response_id'
      && /send the whole conversation as input/.test(err.message));
  await assert.rejects(client.responses.create({ model: MODEL, input: [{ type: 'item_reference', id: 'msg_1' }] }),
    (err) => err.status === 400 && /item_reference is not supported/.test(err.message));
  await assert.rejects(client.responses.create({ model: 'no-such-model', input: 'x' }),
    (err) => err instanceof OpenAI.NotFoundError);
  await assert.rejects(client.responses.create({ model: MODEL, tools: [{ type: 'web_search' }], input: 'x' }),
    (err) => err.status === 400 && /only function tools/.test(err.message));
});
