// corpus: the deterministic test corpus for the HF-equivalence test of the tokenizer, and the
// segment pools bench/make_text.mjs reuses. buildCorpus() returns curated edge cases (added
// tokens, whitespace, digits, contractions, scripts, normalisation, emoji, control characters,
// code, very long inputs) followed by seeded random mixes of segments. No Math.random: the same
// seed always gives the same strings. Every string is well-formed UTF-16 (no lone surrogates).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_SEED = 0x5eed2025;
export const DEFAULT_RANDOM_COUNT = 2400;
export const RANDOM_MAX_CHARS = 400;

export function defaultTokenizerDir() {
    return process.env.AXLLAMA_TOKENIZER_DIR || join(homedir(), '.cache', 'axllama', 'tokenizers', 'qwen3');
}

// The added tokens of a tokenizer.json: [{id, content, special}], in file order.
export function readAddedTokens(tokenizerJsonPath = join(defaultTokenizerDir(), 'tokenizer.json')) {
    const json = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8'));
    return json.added_tokens.map((t) => ({ id: t.id, content: t.content, special: t.special }));
}

// mulberry32: a small seeded 32-bit PRNG.
export class Rng {
    constructor(seed) {
        this.state = seed >>> 0;
    }
    next() {
        this.state = (this.state + 0x6d2b79f5) >>> 0;
        let t = this.state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }
    // integer in [lo, hi]
    int(lo, hi) {
        return lo + Math.floor(this.next() * (hi - lo + 1));
    }
    pick(array) {
        return array[Math.floor(this.next() * array.length)];
    }
    chance(p) {
        return this.next() < p;
    }
    // picks a key of {key: weight}
    weighted(weights) {
        const entries = Object.entries(weights);
        let total = 0;
        for (const [, w] of entries) total += w;
        let x = this.next() * total;
        for (const [k, w] of entries) {
            x -= w;
            if (x < 0) return k;
        }
        return entries[entries.length - 1][0];
    }
}

const range = (lo, hi) => {
    const out = [];
    for (let c = lo; c <= hi; c++) out.push(String.fromCodePoint(c));
    return out;
};
const repeat = (s, n) => s.repeat(n);
// First n code points of s (never splits a surrogate pair).
export function takeCodePoints(s, n) {
    return Array.from(s).slice(0, n).join('');
}

// ---------------------------------------------------------------------------------------------
// Segment pools (also used by bench/make_text.mjs).

export const WORDS = {
    english: ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'Hello', 'world', 'tokenizer',
        'encoding', 'The', 'A', 'I', 'is', 'was', 'of', 'and', 'to', 'in', 'that', 'it', 'for', 'with', 'as',
        'internationalization', 'antidisestablishmentarianism', 'HTTP', 'JSON', 'NPU', 'axllama', 'Qwen3',
        'GPU', 'OpenAI', 'iPhone', 'McDonald', 'camelCase', 'snake_case', 'kebab-case', 'SCREAMING_CASE',
        'e-mail', 'co-operate', 'naive', 'résumé', 'Mr.', 'U.S.A.', 'etc.', 'i.e.', 'vs.'],
    latinAccented: ['café', 'naïve', 'Ångström', 'façade', 'coöperate', 'Straße', 'STRASSE', 'Œuvre', 'ĳssel',
        'Øresund', 'łódź', 'Dvořák', 'İstanbul', 'ıi', 'ǅemal', 'ǈ', 'Ǳ', 'ﬁne', 'ﬂow', 'ﬀ', 'ﬃ', 'ﬆ',
        'Ærøskøbing', 'señor', 'São', 'Việt', 'Nguyễn', 'Đặng', 'Hàn', 'ꝏ', 'ʃʒŋ', 'ɐɔə', 'Ⅻ'],
    cyrillic: ['Привет', 'мир', 'ёжик', 'Ёлка', 'щука', 'ЪЫЬ', 'Ђорђе', 'Україна', 'їжак', 'Қазақ', 'Өөр',
        'съешь', 'ещё', 'этих', 'мягких', 'французских', 'булок'],
    greek: ['Καλημέρα', 'κόσμε', 'ΆΈΉΊΌΎΏ', 'ςσΣ', 'ϐϑϕ', 'ἀρχή', 'ᾨδή', 'Ἑλλάς', 'ΐΰ', 'λόγος'],
    chinese: ['你好', '世界', '分词器', '中华人民共和国', '繁體中文', '的', '是', '人工智能', '大语言模型',
        '我们今天去哪里吃饭', '龘', '𠀀', '𪚥', '〇', '丶'],
    japanese: ['こんにちは', 'カタカナ', 'ｶﾀｶﾅ', 'ﾊﾟﾋﾟﾌﾟ', '日本語', 'ー', '々', 'ゐゑ', 'ヴ', 'が', 'か\u3099',
        'トークナイザー', 'ひらがな', '東京都', 'ぁぃぅ'],
    korean: ['안녕하세요', '한국어', 'ㄱㄴㄷ', 'ㅏㅑㅓ', '똠방각하', '읽다', '샾', '\u1100\u1161\u11a8',
        '\u1112\u1161\u11ab\u1100\u1173\u11af', '가\u11a8'],
    arabic: ['مرحبا', 'العالم', 'ـــ', 'مُحَمَّد', 'ﻻ', 'ﷺ', 'ﷲ', 'سَلَامٌ', 'كتاب', 'فارسی', 'اردو', 'پچژگ'],
    hebrew: ['שלום', 'עולם', 'שָׁלוֹם', 'ﬠ', 'יִ', 'ﬔ', 'בְּרֵאשִׁית'],
    thai: ['สวัสดี', 'ภาษาไทย', 'กรุงเทพมหานคร', 'น้ำ', 'ฯลฯ', 'ๆ', 'เก้า'],
    devanagari: ['नमस्ते', 'हिन्दी', 'क़', 'ज़िंदगी', 'संस्कृतम्', 'ॐ', 'क्ष', 'श्री'],
    otherScripts: ['বাংলা', 'தமிழ்', 'తెలుగు', 'ಕನ್ನಡ', 'മലയാളം', 'ગુજરાતી', 'ਪੰਜਾਬੀ', 'ქართული',
        'Հայերեն', 'ሰላም', 'ភាសាខ្មែរ', 'ພາສາລາວ', 'བོད་ཡིག', 'ᠮᠣᠩᠭᠣᠯ', 'ᏣᎳᎩ', 'ᐃᓄᒃᑎᑐᑦ', 'ܐܪܡܝܐ',
        'ދިވެހި', 'ꦗꦮ', 'မြန်မာ', 'සිංහල', '𝐇𝐞𝐥𝐥𝐨', '𝔉𝔯𝔞𝔨𝔱𝔲𝔯', '𝕆𝕡𝕖𝕟', '𐌰𐌱𐌲', '𐌀𐌁𐌂', 'ⲁⲃⲅ', 'ᚠᚢᚦ'],
};

export const DIGITS = {
    ascii: range(0x30, 0x39),
    fullwidth: range(0xff10, 0xff19),
    arabicIndic: range(0x660, 0x669),
    extArabicIndic: range(0x6f0, 0x6f9),
    devanagari: range(0x966, 0x96f),
    bengali: range(0x9e6, 0x9ef),
    thai: range(0xe50, 0xe59),
    other: ['²', '³', '¹', '⁴', '₀', '₉', '½', '¾', '⅓', 'Ⅰ', 'Ⅻ', 'ⅻ', '①', '⑳', '❶', '〇', '〡', '𝟎', '𝟙', '𝟡',
        '፩', '߃', '๓', '༣', '៣', '᠓', '𑁧'],
};

export const NUMBERS = ['0', '7', '42', '100', '2024', '65536', '3.14159', '1,000,000', '1.000.000,00', '-17',
    '+1', '1e-9', '6.02e23', '0x1F', '0xDEADBEEF', '0b1010', '0o777', 'v2.0.1', '2024-01-15', '12:34:56',
    '1/2', '50%', '$9.99', '€10', '¥500', '£3', '₹100', '#1', 'No.5', '3rd', '21st', '4K', '1080p', 'x86_64',
    'ISO-8859-1', 'B2B', 'H2O', 'CO2', 'mp3', 'a1b2c3', '1a2b3c', 'abc123def', '123abc', 'R2D2', 'COVID19',
    '12345678901234567890', '3.141592653589793238462643383279', '٣', '४', '٣٤٥', '४२', '１２３', '３a',
    '१२३४५', '٠١٢٣٤٥٦٧٨٩', '๑๒๓', '①②③'];

export const PUNCTUATION = ['.', ',', '!', '?', ';', ':', '...', '…', '—', '–', '-', '«', '»', '“', '”', '‘', '’',
    '"', "'", '「', '」', '『', '』', '。', '、', '！', '？', '，', '：', '¿', '¡', '§', '¶', '@', '#', '$', '%',
    '^', '&', '*', '(', ')', '[', ']', '{', '}', '<', '>', '|', '\\', '/', '~', '`', '+', '=', '_', '::',
    '->', '=>', '!=', '&&', '||', '//', '/*', '*/', '<!--', '-->', '```', '***', '---', '•', '·', '°', '±',
    '×', '÷', '∞', '≠', '≤', '≥', '√', '∑', '∫', '→', '←', '⇒', '♥', '★', '©', '®', '™', '‰', '′', '″',
    '\u037e', '\u0387', '।', '॥', '؟', '،', '־', '׃', '๏', '჻', '〜', '・', '〃'];

export const EMOJI = ['😀', '😂', '🤔', '🙏', '👍', '👍🏻', '👍🏽', '👍🏿', '🏻', '🏿', '👨‍👩‍👧‍👦', '👩‍💻',
    '🧑🏿‍🚀', '👩‍❤️‍💋‍👨', '🏳️‍🌈', '🏴‍☠️', '🇯🇵', '🇺🇸', '🇩🇪', '🇺', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '1️⃣', '#️⃣', '*️⃣',
    '9\u20e3', '❤️', '❤', '☺️', '☺\ufe0e', '✌🏼', '🫠', '🥲', '🦀', '🐍', '🚀', '✅', '❌', '⚠️', '🔥',
    '💯', '🎉', '\u{1f469}\u200d\u{1f52c}', '🤷‍♀️', '🙇🏾‍♂️'];

export const WHITESPACE = [' ', '  ', '   ', '    ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n',
    '\r', '\r\r\n', '\n\r', ' \n', '  \n', '\t\n', ' \r\n', '\n ', '\n    ', '\n\t', '\u000b', '\u000c',
    '\u00a0', '\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007',
    '\u2008', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\u0085', '\u180e',
    '\ufeff', '\u200b'];

export const CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'Ve", "'m",
    "'M", "'ll", "'LL", "'Ll", "'lL", "'d", "'D", '’s', '’ll', '’T', "'ſ", "'ſt", "'\u212a", "'K", "'ﬆ",
    "'Ｓ", "'İ", "'ß", "'ẞ", "'ﬅ", "'\u1e9b", "'x", "'", "''", "'s's", "'lls", "'dd", "'tis", "'em", "'re'", " 's", "\"s"];

export const CONTRACTION_WORDS = ["don't", "DON'T", "Don'T", "I'm", "I'M", "you're", "YOU'RE", "we've",
    "WE'VE", "she'll", "SHE'LL", "he'd", "HE'D", "it's", "IT'S", "it’s", "they’re", "can't", "won't",
    "y'all", "'tis", "rock'n'roll", "o'clock", "O'Neil", "ma'am", "l'homme", "aujourd'hui", "dell'arte",
    "Jones's", "JONES'S", "boss'", "9's", "1990's", "'90s", "x'll", "ſ's", "'s'", "''s", "'''ll", "' s",
    "'\ns", "’ſ"];

export const COMBINING = ['e\u0301', 'E\u0301', 'a\u0308', 'o\u0302\u0301', 'e\u0301\u0323', 'a\u0323\u0302',
    '\u0301', '\u0301\u0301', 'x\u0336\u0336\u0336', 'Z\u0351\u0346\u036b\u0310a\u0350\u0361l\u036f\u036eg\u0352o',
    'A\u030a', 'n\u0303', 'c\u0327', 'i\u0307', 'u\u0308\u0304', 'q\u0307\u0323', '\u1100\u1161',
    '\u1100\u1161\u11a8', '\u1112\u1161\u11ab', '가\u11a8', '\u3131\u314f', 'ᄀᄀᄀ', 'ᅡᅡ', 'ᆨᆨ', 'か\u3099',
    'ｶ\uff9e', '\u05e9\u05c1', '\u0915\u093c', 'ो', '\u0d4a', '\u0b48', '>\u0338', '<\u0338', '=\u0338',
    '\u212b', '\u2126', '\u212a', '\u0344', '\u0340', '\u0341', '\u0343', '\u0374', '\u037e', '\u0387',
    '\u1fef', '\u1fee', '\u2329', '\u232a', '\uf900', '\ufa10', '\u{2f800}', '\u0958', '\ufb1d', '\ufb2a',
    '\u2000', '\u2001', '\u1e9b\u0323', '\u0f73', '\u0f75', 'Å', 'Ω', 'K'];

export const INVISIBLE = ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u034f', '\u061c',
    '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068',
    '\u2069', '\ufe0e', '\ufe0f', '\u{e0100}', '\u{e0001}', '\u{e0041}', '\u180b', '\u{1d173}'];

export const CONTROL = [...range(0x00, 0x1f), '\u007f', ...range(0x80, 0x9f)];

export const SPECIALS = ['\ufffd', '\ufffc', '\ufffe', '\uffff', '\ue000', '\uf8ff', '\u{f0000}',
    '\u{10ffff}', '\u{1fffe}', '\u{e01ef}', '\u{10000}', '\u{1d11e}', '\u{20000}', '\u{2a6d6}'];

export const CODE = [
    'int main(void) {\n    printf("hello, world\\n");\n    return 0;\n}\n',
    'def f(x):\n    """Docstring."""\n    if x > 0:\n        return x ** 2\n    return -x\n',
    'for (let i = 0; i < n; i++) { sum += a[i]; }',
    'fn main() {\n\tlet v: Vec<u8> = vec![1, 2, 3];\n\tprintln!("{:?}", v);\n}',
    '#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do echo "$f"; done\n',
    'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;',
    '<div class="x"><a href="https://example.com/?a=1&amp;b=2">link</a></div>',
    '\\begin{equation} E = mc^2 \\end{equation}',
    '$\\frac{a}{b} + \\sqrt{x^2+y^2}$',
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    '{"a":[1,2,3],"b":{"c":null,"d":true,"e":"\\u00e9\\n"}}',
    'key: value\nlist:\n  - a\n  - b\n',
    '--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n-int x;\n+long x;\n',
    'x = [i for i in range(10) if i % 2 == 0]',
    'const re = /^(?:\\d{3}-)?\\d{4}$/u;',
    '    indented\n\tTabbed\n  \t mixed\n',
    'if (a&&b||!c) { x+=1; y-=2; z*=3; }',
    'std::vector<std::string> v{"a", "b"};',
    'console.log(`template ${x} literal`);',
    'ls -la /usr/local/bin | grep -v "^d" > /tmp/out.txt 2>&1',
];

export const URLS = ['https://example.com', 'https://example.com/path/to/page?q=1&x=%20y#frag',
    'http://[::1]:8080/', 'http://127.0.0.1:11434/api/chat', 'mailto:someone@example.org',
    'file:///C:/Windows/System32/drivers/etc/hosts', 'ftp://user:pass@host.example:21/dir/',
    'https://zh.wikipedia.org/wiki/中文', 'https://xn--n3h.example/', 'https://例え.jp/パス?キー=値',
    'www.google.com', 'git@github.com:owner/repo.git', 'C:\\Users\\me\\Documents\\file.txt', '/etc/passwd',
    '~/.cache/axllama/tokenizers/qwen3'];

export const MARKDOWN = ['# Title\n\n## Subtitle\n\nSome *emphasis* and **strong** text.\n',
    '- item 1\n- item 2\n  - nested\n\n1. first\n2. second\n',
    '```python\nprint("hi")\n```\n',
    '| a | b |\n|---|:-:|\n| 1 | 2 |\n',
    '> quote\n> more\n\n---\n\n[link](http://x.y/z) ![img](a.png) `code`',
    '<details>\n<summary>More</summary>\n\nHidden\n</details>\n',
    '* [ ] todo\n* [x] done\n',
    'Term\n: definition\n\nFootnote[^1].\n\n[^1]: Note.\n'];

export const SENTENCES = [
    'The quick brown fox jumps over the lazy dog.',
    "I'm sure you'll love it, won't you? We've been waiting; they'd said so.",
    'Large language models predict the next token given the previous ones.',
    '今天天气很好，我们去公园散步吧。',
    '東京は日本の首都です。今日はいい天気ですね。',
    '안녕하세요, 만나서 반갑습니다. 오늘 날씨가 좋네요.',
    'Съешь же ещё этих мягких французских булок, да выпей чаю.',
    'Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.',
    'مرحبا بالعالم! كيف حالك اليوم؟',
    'שלום עולם, מה שלומך?',
    'ภาษาไทยเป็นภาษาที่มีวรรณยุกต์',
    'नमस्ते दुनिया, आप कैसे हैं?',
    'Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.',
    'Portez ce vieux whisky au juge blond qui fume.',
    'El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío.',
    'Tôi có thể ăn thủy tinh mà không hại gì.',
    'Pchnąć w tę łódź jeża lub ośm skrzyń fig.',
    'Mixed 中文 and English, 日本語も, 한국어도 123 ٣٤٥ ४२ ok?',
];

// Random code-point ranges of long-assigned letters (Unicode ≤ 6), so random text does not depend
// on which Unicode version a library knows.
export const LETTER_RANGES = {
    latin: [0x61, 0x7a], latinUpper: [0x41, 0x5a], latin1: [0xe0, 0xff], latinExtA: [0x100, 0x17f],
    greek: [0x3b1, 0x3c9], cyrillic: [0x410, 0x44f], hebrew: [0x5d0, 0x5ea], arabic: [0x628, 0x64a],
    devanagari: [0x905, 0x939], thai: [0xe01, 0xe2e], hiragana: [0x3041, 0x3096], katakana: [0x30a1, 0x30fa],
    cjk: [0x4e00, 0x9fa5], hangul: [0xac00, 0xd7a3], georgian: [0x10d0, 0x10fa], armenian: [0x561, 0x586],
};

// A random segment for the mixes: kind chosen by weight.
export function randomSegment(rng, addedTexts) {
    const kind = rng.weighted({
        word: 30, sentence: 4, letters: 8, whitespace: 14, digits: 8, number: 5, punctuation: 9, emoji: 5,
        added: 5, addedPartial: 2, contraction: 5, combining: 4, invisible: 2, control: 1, special: 1,
        code: 2, url: 1, markdown: 1,
    });
    switch (kind) {
    case 'word': {
        const w = rng.pick(WORDS[rng.pick(Object.keys(WORDS))]);
        const r = rng.next();
        if (r < 0.1) return w.toUpperCase();
        if (r < 0.2) return w.toLowerCase();
        return w;
    }
    case 'sentence':
        return rng.pick(SENTENCES);
    case 'letters': {
        const [lo, hi] = LETTER_RANGES[rng.pick(Object.keys(LETTER_RANGES))];
        let s = '';
        for (let n = rng.int(1, 12); n > 0; n--) s += String.fromCodePoint(rng.int(lo, hi));
        return s;
    }
    case 'whitespace': {
        let s = '';
        for (let n = rng.int(1, 3); n > 0; n--) s += rng.pick(WHITESPACE).repeat(rng.chance(0.2) ? rng.int(2, 9) : 1);
        return s;
    }
    case 'digits': {
        const set = DIGITS[rng.pick(Object.keys(DIGITS))];
        let s = '';
        for (let n = rng.int(1, 14); n > 0; n--) s += rng.pick(set);
        return s;
    }
    case 'number':
        return rng.pick(NUMBERS);
    case 'punctuation': {
        let s = '';
        for (let n = rng.int(1, 4); n > 0; n--) s += rng.pick(PUNCTUATION);
        return s;
    }
    case 'emoji': {
        let s = '';
        for (let n = rng.int(1, 3); n > 0; n--) s += rng.pick(EMOJI);
        return s;
    }
    case 'added':
        return rng.pick(addedTexts);
    case 'addedPartial': {
        const t = rng.pick(addedTexts);
        const cut = rng.int(1, t.length - 1);
        return rng.chance(0.5) ? t.slice(0, cut) : t.slice(cut);
    }
    case 'contraction':
        return rng.chance(0.5) ? rng.pick(CONTRACTIONS) : rng.pick(CONTRACTION_WORDS);
    case 'combining':
        return rng.pick(COMBINING);
    case 'invisible':
        return rng.pick(INVISIBLE);
    case 'control':
        return rng.pick(CONTROL);
    case 'special':
        return rng.pick(SPECIALS);
    case 'code':
        return rng.pick(CODE);
    case 'url':
        return rng.pick(URLS);
    default:
        return rng.pick(MARKDOWN);
    }
}

// Random text of about maxChars code points (cut exactly at maxChars) built from segments joined
// by nothing, a space, or a newline.
export function randomText(rng, addedTexts, maxChars) {
    let s = '';
    let count = 0;
    while (count < maxChars) {
        const sep = rng.weighted({ none: 5, space: 8, newline: 1 });
        const seg = (sep === 'space' ? ' ' : sep === 'newline' ? '\n' : '') + randomSegment(rng, addedTexts);
        s += seg;
        count += Array.from(seg).length;
    }
    return count > maxChars ? takeCodePoints(s, maxChars) : s;
}

// ---------------------------------------------------------------------------------------------
// Curated edge cases.

function addedTokenCases(addedTexts) {
    const out = [];
    for (const t of addedTexts) {
        out.push(t, `a${t}b`, ` ${t} `, `${t}\n`, `\n${t}`, `${t}${t}`, `Hello ${t} world`, `${t}Hello`,
            `你好${t}世界`, `${t}\u0301`, `${t}\u0338`, `e${t}\u0301`, `<${t}>`, `<${t}`, `${t}>`, `${t}>\u0338`,
            `  ${t}  \n\n`, `${t.toUpperCase()}`, `${t.slice(0, -1)}`, `${t.slice(1)}`);
        for (let cut = 1; cut < t.length; cut++) out.push(t.slice(0, cut) + ' x');
    }
    const [first, second] = [addedTexts[0], addedTexts[1]];
    out.push(addedTexts.join(''), addedTexts.join(' '), addedTexts.join('\n'), first + second + first,
        '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n' +
            '<|im_start|>assistant\n<think>\n\n</think>\n\nHello! How can I help?<|im_end|>\n',
        '<|im_start|>assistant\n<think>\nThe user says hi. I should greet back.\n</think>\n\nHi!<|im_end|>',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        '<|im_start|>user\n<tool_response>\n{"temperature": 21}\n</tool_response><|im_end|>',
        '<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>return a + b',
        '<|repo_name|>axllama\n<|file_sep|>src/main.c\nint main(void);',
        '<|im_sta', '<|im_start', '<|im_start|', 'im_start|>', '|im_start|>', '<<|im_end|>>', '<|<|im_end|>|>',
        '<|im_<|im_end|>start|>', '<|im_start|im_end|>', '<|im_end|><|im_start|>', '<think><think>',
        '</think></think>', '<think></think>', '<thinkthink>', '<think>>', '<<think>', '</think>>', '< think>',
        '<think >', '<THINK>', '<Think>', '</ think>', '<|endoftext|><|endoftext|><|endoftext|>',
        '<|endoftext|>x<|endoftext|>', '<|endoftext', '<|box_start|><|box_end|>', '<tool_call></tool_call>',
        '<tool_call><tool_call>', '</tool_call>\n<tool_call>', '<|vision_start|><|image_pad|><|vision_end|>',
        '<|image_pad|>'.repeat(50), '<|im_end|>'.repeat(20) + 'x', '<\u0338|im_start|>', '<|im_start|\u0338>',
        '<|im_start|>\u0338', 'Å<|im_end|>\u030a', 'A<|im_end|>\u030a', '\u1100<think>\u1161',
        '<|im_start|>\r\n', '\r<|im_end|>\n', ' <|im_start|>  user', '<|fim_prefix|><|fim_middle|><|fim_suffix|>',
        '<|im_start|>\u00a0', "'<|im_end|>s", "<|im_end|>'s", '1<|im_end|>2', '<|im_end|>😀', '😀<|im_end|>');
    return out;
}

function whitespaceCases() {
    const out = [];
    const lengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 1000];
    const kinds = [' ', '\t', '\n', '\r\n', '\r', ' \n', '\u3000', '\u00a0', '\u2009'];
    for (const k of kinds)
        for (const n of lengths) {
            if (n > 65 && k !== ' ' && k !== '\n') continue;
            out.push(`a${k.repeat(n)}b`);
            if (n <= 17 || n === 256) out.push(k.repeat(n), `a${k.repeat(n)}`, `${k.repeat(n)}a`, `a${k.repeat(n)}.`);
        }
    out.push('\r\n', '\r', '\r\r\n', '\r\r\r', '\n\r', '\n\r\n\r', 'a\r\nb', 'a\rb', 'a\r\r\nb', 'line1\r\nline2\r\n',
        'a\n\n\nb', 'a \nb', 'a  \nb', 'a   \n   b', 'a\t\nb', 'a \t \n b', 'x  \r\n y', '   \n\n\n   ',
        'a \n\n \n', 'text   ', '   text', '   text   ', '\ttext\t', '\n\ntext\n\n', ' \u00a0 ', 'a \u00a0b',
        'a\u00a0 b', 'a\u00a0\u00a0b', '\u3000\u3000全角', 'a\u2028b', 'a\u2029b', 'a\u0085b', 'a\u180eb', 'a\ufeffb',
        '\ufeffBOM at start', 'a\u200bb', 'a\u000bb\u000cc', ' \u000b ', 'a \u2003 b', 'end.\n', 'end. \n',
        'end!  \r\n', '. \n\n', '!!!\n\n\n', '?\r\n\r\n', ' ?\n', '...\r', 'a.\n b', '\n \n \n', ' \t\n\t \n',
        'def f():\n    pass\n\n\n    \n', '  - item\n  - item\n');
    for (const w of ['\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007',
        '\u2008', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\u0085', '\u180e',
        '\ufeff', '\u00a0'])
        out.push(w, `a${w}b`, `a ${w}b`, `a${w} b`, `${w}${w}x`, `x${w}\n`, `${w}1`, `${w}!`);
    return out;
}

function digitCases() {
    const out = [...NUMBERS];
    for (const [name, set] of Object.entries(DIGITS)) {
        out.push(set.join(''), `x${set.join('')}y`, ` ${set.slice(0, 3).join('')}`, `${set[3]}a${set[4]}b`);
        if (name !== 'other') out.push(set.join('').repeat(12));
    }
    out.push('1'.repeat(1200), '1234567890'.repeat(10), 'a1'.repeat(50), '1a'.repeat(50), 'year 2024 and 1999',
        '٣ ४ ３ ๓', 'Version 1.2.3-beta+build.456', '+1 (555) 123-4567', '192.168.0.1', '::ffff:192.0.2.1',
        'ⅠⅡⅢⅣⅤ', 'x²+y²=z²', 'H₂O', '①②③④⑤', '½ cup', 'IPv6 2001:db8::1', '3️⃣ 4️⃣', '１２３ＡＢＣ');
    return out;
}

function contractionCases() {
    const out = [];
    for (const c of CONTRACTIONS) out.push(c, `it${c}`, `IT${c}`, `1${c}`, ` ${c}`, `${c}x`, `😀${c}`);
    out.push(...CONTRACTION_WORDS);
    out.push("I'M HERE AND YOU'LL SEE, WE'D BETTER GO. IT'S 'S 'LL 'VE 'RE 'M 'D 'T",
        "i'm here and you'll see, we'd better go. it's 's 'll 've 're 'm 'd 't",
        'He said ‘it’s fine’ and “we’ll see”.', "'s", "'S", "'ll", "'LL", '’s', '’S', "'ſ", "Kelvin \u212a and 'ſ",
        'ſtraße ſ ſs', '\u212aelvin', 'temperature 300\u212a', "'\u212a", '\u212a\u212a');
    return out;
}

function scriptCases() {
    const out = [...SENTENCES];
    for (const list of Object.values(WORDS)) {
        out.push(list.join(' '), list.join(''));
        for (const w of list) out.push(w);
    }
    for (const list of Object.values(WORDS)) out.push(` ${list[0]}`, `${list[0]}.`, `(${list[0]})`, `1${list[0]}`);
    return out;
}

function unicodeCases() {
    const out = [];
    for (const c of COMBINING) out.push(c, `x${c}y`, ` ${c}`, `${c}${c}`);
    for (const e of EMOJI) out.push(e, `a${e}b`, ` ${e}`, `${e}abc`, `${e}${e}`);
    for (const z of INVISIBLE) out.push(z, `a${z}b`, `${z}${z}`, ` ${z}a`);
    for (const c of CONTROL) out.push(c, `a${c}b`);
    for (const s of SPECIALS) out.push(s, `a${s}b`, ` ${s}`);
    out.push('\u0000', 'a\u0000b', '\u0000\u0000\u0000', 'nul\u0000 in\u0000 text');
    out.push('\ufffd', '\ufffd\ufffd', 'a\ufffdb', ' \ufffd', '\ufffd\n');
    out.push('e\u0301\u0301\u0301\u0301', 'a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309',
        '\u0301start', 'end\u0301', '\u0301\u0301\u0301', 'ḱṷṓn', 'Ǘ', 'U\u0308\u0301', 'ü\u0301', 'ǖ',
        'ệ', 'e\u0323\u0302', 'e\u0302\u0323', '\u05d1\u05bc\u05b0', '\u0627\u064b\u0651', 'ñ vs n\u0303');
    out.push('\u212b\u2126\u212a', 'Angstrom \u212b, ohm \u2126, kelvin \u212a', '\u0344\u0344', 'a\u0344b');
    // letters, digits and marks assigned in Unicode 14, 15 and 16 (tests that the character tables
    // are as recent as HF's Oniguruma)
    out.push('x\u{31350}y', 'x\u{11f04}y', 'x\u{1e4d0}y', 'x\u{10d50}y', 'x\u{11f50}y', 'x\u{1df00}y',
        'x\u{2ebf0}y', 'x\u{1b132}y', '\u{1fae8}', 'x\u0c5d y');
    // NFC across Unicode versions: HF's tables predate Unicode 13; utf8proc follows its own release.
    // A composition new in 13 (Dives Akuru), in 16 (Kirat Rai, Todhri, Tulu-Tigalari, Gurung Khema),
    // and combining marks new in 13 and 14 whose class makes canonical ordering move them.
    out.push('\u{11935}\u{11930}', 'x\u{11935}\u{11930}y', '\u{11938}', '\u{16d67}\u{16d67}', '\u{105d2}\u0307',
        '\u{113c2}\u{113c2}', '\u{1611e}\u{1611e}', 'x\u0301\u1abf', 'x\u0301\u1ac3', 'x\u0301\u0899',
        'a\u0301\u1abf', 'e\u0301\u{10f82}', 'x\u0301\u{1e4ee}', '\u0b47\u0b3e', '\u{11099}\u{110ba}',
        '\u{11347}\u{1133e}', '\u{114b9}\u{114ba}', '\u{115b8}\u{115af}', '\u{11131}\u{11127}',
        // HF's NFC tables are Unicode 9.0 (unicode-normalization-alignments 0.1.12): marks from 10, 11
        // and 12 that canonical ordering would move or that would block a composition
        'x\u1df6\u0301', 'x\u0301\u1df9', 'x\u0301\u07fd', 'x\u{10d24}\u0323', 'x\u{1e130}\u0323',
        'x\u0301\u0d3b', 'a\u1abf\u0301', 'a\u{1e130}\u0301', 'x\u{1e944}\u0323', 'a\u{1e944}\u0301');
    return out;
}

function textCases() {
    return [...CODE, ...URLS, ...MARKDOWN, '', ' ', '\n', 'a', 'A', '.', '0', '中', '😀', "'", '\t',
        '{"text": "nested \\"json\\"", "n": [1, 2.5e3, -0], "ok": false}',
        '[]', '{}', '""', '\\', '\\\\', '\\n', '\\u0000', '"', "''", '``', '<>', '</>', '<|', '|>', '<||>',
        'Ollama API: POST /api/chat {"model":"qwen3:4b","messages":[{"role":"user","content":"hi"}]}'];
}

function longCases(rng, addedTexts) {
    const out = [];
    out.push(repeat('a', 1000), repeat('ab', 600), repeat('abc', 400), repeat('A', 1500), repeat('é', 1100),
        repeat('中', 1500), repeat('あ', 1200), repeat('한', 1100), repeat('ب', 1100), repeat('.', 1000),
        repeat('-', 2000), repeat('=', 1000), repeat('!?', 600), repeat('😀', 500), repeat('👍🏽', 300),
        repeat(' ', 2000), repeat('\n', 1500), repeat('\t', 1000), repeat('\r\n', 600), repeat(' \n', 600),
        repeat('x ', 1000), repeat("'s", 600), repeat('1', 1500), repeat('e\u0301', 700),
        'pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(25), repeat('ab1', 500));
    let word = '';
    while (word.length < 3000) word += String.fromCodePoint(rng.int(0x61, 0x7a));
    out.push(word);
    let mixed = '';
    while (mixed.length < 1500) mixed += String.fromCodePoint(rng.int(0x4e00, 0x9fa5), rng.int(0x61, 0x7a));
    out.push(mixed);
    // one ~50 KB text
    let big = '';
    while (Buffer.byteLength(big) < 50 * 1024) big += randomText(rng, addedTexts, rng.int(50, 400)) + '\n';
    out.push(big);
    return out;
}

// The whole corpus: curated edge cases first, then randomCount random mixes of 0..400 code points.
export function buildCorpus({ addedTokens = readAddedTokens(), seed = DEFAULT_SEED, randomCount = DEFAULT_RANDOM_COUNT } = {}) {
    const addedTexts = addedTokens.map((t) => t.content);
    const rng = new Rng(seed);
    const curated = [
        ...addedTokenCases(addedTexts), ...whitespaceCases(), ...digitCases(), ...contractionCases(),
        ...scriptCases(), ...unicodeCases(), ...textCases(), ...longCases(rng, addedTexts),
    ];
    const seen = new Set();
    const corpus = [];
    for (const s of curated) {
        if (seen.has(s)) continue;
        seen.add(s);
        corpus.push(s);
    }
    for (let i = 0; i < randomCount; i++) corpus.push(randomText(rng, addedTexts, rng.int(0, RANDOM_MAX_CHARS)));
    for (const s of corpus) if (!s.isWellFormed()) throw new Error(`corpus string is not well-formed: ${JSON.stringify(s)}`);
    return { corpus, curatedCount: seen.size };
}
