// tokenizer_equiv: checks that `axllama tokenize` gives exactly the ids (and, with --decode, the
// text) of the Hugging Face `tokenizers` library (@anush008/tokenizers addon) for every string of
// the corpus in corpus.mjs, and that the CLI fails cleanly on bad input. The CLI runs once per
// direction with all strings as JSON Lines. Mismatches are printed (first 20) and all of them
// written to $AXLLAMA_BUILD/equiv-mismatches-<kind>.txt (removed when there are none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@anush008/tokenizers';

import { Rng, buildCorpus, defaultTokenizerDir, readAddedTokens } from './corpus.mjs';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const buildDir = process.env.AXLLAMA_BUILD || join(repoRoot, 'build');
const tokenizerDir = defaultTokenizerDir();
const tokenizerJson = join(tokenizerDir, 'tokenizer.json');
const cliPath = join(buildDir, 'axllama');
const mismatchDir = process.env.AXLLAMA_EQUIV_MISMATCH_DIR || buildDir;
const CLI_TIMEOUT_MS = 40_000;
const SHOW_MISMATCHES = 20;
const MIN_CORPUS = 2000;

// ---------------------------------------------------------------------------------------------
// helpers

function runCli(args, input, timeoutMs = CLI_TIMEOUT_MS) {
    const r = spawnSync(cliPath, args, { input, timeout: timeoutMs, maxBuffer: 1 << 30 });
    if (r.error && r.error.code === 'ETIMEDOUT') throw new Error(`axllama ${args.join(' ')} timed out after ${timeoutMs} ms`);
    // EPIPE: the CLI exited without reading all of stdin (e.g. it failed at once): not our error
    if (r.error && r.error.code !== 'EPIPE') throw r.error;
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

// Runs the CLI on JSON Lines made from objects; returns the parsed output objects (one per input).
function runCliJsonLines(args, objects) {
    const input = objects.map((o) => JSON.stringify(o) + '\n').join('');
    const r = runCli(args, input);
    assert.equal(r.signal, null, `axllama ${args.join(' ')} was killed by ${r.signal}; stderr: ${r.stderr}`);
    assert.equal(r.status, 0, `axllama ${args.join(' ')} exited ${r.status}; stderr: ${r.stderr}`);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(r.stdout);
    const lines = text.split('\n');
    assert.equal(lines.pop(), '', 'output must end with a newline');
    assert.equal(lines.length, objects.length, `expected ${objects.length} output lines, got ${lines.length}`);
    return lines.map((line, i) => {
        try {
            return JSON.parse(line);
        } catch (e) {
            throw new Error(`output line ${i + 1} is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
        }
    });
}

// A string as a JS/JSON literal in which every invisible, combining, space-like or NFC-unstable
// character is escaped (\uXXXX or \u{XXXXX}), so a report shows exactly what was encoded.
function literal(s) {
    let out = '';
    for (const c of JSON.stringify(s).slice(1, -1)) {
        const cp = c.codePointAt(0);
        const visible = cp < 0x7f || (/^[\p{L}\p{N}\p{P}\p{S}]$/u.test(c) && c.normalize('NFC') === c && !/^\p{M}$/u.test(c));
        out += visible ? c : cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
    }
    return `"${out}"`;
}

const clip = (s, n = 300) => (s.length > n ? `${s.slice(0, n)}… (${s.length} UTF-16 units)` : s);

function firstDifference(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return a.length === b.length ? -1 : n;
}

function idWindow(ids, at, tok) {
    const lo = Math.max(0, at - 3);
    const part = ids.slice(lo, at + 5);
    const tokens = part.map((id) => tok.idToToken(id));
    return `${lo > 0 ? '… ' : ''}${JSON.stringify(part)} ${JSON.stringify(tokens)}${at + 5 < ids.length ? ' …' : ''}`;
}

// Writes all mismatches to a file (or removes a stale one) and returns the assertion message.
function reportMismatches(kind, mismatches, total) {
    const mismatchFile = join(mismatchDir, `equiv-mismatches-${kind.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '')}.txt`);
    if (mismatches.length === 0) {
        rmSync(mismatchFile, { force: true });
        return '';
    }
    const text = mismatches.map((m) => m.full).join('\n\n');
    writeFileSync(mismatchFile, `${kind}: ${mismatches.length} of ${total} differ\n\n${text}\n`);
    const shown = mismatches.slice(0, SHOW_MISMATCHES).map((m) => m.short).join('\n');
    return `${kind}: ${mismatches.length} of ${total} strings differ from HF (all in ${mismatchFile}); first ${Math.min(SHOW_MISMATCHES, mismatches.length)}:\n${shown}`;
}

// ---------------------------------------------------------------------------------------------
// shared state, computed once

let referencePromise;
function reference() {
    referencePromise ??= (async () => {
        assert.ok(existsSync(tokenizerJson), `no ${tokenizerJson}: run scripts/fetch-tokenizer.sh or set AXLLAMA_TOKENIZER_DIR`);
        const tok = Tokenizer.fromFile(tokenizerJson);
        const { corpus, curatedCount } = buildCorpus({ addedTokens: readAddedTokens(tokenizerJson) });
        const ids = [];
        for (const text of corpus) ids.push((await tok.encode(text)).getIds());
        return { tok, corpus, curatedCount, ids };
    })();
    return referencePromise;
}

function assertCliBuilt() {
    assert.ok(existsSync(cliPath), `${cliPath} does not exist: run make (or set AXLLAMA_BUILD)`);
}

// The single byte-level character of each byte 0..255 (GPT-2 bytes_to_unicode).
function byteLevelChars() {
    const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const chars = new Array(256);
    let next = 256;
    for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable(b) ? b : next++);
    return chars;
}

// ---------------------------------------------------------------------------------------------
// tests

test('corpus has at least 2000 strings (>= 300 curated with every added token, >= 2200 random), deterministic', async () => {
    const { corpus, curatedCount } = await reference();
    assert.ok(corpus.length >= MIN_CORPUS, `corpus has ${corpus.length} strings, want >= ${MIN_CORPUS}`);
    assert.ok(curatedCount >= 300, `only ${curatedCount} curated strings`);
    assert.ok(corpus.length - curatedCount >= 2200, `only ${corpus.length - curatedCount} random strings`);
    assert.ok(corpus.some((s) => Buffer.byteLength(s) >= 50 * 1024), 'no 50 KB string');
    assert.ok(corpus.includes(''), 'no empty string');
    for (const { content } of readAddedTokens(tokenizerJson)) {
        assert.ok(corpus.includes(content), `added token ${content} is not in the corpus alone`);
        assert.ok(corpus.includes(`a${content}b`), `added token ${content} is not in the corpus inside text`);
    }
    const again = buildCorpus({ addedTokens: readAddedTokens(tokenizerJson) }).corpus;
    assert.deepEqual(again, corpus, 'two builds of the corpus differ');
});

test('encode: axllama tokenize gives the HF ids for every corpus string', async () => {
    const { tok, corpus, ids: hfIds } = await reference();
    assertCliBuilt();
    const out = runCliJsonLines(['tokenize', '--tokenizer', tokenizerDir], corpus.map((text) => ({ text })));
    const mismatches = [];
    for (let i = 0; i < corpus.length; i++) {
        const ours = out[i].ids;
        if (!Array.isArray(ours)) {
            mismatches.push({ short: `#${i} ${literal(clip(corpus[i]))}: output has no ids array: ${JSON.stringify(out[i]).slice(0, 200)}`,
                full: `#${i} text=${literal(corpus[i])}\n  output=${JSON.stringify(out[i])}` });
            continue;
        }
        const at = firstDifference(hfIds[i], ours);
        if (at < 0) continue;
        mismatches.push({
            short: `#${i} ${literal(clip(corpus[i]))}\n    first difference at index ${at} (HF ${hfIds[i].length} ids, axllama ${ours.length})\n` +
                `    HF:      ${idWindow(hfIds[i], at, tok)}\n    axllama: ${idWindow(ours, at, tok)}`,
            full: `#${i} text=${literal(corpus[i])}\n  first difference at index ${at}\n  hf=${JSON.stringify(hfIds[i])}\n  axllama=${typeof ours === 'string' ? literal(ours) : JSON.stringify(ours)}`,
        });
    }
    assert.equal(mismatches.length, 0, reportMismatches('encode', mismatches, corpus.length));
});

test('decode: axllama tokenize --decode of the HF ids gives HF decode(ids, false), the NFC original', async () => {
    const { tok, corpus, ids: hfIds } = await reference();
    assertCliBuilt();
    const hfText = await tok.decodeBatch(hfIds, false);
    const out = runCliJsonLines(['tokenize', '--tokenizer', tokenizerDir, '--decode'], hfIds.map((ids) => ({ ids })));
    const mismatches = [];
    let nfcRoundTrips = 0;
    for (let i = 0; i < corpus.length; i++) {
        const ours = out[i].text;
        const nfc = corpus[i].normalize('NFC');
        if (hfText[i] === nfc) nfcRoundTrips++;
        if (ours === hfText[i]) continue;
        mismatches.push({
            short: `#${i} ids=${JSON.stringify(hfIds[i].slice(0, 20))}${hfIds[i].length > 20 ? '…' : ''}\n` +
                `    HF:      ${literal(clip(hfText[i]))}\n    axllama: ${typeof ours === 'string' ? literal(clip(ours)) : JSON.stringify(out[i])}`,
            full: `#${i} ids=${JSON.stringify(hfIds[i])}\n  hf=${literal(hfText[i])}\n  axllama=${typeof ours === 'string' ? literal(ours) : JSON.stringify(ours)}`,
        });
    }
    assert.equal(mismatches.length, 0, reportMismatches('decode', mismatches, corpus.length));
    // HF itself round-trips all but the strings where NFC would compose across an added token
    // (e.g. "<think>" + U+0338): the check above then also proves our round trip.
    assert.ok(nfcRoundTrips >= corpus.length - 100, `HF round-trips only ${nfcRoundTrips} of ${corpus.length} strings`);
});

test('decode: ids whose bytes are not valid UTF-8 decode like HF (U+FFFD replacement)', async () => {
    const { tok, corpus, curatedCount, ids: hfIds } = await reference();
    assertCliBuilt();
    const byteIds = byteLevelChars().map((c) => tok.tokenToId(c));
    assert.ok(byteIds.every((id) => Number.isInteger(id)), 'every byte has a single-byte token');
    const rng = new Rng(0xdec0de);
    const cases = [];
    // random byte strings biased to UTF-8 lead/continuation bytes and invalid ones
    const interesting = [0x41, 0x20, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1,
        0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xf8, 0xfe, 0xff];
    for (let i = 0; i < 600; i++) {
        const ids = [];
        for (let n = rng.int(1, 10); n > 0; n--) ids.push(byteIds[rng.chance(0.8) ? rng.pick(interesting) : rng.int(0, 255)]);
        if (rng.chance(0.2)) ids.splice(rng.int(0, ids.length), 0, 151645); // an added token in between
        cases.push(ids);
    }
    // prefixes and suffixes of real encodings, cut where a character's bytes span tokens
    for (let i = 0; i < corpus.length && cases.length < 1600; i += 1 + (i >= curatedCount ? 3 : 0)) {
        const ids = hfIds[i];
        if (ids.length < 2) continue;
        const cut = rng.int(1, ids.length - 1);
        cases.push(ids.slice(0, cut), ids.slice(cut));
    }
    const hfText = await tok.decodeBatch(cases, false);
    assert.ok(hfText.filter((t) => t.includes('\ufffd')).length >= 300, 'too few cases exercise U+FFFD');
    const out = runCliJsonLines(['tokenize', '--tokenizer', tokenizerDir, '--decode'], cases.map((ids) => ({ ids })));
    const mismatches = [];
    for (let i = 0; i < cases.length; i++) {
        if (out[i].text === hfText[i]) continue;
        mismatches.push({
            short: `ids=${JSON.stringify(cases[i].slice(0, 20))}${cases[i].length > 20 ? '…' : ''}\n` +
                `    HF:      ${literal(clip(hfText[i]))}\n    axllama: ${typeof out[i].text === 'string' ? literal(clip(out[i].text)) : JSON.stringify(out[i])}`,
            full: `ids=${JSON.stringify(cases[i])}\n  hf=${literal(hfText[i])}\n  axllama=${typeof out[i].text === 'string' ? literal(out[i].text) : JSON.stringify(out[i])}`,
        });
    }
    assert.equal(mismatches.length, 0, reportMismatches('decode (invalid UTF-8)', mismatches, cases.length));
});

// A failing run: exit status non-zero (not a crash), and something on stderr.
function assertCleanFailure(r, what, pattern) {
    assert.equal(r.signal, null, `${what}: killed by ${r.signal} (crash?); stderr: ${r.stderr}`);
    assert.notEqual(r.status, 0, `${what}: exit status 0`);
    assert.match(r.stderr, /\S/, `${what}: nothing on stderr`);
    if (pattern) assert.match(r.stderr, pattern, `${what}: stderr does not say what is wrong: ${r.stderr}`);
}

test('CLI errors: malformed input lines, a missing tokenizer dir and missing arguments fail with a message', () => {
    assertCliBuilt();
    const encode = ['tokenize', '--tokenizer', tokenizerDir];
    const decode = [...encode, '--decode'];
    const badLines = [
        [encode, '{"text": "ok"}\nnot json\n'],
        [encode, '{"text": "ok"}\n{"text": "unterminated\n'],
        [encode, '{"text": "ok"}\n{"text": 5}\n'],
        [encode, '{"text": "ok"}\n{"ids": [1, 2]}\n'],
        [encode, '{"text": "ok"}\n["text"]\n'],
        [decode, '{"ids": [9707]}\n{"ids": "9707"}\n'],
        [decode, '{"ids": [9707]}\n{"ids": [1, "x"]}\n'],
        [decode, '{"ids": [9707]}\n{"text": "hi"}\n'],
        [decode, '{"ids": [9707]}\n{"ids": [9999999]}\n'],
        [decode, '{"ids": [9707]}\n{"ids": [-1]}\n'],
    ];
    for (const [args, input] of badLines) {
        const r = runCli(args, input, 15_000);
        assertCleanFailure(r, `${args.slice(3).join(' ') || 'encode'} of ${JSON.stringify(input)}`, /line\s*2\b|:2\b/i);
    }
    const missing = join(buildDir, 'no-such-tokenizer-dir');
    assertCleanFailure(runCli(['tokenize', '--tokenizer', missing], '{"text": "x"}\n', 15_000),
        'missing tokenizer dir', /no-such-tokenizer-dir|tokenizer/i);
    assertCleanFailure(runCli(['tokenize'], '{"text": "x"}\n', 15_000), 'no --tokenizer', /tokenizer|usage/i);
    // and the good case exits 0 with the ids (guards against a CLI that always fails)
    const ok = runCli(encode, '{"text": "Hello world"}\n', 15_000);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout.toString('utf8')).ids, [9707, 1879]);
});
