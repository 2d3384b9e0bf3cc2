/* tokenizer: Hugging Face byte-level BPE (Qwen2 / 2.5 / 3 kind), what loading and encoding share
 * (hashing, the vocab hash, the merges lookup), decode, the streaming decoder and the queries.
 * Loading tokenizer.json and tokenizer_config.json is tokenizer_load.c; encode (added tokens -> NFC ->
 * Split regex -> byte-level BPE) is tokenizer_encode.c; struct tokenizer is in tokenizer_internal.h.
 * Tokens are stored as the raw bytes they stand for, so BPE and decode work on bytes directly. */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "tokenizer/tokenizer_internal.h"

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

uint64_t tokenizer_hash_pair(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

size_t tokenizer_table_size_for(size_t n)
{
    size_t size = 1024;
    while (size < n * 2)
        size *= 2;
    return size;
}

/* ---- vocab hash (built after loading, over model tokens) ---- */

int32_t tokenizer_vocab_find(const tokenizer *t, const char *s, size_t n)
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

void tokenizer_build_vocab_table(tokenizer *t, size_t n_vocab)
{
    size_t size = tokenizer_table_size_for(n_vocab);
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

const merge_slot *tokenizer_merge_find(const tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = tokenizer_hash_pair(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const merge_slot *s = &t->merges[i];
        if (s->key == key)
            return s;
        if (s->key == UINT64_MAX)
            return NULL;
    }
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
    return tokenizer_vocab_find(t, text, n);
}

bool tokenizer_is_special(const tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && (t->id_flags[id] & ID_SPECIAL);
}
