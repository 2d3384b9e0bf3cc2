/* tokenizer: Hugging Face byte-level BPE (Qwen2 / 2.5 / 3 kind): loading tokenizer.json and
 * tokenizer_config.json, encode (added tokens -> NFC -> Split regex -> byte-level BPE) and decode.
 *
 * Pipeline, as HF `tokenizers` runs it for this kind of file:
 *   1. invalid UTF-8 in the input is replaced by U+FFFD (one per maximal invalid subpart): HF only
 *      ever receives strings, and every binding (Python, Node) repairs bytes that way;
 *   2. added tokens (special or not) are found leftmost-longest in the raw text; the text between
 *      them is processed alone (tokens flagged `normalized` are matched after step 3 instead);
 *   3. NFC (utf8proc) as of Unicode 9.0, the version of HF's tables (see nfc_as_hf);
 *   4. the Split pre-tokenizer: the file's regex, compiled with PCRE2 (UTF + UCP; \s spelled as
 *      Oniguruma means it, see spell_spaces_as_white_space), "Isolated":
 *      every match and every gap between matches is a piece;
 *   5. ByteLevel: a piece's bytes are its initial symbols; BPE merges the adjacent pair of lowest
 *      rank (ties: leftmost) until no pair has a merge, exactly HF's merge order.
 * Token strings in the file are byte-level encoded (GPT-2's bytes_to_unicode); they are stored
 * here as the raw bytes they stand for, so BPE works on bytes directly. */
#include "tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unicode/uchar.h>
#include <unistd.h>
#include <utf8proc.h>

#include "common/utf8.h"
#include "tokenizer/tokenizer_json.h"

enum { ID_PRESENT = 1, ID_ADDED = 2, ID_SPECIAL = 4 };

/* NFC makes a text at most this many times shorter (Hangul jamo L+V+T, 9 bytes, compose into one
 * 3-byte syllable; every other composition shrinks less): a bound for tokenizer_encode_limit. */
#define TOKENIZER_NFC_SHRINK 4u

typedef struct {
    const char *text; /* points into the arena */
    uint32_t len;
    int32_t id;
    bool special;
    bool normalized;
} added_token;

typedef struct {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX = empty */
    int32_t rank;
    int32_t merged;
} merge_slot;

struct tokenizer {
    /* Token bytes for every id (vocab and added tokens). */
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *tok_off;
    uint32_t *tok_len;
    uint8_t *id_flags;
    size_t n_ids;

    /* Vocab (model tokens only): raw bytes -> id, open addressing. */
    int32_t *vocab_slots;
    size_t vocab_mask;
    int32_t byte_id[256];

    merge_slot *merges;
    size_t merge_mask;
    size_t n_merges;

    added_token *added;
    size_t n_added;
    bool added_first_byte[2][256]; /* [normalized][byte] */

    pcre2_code *split_re;
    uint32_t max_token_len; /* the longest token's bytes */
    bool nfc;
    bool ignore_merges;
    int32_t bos_id, eos_id, pad_id;
};

/* ---- byte-level alphabet (GPT-2 bytes_to_unicode) ---- */

static int32_t char_to_byte[324]; /* code point -> byte, -1 if not in the alphabet */
static pthread_once_t alphabet_once = PTHREAD_ONCE_INIT;

static bool byte_is_printable(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void init_alphabet(void)
{
    for (size_t i = 0; i < sizeof char_to_byte / sizeof char_to_byte[0]; i++)
        char_to_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        if (byte_is_printable(b))
            char_to_byte[b] = b;
        else
            char_to_byte[256 + extra++] = b;
    }
}

/* Byte-level text -> raw bytes, the way HF's ByteLevel decoder treats one token: if every
 * character is in the alphabet each becomes its byte, otherwise the token's UTF-8 is kept. */
static void bytelevel_to_bytes(const char *s, size_t n, strbuf *out)
{
    size_t start = out->len;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || cp < 0 || cp >= 324 || char_to_byte[cp] < 0) {
            out->len = start;
            sb_append(out, s, n);
            return;
        }
        sb_putc(out, (char)char_to_byte[cp]);
        i += (size_t)k;
    }
}

/* ---- hashing ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

static size_t table_size_for(size_t n)
{
    size_t size = 1024;
    while (size < n * 2)
        size *= 2;
    return size;
}

/* ---- id table ---- */

static void ensure_id(tokenizer *t, size_t id)
{
    if (id < t->n_ids)
        return;
    size_t n = t->n_ids ? t->n_ids : 1024;
    while (n <= id)
        n *= 2;
    t->tok_off = xrealloc(t->tok_off, n * sizeof *t->tok_off);
    t->tok_len = xrealloc(t->tok_len, n * sizeof *t->tok_len);
    t->id_flags = xrealloc(t->id_flags, n);
    memset(t->id_flags + t->n_ids, 0, n - t->n_ids);
    t->n_ids = n;
}

static uint32_t arena_add(tokenizer *t, const char *s, size_t n)
{
    if (t->arena_len + n > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : (1u << 20);
        while (cap < t->arena_len + n)
            cap *= 2;
        t->arena = xrealloc(t->arena, cap);
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, n);
    uint32_t off = (uint32_t)t->arena_len;
    t->arena_len += n;
    return off;
}

static const char *tok_bytes(const tokenizer *t, int32_t id)
{
    return t->arena + t->tok_off[id];
}

/* ---- vocab hash (built after loading, over model tokens) ---- */

static int32_t vocab_find(const tokenizer *t, const char *s, size_t n)
{
    if (!t->vocab_slots)
        return -1;
    for (size_t i = hash_bytes(s, n) & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int32_t id = t->vocab_slots[i];
        if (id < 0)
            return -1;
        if (t->tok_len[id] == n && !memcmp(tok_bytes(t, id), s, n))
            return id;
    }
}

static void build_vocab_table(tokenizer *t, size_t n_vocab)
{
    size_t size = table_size_for(n_vocab);
    t->vocab_slots = xmalloc(size * sizeof *t->vocab_slots);
    memset(t->vocab_slots, 0xFF, size * sizeof *t->vocab_slots);
    t->vocab_mask = size - 1;
    for (size_t id = 0; id < t->n_ids; id++) {
        if ((t->id_flags[id] & (ID_PRESENT | ID_ADDED)) != ID_PRESENT)
            continue;
        size_t i = hash_bytes(tok_bytes(t, (int32_t)id), t->tok_len[id]) & t->vocab_mask;
        while (t->vocab_slots[i] >= 0)
            i = (i + 1) & t->vocab_mask;
        t->vocab_slots[i] = (int32_t)id;
    }
}

/* ---- merges ---- */

static const merge_slot *merge_find(const tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = hash_pair(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const merge_slot *s = &t->merges[i];
        if (s->key == key)
            return s;
        if (s->key == UINT64_MAX)
            return NULL;
    }
}

/* ---- loading ---- */

typedef struct {
    tokenizer *t;
    strbuf tmp;
    size_t n_vocab;
    /* merges arrive before the vocab hash exists: keep them as pairs of byte strings */
    strbuf merge_text;
    size_t n_merge_entries;
    bool bad;
} load_ctx;

static bool on_vocab(void *vctx, const char *token, size_t n, long long id)
{
    load_ctx *lc = vctx;
    tokenizer *t = lc->t;
    ensure_id(t, (size_t)id);
    if (t->id_flags[id] & ID_PRESENT)
        return false; /* duplicate id */
    sb_clear(&lc->tmp);
    bytelevel_to_bytes(token, n, &lc->tmp);
    t->tok_off[id] = arena_add(t, lc->tmp.data, lc->tmp.len);
    t->tok_len[id] = (uint32_t)lc->tmp.len;
    t->id_flags[id] = ID_PRESENT;
    lc->n_vocab++;
    return true;
}

static bool on_merge(void *vctx, const char *a, size_t na, const char *b, size_t nb)
{
    load_ctx *lc = vctx;
    uint32_t lens[2] = {(uint32_t)na, (uint32_t)nb};
    sb_append(&lc->merge_text, lens, sizeof lens);
    sb_append(&lc->merge_text, a, na);
    sb_append(&lc->merge_text, b, nb);
    lc->n_merge_entries++;
    return true;
}

static bool resolve_merges(tokenizer *t, load_ctx *lc, char *err, size_t errlen)
{
    size_t size = table_size_for(lc->n_merge_entries);
    t->merges = xmalloc(size * sizeof *t->merges);
    for (size_t i = 0; i < size; i++)
        t->merges[i].key = UINT64_MAX;
    t->merge_mask = size - 1;

    strbuf bytes_a = {0}, bytes_b = {0}, both = {0};
    const char *p = lc->merge_text.data ? lc->merge_text.data : "", *end = p + lc->merge_text.len;
    bool ok = true;
    for (int32_t rank = 0; p < end; rank++) {
        uint32_t lens[2];
        memcpy(lens, p, sizeof lens);
        p += sizeof lens;
        const char *a = p, *b = p + lens[0];
        p = b + lens[1];
        sb_clear(&bytes_a);
        sb_clear(&bytes_b);
        bytelevel_to_bytes(a, lens[0], &bytes_a);
        bytelevel_to_bytes(b, lens[1], &bytes_b);
        sb_clear(&both);
        sb_append(&both, bytes_a.data, bytes_a.len);
        sb_append(&both, bytes_b.data, bytes_b.len);
        if (!lens[0] || !lens[1]) {
            snprintf(err, errlen, "tokenizer.json: merge %d has an empty side", rank);
            ok = false;
            break;
        }
        int32_t ia = vocab_find(t, bytes_a.data, bytes_a.len);
        int32_t ib = vocab_find(t, bytes_b.data, bytes_b.len);
        int32_t im = vocab_find(t, both.data, both.len);
        if (ia < 0 || ib < 0 || im < 0) {
            snprintf(err, errlen, "tokenizer.json: merge %d (\"%.*s\" \"%.*s\") uses a token missing from the vocab",
                     rank, (int)lens[0], a, (int)lens[1], b);
            ok = false;
            break;
        }
        uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        size_t i = hash_pair(key) & t->merge_mask;
        while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key)
            i = (i + 1) & t->merge_mask;
        if (t->merges[i].key == key)
            continue; /* a repeated merge keeps its first (lowest) rank */
        t->merges[i] = (merge_slot){.key = key, .rank = rank, .merged = im};
        t->n_merges++;
    }
    sb_free(&bytes_a);
    sb_free(&bytes_b);
    sb_free(&both);
    return ok;
}

static const char *type_of(json_t *obj)
{
    return json_is_object(obj) ? json_string_value(json_object_get(obj, "type")) : NULL;
}

static bool is_false_or_absent(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return !v || json_is_false(v) || json_is_null(v);
}

static bool is_empty_or_absent(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
}

static bool check_normalizer(tokenizer *t, json_t *norm, char *err, size_t errlen)
{
    if (!norm || json_is_null(norm))
        return true;
    const char *type = type_of(norm);
    if (type && !strcmp(type, "NFC")) {
        t->nfc = true;
        return true;
    }
    if (type && !strcmp(type, "Sequence")) {
        json_t *list = json_object_get(norm, "normalizers"), *n;
        size_t i;
        json_array_foreach(list, i, n) {
            if (!check_normalizer(t, n, err, errlen))
                return false;
        }
        return true;
    }
    snprintf(err, errlen, "tokenizer.json: unsupported normalizer %s (only NFC)", type ? type : "(untyped)");
    return false;
}

/* HF runs the pattern with Oniguruma, whose \s is the Unicode White_Space property; PCRE2's \s
 * (UCP) also takes U+180E MONGOLIAN VOWEL SEPARATOR, which stopped being a space in Unicode 6.3.
 * Spelling \s / \S as \p{White_Space} / \P{White_Space} makes PCRE2 agree; the rest of the
 * pattern is compiled as written. */
static void spell_spaces_as_white_space(const char *re, strbuf *out)
{
    for (const char *p = re; *p; p++) {
        if (p[0] == '\\' && p[1] == 's') {
            sb_puts(out, "\\p{White_Space}");
            p++;
        } else if (p[0] == '\\' && p[1] == 'S') {
            sb_puts(out, "\\P{White_Space}");
            p++;
        } else if (p[0] == '\\' && p[1]) {
            sb_append(out, p, 2);
            p++;
        } else {
            sb_putc(out, *p);
        }
    }
}

static bool compile_split(tokenizer *t, json_t *split, char *err, size_t errlen)
{
    json_t *pattern = json_object_get(split, "pattern");
    const char *regex = json_string_value(json_object_get(pattern, "Regex"));
    const char *behavior = json_string_value(json_object_get(split, "behavior"));
    if (!regex) {
        snprintf(err, errlen, "tokenizer.json: Split pre-tokenizer without a Regex pattern is not supported");
        return false;
    }
    if (!behavior || strcmp(behavior, "Isolated") || !is_false_or_absent(split, "invert")) {
        snprintf(err, errlen, "tokenizer.json: only Split behavior \"Isolated\" without invert is supported");
        return false;
    }
    int code;
    PCRE2_SIZE off;
    strbuf pcre_pattern = {0};
    spell_spaces_as_white_space(regex, &pcre_pattern);
    t->split_re = pcre2_compile((PCRE2_SPTR)pcre_pattern.data, pcre_pattern.len, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    sb_free(&pcre_pattern);
    if (!t->split_re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "tokenizer.json: pre-tokenizer regex does not compile at offset %zu: %s", (size_t)off,
                 (const char *)msg);
        return false;
    }
    pcre2_jit_compile(t->split_re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is absent */
    return true;
}

static bool check_pre_tokenizer(tokenizer *t, json_t *pre, char *err, size_t errlen)
{
    const char *type = type_of(pre);
    json_t *list = type && !strcmp(type, "Sequence") ? json_object_get(pre, "pretokenizers") : NULL;
    json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    if (json_array_size(list) != 2 || !type_of(split) || strcmp(type_of(split), "Split") || !type_of(bl) ||
        strcmp(type_of(bl), "ByteLevel")) {
        snprintf(err, errlen, "tokenizer.json: unsupported pre_tokenizer (expected Sequence [Split, ByteLevel])");
        return false;
    }
    if (!is_false_or_absent(bl, "add_prefix_space") || !is_false_or_absent(bl, "use_regex")) {
        snprintf(err, errlen, "tokenizer.json: ByteLevel with add_prefix_space or use_regex is not supported");
        return false;
    }
    return compile_split(t, split, err, errlen);
}

static bool check_model(tokenizer *t, json_t *model, char *err, size_t errlen)
{
    const char *type = type_of(model);
    if (type && strcmp(type, "BPE")) {
        snprintf(err, errlen, "tokenizer.json: model type %s is not supported (only BPE)", type);
        return false;
    }
    if (!is_empty_or_absent(model, "continuing_subword_prefix") || !is_empty_or_absent(model, "end_of_word_suffix") ||
        !is_false_or_absent(model, "byte_fallback") || !is_empty_or_absent(model, "unk_token")) {
        snprintf(err, errlen, "tokenizer.json: BPE with subword prefix/suffix, byte_fallback or unk_token is not supported");
        return false;
    }
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout)) {
        snprintf(err, errlen, "tokenizer.json: BPE dropout is not supported");
        return false;
    }
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    return true;
}

static bool load_added_tokens(tokenizer *t, json_t *list, char *err, size_t errlen)
{
    if (list && !json_is_array(list)) {
        snprintf(err, errlen, "tokenizer.json: added_tokens is not an array");
        return false;
    }
    t->added = xcalloc(json_array_size(list) + 1, sizeof *t->added);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a) {
        json_t *jid = json_object_get(a, "id");
        const char *content = json_string_value(json_object_get(a, "content"));
        if (!json_is_integer(jid) || json_integer_value(jid) < 0 || json_integer_value(jid) > 0x7FFFFFFF || !content ||
            !*content) {
            snprintf(err, errlen, "tokenizer.json: added_tokens[%zu] needs an id and a non-empty content", i);
            return false;
        }
        if (!is_false_or_absent(a, "lstrip") || !is_false_or_absent(a, "rstrip") ||
            !is_false_or_absent(a, "single_word")) {
            snprintf(err, errlen, "tokenizer.json: added token \"%s\": lstrip/rstrip/single_word are not supported",
                     content);
            return false;
        }
        int32_t id = (int32_t)json_integer_value(jid);
        size_t len = strlen(content);
        ensure_id(t, (size_t)id);
        /* The id's decoded bytes: the ByteLevel decoder's rule applied to the content. */
        strbuf bytes = {0};
        bytelevel_to_bytes(content, len, &bytes);
        t->tok_off[id] = arena_add(t, bytes.data, bytes.len);
        t->tok_len[id] = (uint32_t)bytes.len;
        sb_free(&bytes);
        bool special = json_is_true(json_object_get(a, "special"));
        t->id_flags[id] = ID_PRESENT | ID_ADDED | (special ? ID_SPECIAL : 0);
        added_token *at = &t->added[t->n_added++];
        at->len = (uint32_t)len;
        at->text = (const char *)(uintptr_t)arena_add(t, content, len); /* offset; fixed up below */
        at->id = id;
        at->special = special;
        at->normalized = json_is_true(json_object_get(a, "normalized"));
    }
    return true;
}

/* Longest first, so the first match at a position is the leftmost-longest one. */
static int cmp_added_by_len_desc(const void *a, const void *b)
{
    const added_token *x = a, *y = b;
    return (x->len < y->len) - (x->len > y->len);
}

static void finish_added_tokens(tokenizer *t)
{
    for (size_t i = 0; i < t->n_added; i++) {
        t->added[i].text = t->arena + (uintptr_t)t->added[i].text;
        t->added_first_byte[t->added[i].normalized][(unsigned char)t->added[i].text[0]] = true;
    }
    qsort(t->added, t->n_added, sizeof *t->added, cmp_added_by_len_desc);
}

static int32_t config_token_id(const tokenizer *t, json_t *config, const char *key)
{
    json_t *v = json_object_get(config, key);
    const char *text = json_is_object(v) ? json_string_value(json_object_get(v, "content")) : json_string_value(v);
    return text ? tokenizer_token_id(t, text) : -1;
}

static bool read_whole_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    strbuf sb = {0};
    char chunk[65536];
    size_t n;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0)
        sb_reserve(&sb, (size_t)st.st_size);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_append(&sb, chunk, n);
    bool ok = !ferror(f);
    fclose(f);
    if (!ok) {
        snprintf(err, errlen, "cannot read %s", path);
        sb_free(&sb);
        return false;
    }
    *len = sb.len;
    *data = sb_steal(&sb);
    return true;
}

tokenizer *tokenizer_load_files(const char *json_path, const char *config_path, char *err, size_t errlen)
{
    pthread_once(&alphabet_once, init_alphabet);
    char *text = NULL;
    size_t len = 0;
    if (!read_whole_file(json_path, &text, &len, err, errlen))
        return NULL;

    tokenizer *t = xcalloc(1, sizeof *t);
    t->bos_id = t->eos_id = t->pad_id = -1;
    load_ctx lc = {.t = t};
    tokenizer_json_handlers h = {.ctx = &lc, .vocab = on_vocab, .merge = on_merge};
    json_t *root = tokenizer_json_read(text, len, &h, err, errlen);
    free(text);
    sb_free(&lc.tmp);
    json_t *config = NULL;
    bool ok = root != NULL;

    if (ok) {
        json_t *model = json_object_get(root, "model");
        ok = check_model(t, model, err, errlen) && check_normalizer(t, json_object_get(root, "normalizer"), err, errlen) &&
             check_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"), err, errlen);
    }
    if (ok) {
        const char *dtype = type_of(json_object_get(root, "decoder"));
        if (dtype && strcmp(dtype, "ByteLevel")) {
            snprintf(err, errlen, "tokenizer.json: decoder %s is not supported (only ByteLevel)", dtype);
            ok = false;
        }
    }
    if (ok) {
        build_vocab_table(t, lc.n_vocab);
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_id[b] = vocab_find(t, &c, 1);
        }
        ok = resolve_merges(t, &lc, err, errlen) && load_added_tokens(t, json_object_get(root, "added_tokens"), err, errlen);
    }
    sb_free(&lc.merge_text);
    json_decref(root);
    if (ok) {
        finish_added_tokens(t);
        /* ids must be dense: 0 .. largest id, no gaps */
        size_t used = t->n_ids;
        while (used > 0 && !(t->id_flags[used - 1] & ID_PRESENT))
            used--;
        for (size_t id = 0; id < used && ok; id++) {
            if (!(t->id_flags[id] & ID_PRESENT)) {
                snprintf(err, errlen, "tokenizer.json: no token has id %zu (ids must be contiguous)", id);
                ok = false;
            }
        }
        t->n_ids = used;
        for (size_t id = 0; id < used; id++)
            if (t->tok_len[id] > t->max_token_len)
                t->max_token_len = t->tok_len[id];
    }
    if (ok && config_path && access(config_path, F_OK) == 0) {
        json_error_t je;
        config = json_load_file(config_path, 0, &je);
        if (!config) {
            snprintf(err, errlen, "%s:%d: %s", config_path, je.line, je.text);
            ok = false;
        }
    }
    if (ok && config) {
        t->bos_id = config_token_id(t, config, "bos_token");
        t->eos_id = config_token_id(t, config, "eos_token");
        t->pad_id = config_token_id(t, config, "pad_token");
    }
    json_decref(config);
    if (!ok) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

tokenizer *tokenizer_load(const char *dir, char *err, size_t errlen)
{
    strbuf json_path = {0}, config_path = {0};
    sb_printf(&json_path, "%s/tokenizer.json", dir);
    sb_printf(&config_path, "%s/tokenizer_config.json", dir);
    tokenizer *t = tokenizer_load_files(json_path.data, config_path.data, err, errlen);
    sb_free(&json_path);
    sb_free(&config_path);
    return t;
}

void tokenizer_free(tokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->tok_off);
    free(t->tok_len);
    free(t->id_flags);
    free(t->vocab_slots);
    free(t->merges);
    free(t->added);
    pcre2_code_free(t->split_re);
    free(t);
}

/* ---- encode ---- */

typedef struct {
    int32_t id;
    int32_t prev, next; /* symbol indices, -1 at the ends */
    uint32_t len;       /* 0 once merged into its left neighbour */
} symbol;

typedef struct {
    int32_t rank;
    int32_t pos;    /* left symbol */
    int32_t merged; /* expected result, to detect stale entries */
} candidate;

static bool cand_less(const candidate *a, const candidate *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(candidate *h, size_t *n, candidate c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static candidate heap_pop(candidate *h, size_t *n)
{
    candidate top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const candidate *best = &last;
        if (l < *n && cand_less(&h[l], best))
            m = l, best = &h[l];
        if (r < *n && cand_less(&h[r], best))
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (*n)
        h[i] = last;
    return top;
}

static void push_pair(const tokenizer *t, const symbol *sym, int32_t pos, candidate *heap, size_t *nheap)
{
    if (pos < 0 || sym[pos].next < 0)
        return;
    int32_t next = sym[pos].next;
    const merge_slot *m = merge_find(t, sym[pos].id, sym[next].id);
    if (m)
        heap_push(heap, nheap, (candidate){.rank = m->rank, .pos = pos, .merged = m->merged});
}

enum { SMALL_PIECE = 64 };

static void bpe_piece(const tokenizer *t, const char *s, size_t n, idvec *out)
{
    if (t->ignore_merges) {
        int32_t whole = vocab_find(t, s, n);
        if (whole >= 0) {
            iv_push(out, whole);
            return;
        }
    }
    if (n == 1) {
        int32_t id = t->byte_id[(unsigned char)s[0]];
        if (id >= 0)
            iv_push(out, id);
        return;
    }
    symbol small_sym[SMALL_PIECE];
    candidate small_heap[SMALL_PIECE * 2];
    symbol *sym = n <= SMALL_PIECE ? small_sym : xmalloc(n * sizeof *sym);
    /* every merge pushes at most two candidates: n initial + 2n later */
    candidate *heap = n <= SMALL_PIECE / 2 ? small_heap : xmalloc(3 * n * sizeof *heap);
    size_t nsym = 0, nheap = 0;

    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(unsigned char)s[i]];
        if (id < 0)
            continue; /* a byte missing from the vocab (no unk token): dropped, as HF does */
        sym[nsym] = (symbol){.id = id, .prev = (int32_t)nsym - 1, .next = -1, .len = 1};
        if (nsym)
            sym[nsym - 1].next = (int32_t)nsym;
        nsym++;
    }
    for (size_t i = 0; i + 1 < nsym; i++)
        push_pair(t, sym, (int32_t)i, heap, &nheap);

    while (nheap) {
        candidate c = heap_pop(heap, &nheap);
        symbol *left = &sym[c.pos];
        if (left->len == 0 || left->next < 0)
            continue;
        symbol *right = &sym[left->next];
        const merge_slot *m = merge_find(t, left->id, right->id);
        if (!m || m->merged != c.merged)
            continue; /* stale: one side changed since this candidate was pushed */
        left->id = m->merged;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (left->next >= 0)
            sym[left->next].prev = c.pos;
        push_pair(t, sym, left->prev, heap, &nheap);
        push_pair(t, sym, c.pos, heap, &nheap);
    }
    for (int32_t i = nsym ? 0 : -1; i >= 0; i = sym[i].next)
        iv_push(out, sym[i].id);
    if (sym != small_sym)
        free(sym);
    if (heap != small_heap)
        free(heap);
}

/* Split regex + BPE over one normalized segment (valid UTF-8). Stops once out holds stop_at ids (after
 * the piece that reached it); false then. */
static bool encode_pretokenized(const tokenizer *t, const char *s, size_t n, pcre2_match_data *md, idvec *out,
                                size_t stop_at)
{
    size_t pos = 0;
    while (pos < n) {
        if (out->len >= stop_at)
            return false;
        int rc = pcre2_match(t->split_re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(t->split_re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc < 0) { /* no further match: the rest is one gap piece */
            bpe_piece(t, s + pos, n - pos, out);
            return true;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (start > pos)
            bpe_piece(t, s + pos, start - pos, out);
        if (end > start) {
            bpe_piece(t, s + start, end - start, out);
            pos = end;
        } else { /* an empty match: step over one character into the next gap */
            size_t len = 1;
            if (start < n && (unsigned char)s[start] >= 0x80)
                utf8_next(s + start, n - start, &len);
            if (start + len > n)
                len = n - start;
            bpe_piece(t, s + start, len, out);
            pos = start + len;
        }
    }
    return true;
}

/* Finds the leftmost-longest added token (of the given normalized class) in s[from..n). */
static const added_token *find_added(const tokenizer *t, bool normalized, const char *s, size_t n, size_t from,
                                     size_t *at)
{
    const bool *first = t->added_first_byte[normalized];
    for (size_t i = from; i < n; i++) {
        if (!first[(unsigned char)s[i]])
            continue;
        for (size_t k = 0; k < t->n_added; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized == normalized && a->len <= n - i && a->text[0] == s[i] && !memcmp(a->text, s + i, a->len)) {
                *at = i;
                return a;
            }
        }
    }
    return NULL;
}

/* HF's NFC uses Unicode 9.0 tables: a character assigned later (or unknown) is left alone there,
 * and acts as a starter that nothing reorders across or composes with. utf8proc knows newer
 * Unicode, so such characters are kept verbatim and the text between them is normalised alone,
 * which gives exactly the Unicode 9.0 result. The character's age comes from ICU. */
static bool newer_than_hf_unicode(int32_t cp)
{
    UVersionInfo age;
    u_charAge(cp, age);
    return age[0] > 9 || (age[0] == 0 && age[1] == 0);
}

static void nfc_run(const char *s, size_t n, strbuf *out)
{
    if (!n)
        return;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m >= 0)
        sb_append(out, nfc, (size_t)m);
    else
        sb_append(out, s, n);
    free(nfc);
}

static void nfc_as_hf(const char *s, size_t n, strbuf *out)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (len <= 0)
            len = 1;
        if (len > 0 && cp >= 0 && newer_than_hf_unicode(cp)) {
            nfc_run(s + run, i - run, out);
            sb_append(out, s + i, (size_t)len);
            run = i + (size_t)len;
        }
        i += (size_t)len;
    }
    nfc_run(s + run, n - run, out);
}

static bool has_non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

/* One segment between non-normalized added tokens: NFC, then normalized added tokens, then BPE. Stops
 * once out holds stop_at ids; false then. */
static bool encode_segment(const tokenizer *t, const char *s, size_t n, pcre2_match_data *md, idvec *out,
                           size_t stop_at)
{
    strbuf nfc = {0};
    if (t->nfc && has_non_ascii(s, n)) {
        nfc_as_hf(s, n, &nfc);
        s = nfc.data;
        n = nfc.len;
    }
    size_t pos = 0, at;
    const added_token *a;
    bool complete = true;
    while (complete && (a = find_added(t, true, s, n, pos, &at)) != NULL) {
        complete = encode_pretokenized(t, s + pos, at - pos, md, out, stop_at);
        if (complete)
            iv_push(out, a->id);
        pos = at + a->len;
    }
    if (complete)
        complete = encode_pretokenized(t, s + pos, n - pos, md, out, stop_at);
    sb_free(&nfc);
    return complete;
}

/* tokenizer_encode until out holds stop_at ids (SIZE_MAX: the whole text); false when it stopped
 * before the end of the text. */
static bool encode_upto(const tokenizer *t, const char *text, size_t n, idvec *out, size_t stop_at)
{
    strbuf repaired = {0};
    if (!utf8_is_valid(text, n)) {
        utf8_append_lossy(&repaired, text, n);
        text = repaired.data;
        n = repaired.len;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->split_re, NULL);
    size_t pos = 0, at;
    const added_token *a;
    bool complete = true;
    while (complete && (a = find_added(t, false, text, n, pos, &at)) != NULL) {
        if (at > pos)
            complete = encode_segment(t, text + pos, at - pos, md, out, stop_at);
        if (complete && out->len >= stop_at && at < n)
            complete = false;
        if (complete)
            iv_push(out, a->id);
        pos = at + a->len;
    }
    if (complete && pos < n)
        complete = out->len < stop_at && encode_segment(t, text + pos, n - pos, md, out, stop_at);
    pcre2_match_data_free(md);
    sb_free(&repaired);
    return complete;
}

void tokenizer_encode(const tokenizer *t, const char *text, size_t n, idvec *out)
{
    encode_upto(t, text, n, out, SIZE_MAX);
}

size_t tokenizer_max_token_bytes(const tokenizer *t)
{
    return t->max_token_len;
}

/* The most bytes of text that can encode to at most n_ids ids: every id stands for at most
 * max_token_len bytes of the normalized text, and NFC shrinks a text at most TOKENIZER_NFC_SHRINK-fold. */
static size_t bytes_for_ids(const tokenizer *t, size_t n_ids)
{
    size_t per_id = (size_t)t->max_token_len * TOKENIZER_NFC_SHRINK;
    return n_ids > SIZE_MAX / per_id ? SIZE_MAX : n_ids * per_id;
}

/* The length of the longest prefix of s[0..n) that is at most max bytes and ends at a character
 * boundary (a UTF-8 lead byte or ASCII follows it). */
static size_t prefix_at_char(const char *s, size_t n, size_t max)
{
    if (max >= n)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

bool tokenizer_encode_limit(const tokenizer *t, const char *text, size_t n, size_t max_ids, idvec *out)
{
    size_t start = out->len;
    size_t stop_at = max_ids >= SIZE_MAX - start ? SIZE_MAX : start + max_ids + 1;
    /* a prefix this long holds more than max_ids ids: the rest of the text is never looked at */
    size_t cap = bytes_for_ids(t, max_ids + 1);
    size_t looked = prefix_at_char(text, n, cap);
    bool complete = encode_upto(t, text, looked, out, stop_at);
    if (complete && looked < n && out->len <= start + max_ids) { /* not reached: never, by the bound */
        out->len = start;
        complete = encode_upto(t, text, n, out, stop_at);
        looked = n;
    }
    if (out->len > start + max_ids) {
        out->len = start + max_ids + 1; /* exactly one past the limit */
        return false;
    }
    return complete && looked == n;
}

void tokenizer_encode_tail(const tokenizer *t, const char *text, size_t n, size_t n_ids, idvec *out)
{
    /* typical text takes 3-5 bytes per id: start with a window of 16 per id, and widen it until the
     * ids kept are far from its start (or it is the whole text) */
    size_t window = n_ids > SIZE_MAX / 32 ? SIZE_MAX : (n_ids + 1) * 16;
    size_t widest = bytes_for_ids(t, 2 * (n_ids + 1));
    idvec ids = {0};
    for (;;) {
        size_t from = window >= n ? 0 : n - window;
        while (from > 0 && from < n && ((unsigned char)text[from] & 0xC0) == 0x80)
            from++; /* a character boundary */
        /* start after a line break when there is one near: a piece never starts in the middle there */
        const char *nl = from > 0 ? memchr(text + from, '\n', n - from < 256 ? n - from : 256) : NULL;
        if (nl)
            from = (size_t)(nl - text) + 1;
        iv_clear(&ids);
        encode_upto(t, text + from, n - from, &ids, SIZE_MAX);
        if (from == 0 || ids.len >= 2 * n_ids + 2 || window >= widest)
            break;
        window = window > SIZE_MAX / 2 ? SIZE_MAX : window * 2;
    }
    size_t keep = ids.len < n_ids ? ids.len : n_ids;
    iv_append(out, ids.v + ids.len - keep, keep);
    iv_free(&ids);
}

/* ---- decode ---- */

static bool ids_in_range(const tokenizer *t, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids)
            return false;
    return true;
}

bool tokenizer_decode_bytes(const tokenizer *t, const int32_t *ids, size_t n, strbuf *out)
{
    if (!ids_in_range(t, ids, n))
        return false;
    for (size_t i = 0; i < n; i++)
        sb_append(out, tok_bytes(t, ids[i]), t->tok_len[ids[i]]);
    return true;
}

bool tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, strbuf *out)
{
    strbuf raw = {0};
    bool ok = tokenizer_decode_bytes(t, ids, n, &raw);
    if (ok)
        utf8_append_lossy(out, raw.data ? raw.data : "", raw.len);
    sb_free(&raw);
    return ok;
}

void decode_stream_init(decode_stream *ds)
{
    ds->nheld = 0;
}

bool decode_stream_push(decode_stream *ds, const tokenizer *t, const int32_t *ids, size_t n, strbuf *out)
{
    if (!ids_in_range(t, ids, n))
        return false;
    strbuf raw = {0};
    sb_append(&raw, ds->held, ds->nheld);
    tokenizer_decode_bytes(t, ids, n, &raw);
    size_t complete = utf8_complete_prefix(raw.data, raw.len);
    utf8_append_lossy(out, raw.data, complete);
    ds->nheld = raw.len - complete;
    memcpy(ds->held, raw.data + complete, ds->nheld);
    sb_free(&raw);
    return true;
}

void decode_stream_finish(decode_stream *ds, strbuf *out)
{
    if (ds->nheld)
        utf8_append_lossy(out, ds->held, ds->nheld);
    ds->nheld = 0;
}

/* ---- queries ---- */

size_t tokenizer_vocab_size(const tokenizer *t)
{
    return t->n_ids;
}

int32_t tokenizer_bos_id(const tokenizer *t)
{
    return t->bos_id;
}

int32_t tokenizer_eos_id(const tokenizer *t)
{
    return t->eos_id;
}

int32_t tokenizer_pad_id(const tokenizer *t)
{
    return t->pad_id;
}

int32_t tokenizer_token_id(const tokenizer *t, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].text, text, n))
            return t->added[i].id;
    return vocab_find(t, text, n);
}

bool tokenizer_is_special(const tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && (t->id_flags[id] & ID_SPECIAL);
}
