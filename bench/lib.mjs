// lib: what the server benchmarks share: free ports, child processes (stopped at the end), a models
// directory with one emulated model, `axllama serve` on it, one streamed /api/chat with client-side
// timings, per-process CPU time from /proc, and percentiles.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];
export const scratch = mkdtempSync(path.join(tmpdir(), 'axllama-bench-'));

export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// Spawns cmd and resolves once its output shows readyText. The child's output is kept in .log.
export function start(cmd, args, env, readyText, timeoutMs = 60000) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start in time:\n${child.log.slice(-2000)}`)), timeoutMs);
    const onData = (d) => {
      child.log += d;
      if (child.log.length > 4e6) child.log = child.log.slice(-2e6);
      if (readyText && child.log.includes(readyText)) { clearTimeout(timer); readyText = null; resolve(child); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); if (readyText) reject(new Error(`${cmd} exited ${code}:\n${child.log.slice(-2000)}`)); });
  });
}

export async function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await sleep(300);
  rmSync(scratch, { recursive: true, force: true });
}

// A models directory with one manifest: the emulator on the Pi 5 profile, time-scaled.
export function writeManifest(dir, { build, tokenizerDir, scale, emuArgs = [], system, name = 'bench:pi5' }) {
  const manifest = {
    name,
    runtime: {
      binary: path.resolve(build, 'axllama-emu'),
      args: ['--emu-profile', 'qwen3-4b-pi5', '--emu-time-scale', String(scale), '--emu-init-seconds', '0',
        '--emu-port', '{port}', ...emuArgs],
      port: 0, devices: '0', load_timeout: 120,
    },
    tokenizer: tokenizerDir, tokenizer_port: 0,
  };
  if (system !== undefined) manifest.system_prompt = system;
  writeFileSync(path.join(dir, 'bench.json'), JSON.stringify(manifest));
}

// `axllama serve` on one emulated model; returns { base, child }.
export async function startServer(label, opts, env = {}) {
  const dir = mkdtempSync(path.join(scratch, `${label}-`));
  writeManifest(dir, opts);
  const port = await freePort();
  const child = await start(path.resolve(opts.build, 'axllama'), ['serve'],
    { OLLAMA_HOST: `127.0.0.1:${port}`, AXLLAMA_MODELS: dir, ...env }, 'Listening on');
  return { base: `http://127.0.0.1:${port}`, child };
}

// One streamed /api/chat; the final object plus client-side timings (ms since the request).
export async function chat(base, messages, extra = {}, model = 'bench:pi5') {
  const t0 = performance.now();
  const res = await fetch(`${base}/api/chat`, {
    method: 'POST',
    body: JSON.stringify({ model, messages, think: false, keep_alive: -1, ...extra }),
  });
  if (!res.ok) throw new Error(`chat: HTTP ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let buf = '', content = '', ttft = null, final = null;
  const arrivals = []; // [content length, ms since t0]
  for await (const chunk of res.body) {
    const now = performance.now() - t0;
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const o = JSON.parse(line);
      if (o.error) throw new Error(`chat: ${o.error}`);
      if (o.message?.content) {
        content += o.message.content;
        if (ttft === null) ttft = now;
        arrivals.push([content.length, now]);
      }
      if (o.done) final = o;
    }
  }
  if (!final) throw new Error('chat: no done line');
  return { final, content, ttft, arrivals, total: performance.now() - t0 };
}

// CPU seconds (user + system) a process has used, from /proc/PID/stat.
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

// The pid of the child of parent whose command name is comm (e.g. the runtime under axllama).
export function childPid(parent, comm) {
  const children = [];
  for (const task of readdirSync(`/proc/${parent}/task`)) /* the children of every thread */
    children.push(...readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
  for (const pid of children) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) return Number(pid);
    } catch { /* gone */ }
  }
  return 0;
}

export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
