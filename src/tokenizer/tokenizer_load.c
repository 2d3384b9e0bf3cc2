/* tokenizer_load: reading a tokenizer: tokenizer.json (vocab and merges through the streaming
 * reader of tokenizer_json.c, the rest through jansson), the checks that the normalizer,
 * pre-tokenizer, model and decoder are the kind tokenizer_encode.c implements, the added tokens,
 * the merges resolved to ids, tokenizer_config.json (bos / eos / pad); tokenizer_load* and
 * tokenizer_free. Token strings in the file are byte-level encoded (GPT-2's bytes_to_unicode); they
 * are stored as the raw bytes they stand for. */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/tokenizer_json.h"

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
    size_t size = tokenizer_table_size_for(lc->n_merge_entries);
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
        int32_t ia = tokenizer_vocab_find(t, bytes_a.data, bytes_a.len);
        int32_t ib = tokenizer_vocab_find(t, bytes_b.data, bytes_b.len);
        int32_t im = tokenizer_vocab_find(t, both.data, both.len);
        if (ia < 0 || ib < 0 || im < 0) {
            snprintf(err, errlen, "tokenizer.json: merge %d (\"%.*s\" \"%.*s\") uses a token missing from the vocab",
                     rank, (int)lens[0], a, (int)lens[1], b);
            ok = false;
            break;
        }
        uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        size_t i = tokenizer_hash_pair(key) & t->merge_mask;
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
        json_array_foreach(list, i, n)
        {
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
    t->split_re =
        pcre2_compile((PCRE2_SPTR)pcre_pattern.data, pcre_pattern.len, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
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
        snprintf(err, errlen,
                 "tokenizer.json: BPE with subword prefix/suffix, byte_fallback or unk_token is not supported");
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
    json_array_foreach(list, i, a)
    {
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
        ok = check_model(t, model, err, errlen) &&
             check_normalizer(t, json_object_get(root, "normalizer"), err, errlen) &&
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
        tokenizer_build_vocab_table(t, lc.n_vocab);
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_id[b] = tokenizer_vocab_find(t, &c, 1);
        }
        ok = resolve_merges(t, &lc, err, errlen) &&
             load_added_tokens(t, json_object_get(root, "added_tokens"), err, errlen);
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
