// serve_bench: the server half of `make bench` (issue 4 §6), every comparison run side by side in one
// process so the ratios mean something on a noisy machine:
//   (a) KV reuse: a 10-turn chat on the qwen3-4b-pi5 timing profile (scaled by BENCH_TIME_SCALE,
//       default 0.05), axllama as built vs axllama with AXLLAMA_RESET_EVERY_TURN=1 (the seeds' design:
//       reset and prefill the whole conversation every turn). Per turn: prompt_eval_count (tokens the
//       NPU prefilled, from the runtime's own diff) and TTFT (client clock, request sent -> first
//       content byte). The two servers take turns, so both see the same machine load.
//   (b) added latency: the same prompts answered by axllama (streamed /api/chat) and by the emulator
//       driven directly (reset, generate, /api/generate_provider polled every millisecond). For every
//       content length axllama streamed, the time axllama delivered it minus the time the direct
//       client had it = the latency axllama adds per piece; the same for the first byte = added TTFT.
//   (c) /api/version requests/s with wrk (2 threads, 32 connections, 5 s), if wrk is installed.
// Prints one table per part with the goals; exits 1 only on a broken run (a server that would not
// start, a request that failed), never because a goal was missed.
// Usage: node bench/serve_bench.mjs BUILD TOKENIZER_DIR
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { chat as chatAs, cleanup, freePort, percentile, scratch, sleep, start, startServer as startOn } from './lib.mjs';

const [build, tokenizerDir] = process.argv.slice(2);
if (!build || !tokenizerDir) {
  console.error('usage: node bench/serve_bench.mjs BUILD TOKENIZER_DIR');
  process.exit(2);
}
const SCALE = Number(process.env.BENCH_TIME_SCALE ?? '0.05');
const TURNS = 10;
const REPLY_TOKENS = 40;
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? '8');
const SYSTEM = 'You are a helpful assistant.';

const startServer = async (label, env) =>
  (await startOn(label, { build, tokenizerDir, scale: SCALE, system: SYSTEM, emuArgs: ['--emu-reply-tokens', String(REPLY_TOKENS)] },
    env)).base;
const chat = (base, messages) => chatAs(base, messages);

const userTurn = (i) => `Turn ${i + 1}: please tell me one more thing about the history of the lighthouse on the northern cape, in a few words.`;

async function partA() {
  const reuse = await startServer('reuse', {});
  const reset = await startServer('reset', { AXLLAMA_RESET_EVERY_TURN: '1' });
  const convs = { reuse: [], reset: [] };
  const rows = [];
  // load both models first so turn 1 measures prefill, not the model load
  for (const base of [reuse, reset]) await chat(base, [{ role: 'user', content: 'warm up' }]);
  for (let i = 0; i < TURNS; i++) {
    const row = { turn: i + 1 };
    for (const [label, base] of [['reuse', reuse], ['reset', reset]]) {
      const conv = convs[label];
      // a new conversation for the measured chat (the warm-up differs from it, so turn 1 resets)
      conv.push({ role: 'user', content: userTurn(i) });
      const r = await chat(base, conv);
      conv.push({ role: 'assistant', content: r.content });
      row[`${label}_prefill`] = r.final.prompt_eval_count;
      row[`${label}_ttft`] = r.ttft;
    }
    rows.push(row);
  }
  console.log(`\n(a) 10-turn chat, qwen3-4b-pi5 profile x${SCALE} (TTFT in scaled ms; /${SCALE} for the Pi)`);
  console.log('turn | prefill tokens: axllama  reset-every-turn  ratio | TTFT ms: axllama  reset-every-turn');
  for (const r of rows) {
    console.log(`${String(r.turn).padStart(4)} | ${String(r.reuse_prefill).padStart(24)} ${String(r.reset_prefill).padStart(17)} ${(r.reset_prefill / r.reuse_prefill).toFixed(1).padStart(6)} |` +
      ` ${r.reuse_ttft.toFixed(0).padStart(16)} ${r.reset_ttft.toFixed(0).padStart(17)}`);
  }
  const last = rows[rows.length - 1];
  const ratio = last.reset_prefill / last.reuse_prefill;
  console.log(`turn 10: reset-every-turn prefills ${ratio.toFixed(1)}x the tokens axllama does ` +
    `(goal >= 5x: ${ratio >= 5 ? 'PASS' : 'FAIL'}); TTFT ${(last.reset_ttft / last.reuse_ttft).toFixed(1)}x`);
}

// The emulator driven directly, the way a careful driver does it; arrival times of the content.
async function directRun(emuBase, prompt) {
  const t0 = performance.now();
  const post = (p, body) => fetch(`${emuBase}${p}`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.text());
  await post('/api/reset', { system_prompt: SYSTEM });
  // the reset runs asynchronously: retry generate until it is accepted
  for (;;) {
    const t = await post('/api/generate', { prompt, 'top-k': 1 });
    if (t.includes('"ok"')) break;
    if (performance.now() - t0 > 30000) throw new Error(`direct: generate refused: ${t}`);
    await sleep(1);
  }
  let raw = '', seenBusy = false;
  const arrivals = [];
  for (;;) {
    const o = await fetch(`${emuBase}/api/generate_provider`).then((r) => r.json());
    const now = performance.now() - t0;
    if (o.response) raw += o.response;
    if (!o.done || o.response) seenBusy = true;
    const content = raw.replace(/^<think>[\s\S]*?<\/think>\s*/, '');
    if (raw.includes('</think>') && content.length > 0 && (arrivals.length === 0 || arrivals[arrivals.length - 1][0] < content.length))
      arrivals.push([content.trimEnd().length, now]);
    if (o.done && seenBusy) break;
    if (now > 60000) throw new Error('direct: no end');
    await sleep(1);
  }
  return { arrivals, content: raw.replace(/^<think>[\s\S]*?<\/think>\s*/, '') };
}


async function partB() {
  const tokPort = await freePort();
  const emuPort = await freePort();
  await start(path.resolve(build, 'axllama'), ['tokenizer', 'serve', '--tokenizer', tokenizerDir, '--port', String(tokPort)], {},
    String(tokPort));
  await sleep(200);
  await start(path.resolve(build, 'axllama-emu'), ['--emu-profile', 'qwen3-4b-pi5', '--emu-time-scale', String(SCALE),
    '--emu-port', String(emuPort), '--emu-reply-tokens', String(REPLY_TOKENS), '--devices', '0',
    '--url_tokenizer_model', `http://127.0.0.1:${tokPort}`, '--system_prompt', SYSTEM], {}, 'Server running', 120000);
  await sleep(100);
  const emuBase = `http://127.0.0.1:${emuPort}`;
  const server = await startServer('latency', {});
  await chat(server, [{ role: 'user', content: 'warm up' }]);
  const added = [], addedTtft = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    const prompt = `Run ${i}: name the tallest mountain of each of the seven continents, the year it was first climbed, who led the first ascent, and one thing that makes the climb hard today.`;
    const viaAxllama = await chat(server, [{ role: 'user', content: prompt }]);
    const direct = await directRun(emuBase, prompt);
    // The texts agree up to where the vendor-protocol prompt differs (its tokenizer appends
    // "/no_think" to the user text, which the echo repeats): compare arrivals within that prefix.
    let same = 0;
    while (same < viaAxllama.content.length && viaAxllama.content[same] === direct.content[same]) same++;
    const timeDirect = (len) => (direct.arrivals.find(([l]) => l >= len) ?? [0, NaN])[1];
    for (const [len, t] of viaAxllama.arrivals) {
      if (len > same) break;
      const d = t - timeDirect(len);
      if (!Number.isNaN(d)) added.push(d);
    }
    addedTtft.push(viaAxllama.ttft - direct.arrivals[0][1]);
  }
  console.log(`\n(b) added latency, axllama vs the emulator driven directly (qwen3-4b-pi5 x${SCALE}, ${LATENCY_RUNS} runs, ` +
    `${added.length} pieces; negative = axllama was faster than a 1 ms poller)`);
  console.log(`per piece: p50 ${percentile(added, 50).toFixed(2)} ms, p99 ${percentile(added, 99).toFixed(2)} ms ` +
    `(goal p99 <= 5 ms: ${percentile(added, 99) <= 5 ? 'PASS' : 'FAIL'})`);
  console.log(`TTFT: p50 ${percentile(addedTtft, 50).toFixed(2)} ms, max ${Math.max(...addedTtft).toFixed(2)} ms`);
}

async function partC() {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) {
    console.log('\n(c) /api/version: wrk is not installed (make deps installs it); skipped');
    return;
  }
  const port = await freePort();
  const dir = mkdtempSync(path.join(scratch, 'wrk-'));
  await start(path.resolve(build, 'axllama'), ['serve'], { OLLAMA_HOST: `127.0.0.1:${port}`, AXLLAMA_MODELS: dir }, 'Listening on');
  const out = await new Promise((resolve) => {
    const w = spawn('wrk', ['-t2', '-c32', '-d5s', `http://127.0.0.1:${port}/api/version`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    w.stdout.on('data', (d) => { text += d; });
    w.on('exit', () => resolve(text));
  });
  const rps = Number((out.match(/Requests\/sec:\s*([\d.]+)/) ?? [])[1]);
  const errors = out.match(/Non-2xx.*|Socket errors.*/g) ?? [];
  console.log(`\n(c) /api/version with wrk -t2 -c32 -d5s: ${rps.toFixed(0)} requests/s (goal >= 20000: ${rps >= 20000 ? 'PASS' : 'FAIL'})` +
    (errors.length ? `; ${errors.join('; ')}` : ''));
}

try {
  await partA();
  await partB();
  await partC();
} catch (err) {
  console.error(`serve bench failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
