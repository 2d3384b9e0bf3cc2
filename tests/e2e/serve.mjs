// serve: what the end-to-end tests share: an `axllama serve` child on a free port with its own
// models directory (empty = the built-in model qwen3-emu), manifests for models backed by
// axllama-emu (fast profile), and a stop that never leaves the child behind.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const build = process.env.AXLLAMA_BUILD ?? path.resolve('build');

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// A manifest (JSON text) for model NAME on axllama-emu with extra emulator args and extra keys.
export function emuManifest(name, extra = {}, emuArgs = []) {
  const tokenizer = process.env.AXLLAMA_TOKENIZER_DIR;
  if (!tokenizer) throw new Error('AXLLAMA_TOKENIZER_DIR must be set (scripts/run-tests.sh sets it)');
  return JSON.stringify({
    name,
    runtime: { binary: path.join(build, 'axllama-emu'), args: ['--emu-profile', 'fast', '--emu-port', '{port}', ...emuArgs],
               port: 0, devices: '0', load_timeout: 20 },
    tokenizer, tokenizer_port: 0, system_prompt: '', ...extra,
  });
}

// Starts the server with manifests {file name: JSON text}; resolves once it listens.
// Returns { base: 'http://127.0.0.1:PORT', stop() }.
export async function startServe(manifests = {}) {
  const port = await freePort();
  const modelsDir = mkdtempSync(path.join(tmpdir(), 'axllama-models-'));
  for (const [file, text] of Object.entries(manifests)) writeFileSync(path.join(modelsDir, file), text);
  const server = spawn(path.join(build, 'axllama'), ['serve'], {
    env: { ...process.env, OLLAMA_HOST: `127.0.0.1:${port}`, AXLLAMA_MODELS: modelsDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 10000);
      const onData = (d) => { log += d; if (log.includes('Listening on')) { clearTimeout(timer); resolve(); } };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${log}`)); });
    });
  } catch (err) {
    server.kill('SIGKILL');
    rmSync(modelsDir, { recursive: true, force: true });
    throw err;
  }
  return {
    base: `http://127.0.0.1:${port}`,
    async stop() {
      if (server.exitCode === null) {
        const exited = new Promise((resolve) => server.on('exit', resolve));
        server.kill('SIGTERM');
        let timer;
        await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 15000); })]);
        clearTimeout(timer); // a pending timer would hold node (and the test file) open for 15 s
        if (server.exitCode === null) server.kill('SIGKILL');
      }
      rmSync(modelsDir, { recursive: true, force: true });
    },
  };
}
