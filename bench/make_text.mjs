// make_text: writes the tokenizer benchmark's input, about 10 MB of mixed text as JSON Lines
// ({"text": chunk} per line, chunks of a few hundred bytes to a few KB), deterministically from
// the segment pools of tests/equiv/corpus.mjs: English-like prose (most of it, as in real
// prompts), other-language prose, code, markdown, chat transcripts with added tokens, and random
// mixes. Usage: node bench/make_text.mjs OUT.jsonl [MEGABYTES]
import { writeFileSync } from 'node:fs';

import { CODE, CONTRACTION_WORDS, MARKDOWN, NUMBERS, PUNCTUATION, Rng, SENTENCES, URLS, WORDS,
    readAddedTokens, randomText } from '../tests/equiv/corpus.mjs';

const [outPath, megabytesArg] = process.argv.slice(2);
if (!outPath) {
    console.error('usage: node bench/make_text.mjs OUT.jsonl [MEGABYTES]');
    process.exit(2);
}
const targetBytes = Math.round(Number(megabytesArg ?? 10) * 1e6);
const addedTexts = readAddedTokens().map((t) => t.content);
const rng = new Rng(0xbe9c4);

const english = [...WORDS.english, 'model', 'token', 'server', 'request', 'response', 'time', 'people', 'year',
    'would', 'could', 'about', 'which', 'their', 'there', 'other', 'these', 'first', 'after', 'because',
    'between', 'through', 'during', 'without', 'important', 'information', 'system', 'program', 'question'];

function proseEnglish(bytes) {
    let s = '';
    while (s.length < bytes) {
        let sentence = '';
        for (let n = rng.int(4, 22); n > 0; n--) {
            const w = rng.chance(0.05) ? rng.pick(CONTRACTION_WORDS) : rng.chance(0.04) ? rng.pick(NUMBERS) : rng.pick(english);
            sentence += (sentence ? ' ' : '') + w;
            if (rng.chance(0.08)) sentence += ',';
            else if (rng.chance(0.02)) sentence += rng.pick(PUNCTUATION);
        }
        s += sentence.charAt(0).toUpperCase() + sentence.slice(1) + rng.pick(['.', '.', '.', '?', '!', ':']) +
            (rng.chance(0.15) ? '\n\n' : ' ');
    }
    return s;
}

function proseOther(bytes) {
    const scripts = Object.keys(WORDS).filter((k) => k !== 'english');
    const script = rng.pick(scripts);
    const cjk = script === 'chinese' || script === 'japanese';
    let s = '';
    while (Buffer.byteLength(s) < bytes) {
        if (rng.chance(0.2)) s += rng.pick(SENTENCES) + ' ';
        else s += rng.pick(WORDS[script]) + (cjk ? (rng.chance(0.1) ? rng.pick(['。', '、', '，']) : '') : ' ');
        if (rng.chance(0.03)) s += '\n';
    }
    return s;
}

function code(bytes) {
    let s = '';
    while (s.length < bytes) s += rng.pick(CODE) + (rng.chance(0.3) ? '\n' : '');
    return s;
}

function markdown(bytes) {
    let s = '';
    while (s.length < bytes) s += rng.chance(0.6) ? rng.pick(MARKDOWN) : proseEnglish(200) + '\n' + rng.pick(URLS) + '\n';
    return s;
}

function chat(bytes) {
    let s = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n';
    while (s.length < bytes) {
        s += `<|im_start|>user\n${proseEnglish(rng.int(40, 300))}<|im_end|>\n<|im_start|>assistant\n`;
        s += rng.chance(0.5) ? `<think>\n${proseEnglish(rng.int(50, 400))}\n</think>\n\n` : '<think>\n\n</think>\n\n';
        if (rng.chance(0.2)) s += '<tool_call>\n{"name": "search", "arguments": {"q": "weather"}}\n</tool_call>';
        else s += proseEnglish(rng.int(50, 500));
        s += '<|im_end|>\n';
    }
    return s;
}

function mixed(bytes) {
    let s = '';
    while (Buffer.byteLength(s) < bytes) s += randomText(rng, addedTexts, rng.int(50, 400)) + rng.pick([' ', '\n', '']);
    return s;
}

const makers = { english: [proseEnglish, 45], other: [proseOther, 20], code: [code, 12], markdown: [markdown, 5],
    chat: [chat, 8], mixed: [mixed, 10] };
const weights = Object.fromEntries(Object.entries(makers).map(([k, [, w]]) => [k, w]));

const lines = [];
let total = 0;
while (total < targetBytes) {
    const size = rng.chance(0.7) ? rng.int(200, 1500) : rng.int(1500, 6000);
    const text = makers[rng.weighted(weights)][0](size);
    total += Buffer.byteLength(text);
    lines.push(JSON.stringify({ text }));
}
writeFileSync(outPath, lines.join('\n') + '\n');
console.error(`make_text: ${lines.length} chunks, ${(total / 1e6).toFixed(2)} MB of text in ${outPath}`);
