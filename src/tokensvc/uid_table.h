/* uid_table: the tokenizer service's uids and the conversation state of each: a hash table with an
 * LRU list capped at max_uids (creating one more evicts the least recently used, never the pinned
 * uid: the runtime's), fresh UUID4 uids from common/random, and the last uid handed out. A state is
 * held (acquire/release) while a request works on it, so an eviction never frees it under a running
 * request; its fields are guarded by its own lock. */
#ifndef AXLLAMA_TOKENSVC_UID_TABLE_H
#define AXLLAMA_TOKENSVC_UID_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "tokenizer/tokenizer.h"
#include "tokensvc/tokensvc.h"

typedef struct {
    const char *role; /* static string */
    char *content;
} uid_message;

typedef struct uid_state uid_state;
struct uid_state {
    char uid[TOK_SERVICE_UID_LEN + 1];
    pthread_mutex_t lock; /* guards everything below up to the table bookkeeping */
    uid_message *messages;
    size_t n_messages, cap_messages;
    idvec token_ids;
    decode_stream stream;
    bool has_staged_encode;
    idvec staged_full;
    size_t staged_diff;
    bool has_staged_reset;
    idvec staged_reset;
    /* table bookkeeping, guarded by the table's lock */
    uid_state *hash_next;
    uid_state *lru_newer, *lru_older;
    unsigned refs;
    bool evicted;
};

typedef struct uid_table uid_table;

/* max_uids > 0. */
uid_table *uid_table_new(size_t max_uids);
/* Frees every state; no request may hold one any more. */
void uid_table_free(uid_table *t);

/* Creates a fresh uid (its state holds the default system prompt), evicting the least recently used
 * one beyond max_uids (neither the pinned uid nor the new one), and makes it the last uid handed out. */
void uid_table_create(uid_table *t, char uid[TOK_SERVICE_UID_LEN + 1]);
/* Finds uid and holds it (release with uid_table_release); marks it most recently used. NULL if
 * unknown. */
uid_state *uid_table_acquire(uid_table *t, const char *uid);
void uid_table_release(uid_table *t, uid_state *st);

/* Makes uid the pinned one (at most one is: a new pin replaces the old, which is evicted like any other
 * again). False if uid is unknown. */
bool uid_table_pin(uid_table *t, const char *uid);

/* The last uid handed out: set by uid_table_create, or by the proxy for an upstream's uid (at most
 * TOK_SERVICE_UID_LEN bytes). uid_table_last copies it into out; false if there is none yet. */
void uid_table_set_last(uid_table *t, const char *uid);
bool uid_table_last(uid_table *t, char out[TOK_SERVICE_UID_LEN + 1]);

/* The conversation (state locked). */
void uid_state_add_message(uid_state *st, const char *role, const char *content, size_t len);
void uid_state_clear_messages(uid_state *st);

#endif
