/* tokenizer_internal: the state of a loaded tokenizer (struct tokenizer) and the tables its three
 * files share: tokenizer.c (hashing, the vocab hash, the merges lookup, decode, queries),
 * tokenizer_load.c (reading tokenizer.json and tokenizer_config.json, building the tables) and
 * tokenizer_encode.c (byte-level BPE, NFC, the pre-tokenizer, encode). Only src/tokenizer/ includes
 * it: everyone else uses tokenizer.h. */
#ifndef AXLLAMA_TOKENIZER_TOKENIZER_INTERNAL_H
#define AXLLAMA_TOKENIZER_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

enum { ID_PRESENT = 1, ID_ADDED = 2, ID_SPECIAL = 4 };

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

/* The bytes of token id (tok_len[id] of them). */
static inline const char *tok_bytes(const tokenizer *t, int32_t id)
{
    return t->arena + t->tok_off[id];
}

/* A 64-bit mix of a merge key (left id << 32 | right id), for the merges table. */
uint64_t tokenizer_hash_pair(uint64_t key);
/* The size of an open-addressing table for n entries: a power of two, at least 2n and 1024. */
size_t tokenizer_table_size_for(size_t n);

/* The id of the model (not added) token whose bytes are s[0..n), or -1. */
int32_t tokenizer_vocab_find(const tokenizer *t, const char *s, size_t n);
/* Builds the vocab hash over the model tokens (n_vocab of them) once the id table is filled. */
void tokenizer_build_vocab_table(tokenizer *t, size_t n_vocab);
/* The merge of the pair (a, b): its rank and the merged id; NULL if the pair does not merge. */
const merge_slot *tokenizer_merge_find(const tokenizer *t, int32_t a, int32_t b);

#endif
