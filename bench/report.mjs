// report: reads the JSON lines bench/run.sh collected (tokenizer_bench and hf_tokenizer_bench,
// several alternated rounds), prints medians side by side with the goals and their verdicts, and
// exits 1 if the two tokenizers' total token counts differ (a correctness failure, not a goal).
// Usage: node bench/report.mjs RESULTS.jsonl
import { readFileSync } from 'node:fs';

const GOAL_RATIO = 1.0;
const GOAL_LOAD_S = 0.3;
const GOAL_RSS_MIB = 64;

const results = readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
const ours = results.filter((r) => r.impl === 'axllama');
const hf = results.filter((r) => r.impl === 'hf');
if (ours.length === 0 || hf.length === 0) {
    console.error('report: need results from both axllama and hf');
    process.exit(1);
}

const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const med = (rs, key) => median(rs.map((r) => r[key]));
const verdict = (ok) => (ok ? 'PASS' : 'FAIL');

const oursMBs = med(ours, 'mb_per_s');
const hfMBs = med(hf, 'mb_per_s');
const ratio = oursMBs / hfMBs;
const oursLoad = med(ours, 'load_s');
const oursRss = Math.max(...ours.map((r) => r.peak_rss_mib));
const tokenCounts = new Set([...ours.map((r) => r.tokens), ...hf.map((r) => r.tokens), ...hf.map((r) => r.batch_tokens)]);
const tokensEqual = tokenCounts.size === 1;
const bytes = ours[0].bytes;

const rows = [
    ['', 'axllama', 'HF tokenizers', 'goal', 'verdict'],
    ['encode MB/s, 1 thread (median)', oursMBs.toFixed(2), hfMBs.toFixed(2), '', ''],
    ['ratio axllama / HF', ratio.toFixed(2), '', `>= ${GOAL_RATIO.toFixed(1)}`, verdict(ratio >= GOAL_RATIO)],
    ['load time, best of N (median)', `${oursLoad.toFixed(3)} s`, `${med(hf, 'load_s').toFixed(3)} s`, `< ${GOAL_LOAD_S} s`, verdict(oursLoad < GOAL_LOAD_S)],
    ['peak RSS (max over rounds)', `${oursRss.toFixed(1)} MiB`, `${med(hf, 'peak_rss_mib').toFixed(1)} MiB*`, `< ${GOAL_RSS_MIB} MiB`, verdict(oursRss < GOAL_RSS_MIB)],
    ['RSS after load (median)', `${med(ours, 'rss_after_load_mib').toFixed(1)} MiB`, '', '', ''],
    ['total tokens', String(ours[0].tokens), String(hf[0].tokens), 'equal', verdict(tokensEqual)],
    ['HF encodeBatch MB/s (extra)', '', `${med(hf, 'batch_mb_per_s').toFixed(2)} (${hf[0].batch_threads} threads)`, '', ''],
];
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log(`tokenizer bench: ${ours[0].chunks} chunks, ${(bytes / 1e6).toFixed(2)} MB, ${ours.length} rounds each (alternated)`);
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
console.log('* HF RSS is the whole node process, including the text it holds');
if (!tokensEqual) {
    console.error(`bench: token totals differ: axllama ${ours.map((r) => r.tokens).join(',')}, HF ${hf.map((r) => r.tokens).join(',')}, HF batch ${hf.map((r) => r.batch_tokens).join(',')}`);
    process.exit(1);
}
