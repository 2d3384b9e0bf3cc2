// hf_tokenizer_bench: the reference figures for bench/run.sh: the Hugging Face `tokenizers` addon
// (@anush008/tokenizers) on the same chunks in the same order: load time (best of 3), sequential
// `await encode` of one chunk at a time (MB/s, total tokens), and, as extra information,
// encodeBatch throughput (the library spreads a batch over all cores). Prints one JSON line.
// Usage: node bench/hf_tokenizer_bench.mjs --tokenizer DIR --chunks FILE.jsonl
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@anush008/tokenizers';

const LOAD_REPEATS = 3;
const BATCH_SIZE = 256;

function argument(name) {
    const i = process.argv.indexOf(name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : null;
}
const dir = argument('--tokenizer');
const chunksPath = argument('--chunks');
if (!dir || !chunksPath) {
    console.error('usage: node bench/hf_tokenizer_bench.mjs --tokenizer DIR --chunks FILE.jsonl');
    process.exit(2);
}

const loadTimes = [];
let tok;
for (let i = 0; i < LOAD_REPEATS; i++) {
    const t0 = performance.now();
    tok = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    loadTimes.push((performance.now() - t0) / 1000);
}

const chunks = readFileSync(chunksPath, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).text);
let bytes = 0;
for (const c of chunks) bytes += Buffer.byteLength(c);

let tokens = 0;
let t0 = performance.now();
for (const c of chunks) tokens += (await tok.encode(c)).getIds().length;
const encodeSeconds = (performance.now() - t0) / 1000;

let batchTokens = 0;
t0 = performance.now();
for (let i = 0; i < chunks.length; i += BATCH_SIZE)
    for (const e of await tok.encodeBatch(chunks.slice(i, i + BATCH_SIZE))) batchTokens += e.getIds().length;
const batchSeconds = (performance.now() - t0) / 1000;

console.log(JSON.stringify({
    impl: 'hf',
    chunks: chunks.length,
    bytes,
    tokens,
    encode_s: encodeSeconds,
    mb_per_s: bytes / 1e6 / encodeSeconds,
    batch_tokens: batchTokens,
    batch_mb_per_s: bytes / 1e6 / batchSeconds,
    batch_threads: availableParallelism(),
    load_s: Math.min(...loadTimes),
    load_s_all: loadTimes,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
}));
