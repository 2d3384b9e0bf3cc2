// End-to-end tests of the reasoning text on `axllama serve`'s OpenAI-compatible API with the
// official `openai` npm client, on a model whose emulator reasons (axllama-emu --emu-think-text,
// fast profile; it echoes the last user message after its think block): message.reasoning and
// delta.reasoning (Ollama's field name; the SDK passes unknown fields through), reasoning_effort
// "none" turning it off. Own server and models dir (openai_client.test.mjs uses the built-in model,
// which exists only while no manifest does).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';

const build = process.env.AXLLAMA_BUILD ?? path.resolve('build');
const tokenizerDir = process.env.AXLLAMA_TOKENIZER_DIR;
const MODEL = 'reason';
const REASONING = 'The user wrote a word.\n\nI will repeat it, "exactly".';
let server, client, modelsDir, log = '';

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

before(async () => {
  assert.ok(tokenizerDir, 'AXLLAMA_TOKENIZER_DIR must be set (scripts/run-tests.sh sets it)');
  const port = await freePort();
  modelsDir = mkdtempSync(path.join(tmpdir(), 'axllama-models-'));
  writeFileSync(path.join(modelsDir, 'reason.json'), JSON.stringify({
    name: MODEL,
    runtime: { binary: path.join(build, 'axllama-emu'),
               args: ['--emu-profile', 'fast', '--emu-port', '{port}', '--emu-think-text', REASONING],
               port: 0, devices: '0', load_timeout: 20 },
    tokenizer: tokenizerDir, tokenizer_port: 0, system_prompt: '', thinking: true, think_default: true,
  }));
  server = spawn(path.join(build, 'axllama'), ['serve'], {
    env: { ...process.env, OLLAMA_HOST: `127.0.0.1:${port}`, AXLLAMA_MODELS: modelsDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 10000);
    const onData = (d) => { log += d; if (log.includes('Listening on')) { clearTimeout(timer); resolve(); } };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${log}`)); });
  });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'any-key', maxRetries: 0, timeout: 60000 });
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.on('exit', resolve));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  rmSync(modelsDir, { recursive: true, force: true });
});

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
