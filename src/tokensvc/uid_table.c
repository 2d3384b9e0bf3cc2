/* uid_table: the tokenizer service's uids (hash + LRU, capped) and each uid's state. See
 * uid_table.h. */
#include "tokensvc/uid_table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/random.h"
#include "tokenizer/chat_template.h"

struct uid_table {
    pthread_mutex_t lock; /* guards the fields below and every state's bookkeeping */
    uid_state **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_states, max_states;
    uid_state *lru_newest, *lru_oldest;
    uid_state *pinned; /* never evicted; NULL: none */
    char last_uid[TOK_SERVICE_UID_LEN + 1];
};

/* ---------------------------------------------------------------- one state */

void uid_state_add_message(uid_state *st, const char *role, const char *content, size_t len)
{
    if (st->n_messages == st->cap_messages) {
        st->cap_messages = st->cap_messages ? st->cap_messages * 2 : 8;
        st->messages = xrealloc(st->messages, st->cap_messages * sizeof *st->messages);
    }
    st->messages[st->n_messages].role = role;
    st->messages[st->n_messages].content = xstrndup(content, len);
    st->n_messages++;
}

void uid_state_clear_messages(uid_state *st)
{
    for (size_t i = 0; i < st->n_messages; i++)
        free(st->messages[i].content);
    st->n_messages = 0;
}

static uid_state *uid_state_new(const char *uid)
{
    uid_state *st = xcalloc(1, sizeof *st);
    memcpy(st->uid, uid, TOK_SERVICE_UID_LEN + 1);
    pthread_mutex_init(&st->lock, NULL);
    uid_state_add_message(st, "system", CHAT_DEFAULT_SYSTEM_PROMPT, strlen(CHAT_DEFAULT_SYSTEM_PROMPT));
    decode_stream_init(&st->stream);
    return st;
}

static void uid_state_free(uid_state *st)
{
    uid_state_clear_messages(st);
    free(st->messages);
    iv_free(&st->token_ids);
    iv_free(&st->staged_full);
    iv_free(&st->staged_reset);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ---------------------------------------------------------------- the table (hash + LRU) */

uid_table *uid_table_new(size_t max_uids)
{
    uid_table *t = xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->max_states = max_uids;
    t->n_buckets = 16;
    while (t->n_buckets < max_uids && t->n_buckets < ((size_t)1 << 20))
        t->n_buckets *= 2;
    t->buckets = xcalloc(t->n_buckets, sizeof *t->buckets);
    return t;
}

void uid_table_free(uid_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        uid_state *st = t->buckets[i];
        while (st) {
            uid_state *next = st->hash_next;
            uid_state_free(st);
            st = next;
        }
    }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static size_t uid_hash(const char *uid)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)uid; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static uid_state **uid_bucket_slot(uid_table *t, const char *uid)
{
    uid_state **slot = &t->buckets[uid_hash(uid) & (t->n_buckets - 1)];
    while (*slot && strcmp((*slot)->uid, uid) != 0)
        slot = &(*slot)->hash_next;
    return slot;
}

static void lru_unlink(uid_table *t, uid_state *st)
{
    if (st->lru_newer)
        st->lru_newer->lru_older = st->lru_older;
    else
        t->lru_newest = st->lru_older;
    if (st->lru_older)
        st->lru_older->lru_newer = st->lru_newer;
    else
        t->lru_oldest = st->lru_newer;
    st->lru_newer = st->lru_older = NULL;
}

static void lru_push_newest(uid_table *t, uid_state *st)
{
    st->lru_older = t->lru_newest;
    st->lru_newer = NULL;
    if (t->lru_newest)
        t->lru_newest->lru_newer = st;
    t->lru_newest = st;
    if (!t->lru_oldest)
        t->lru_oldest = st;
}

/* Removes the least recently used state other than the pinned one and keep; it is freed now, or by its
 * last holder. False when there is none. Table locked. */
static bool uid_evict_oldest(uid_table *t, const uid_state *keep)
{
    uid_state *st = t->lru_oldest;
    while (st && (st == t->pinned || st == keep))
        st = st->lru_newer;
    if (!st)
        return false;
    uid_state **slot = uid_bucket_slot(t, st->uid);
    *slot = st->hash_next;
    lru_unlink(t, st);
    t->n_states--;
    st->evicted = true;
    if (st->refs == 0)
        uid_state_free(st);
    return true;
}

uid_state *uid_table_acquire(uid_table *t, const char *uid)
{
    pthread_mutex_lock(&t->lock);
    uid_state *st = *uid_bucket_slot(t, uid);
    if (st) {
        st->refs++;
        lru_unlink(t, st);
        lru_push_newest(t, st);
    }
    pthread_mutex_unlock(&t->lock);
    return st;
}

void uid_table_release(uid_table *t, uid_state *st)
{
    pthread_mutex_lock(&t->lock);
    bool free_now = --st->refs == 0 && st->evicted;
    pthread_mutex_unlock(&t->lock);
    if (free_now)
        uid_state_free(st);
}

/* A random UUID4 in its 36-character text form. */
static void make_uuid4(char out[TOK_SERVICE_UID_LEN + 1])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    snprintf(out, TOK_SERVICE_UID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void uid_table_create(uid_table *t, char uid[TOK_SERVICE_UID_LEN + 1])
{
    uid_state **slot;
    pthread_mutex_lock(&t->lock);
    do {
        make_uuid4(uid);
        slot = uid_bucket_slot(t, uid);
    } while (*slot);
    uid_state *created = uid_state_new(uid);
    *slot = created;
    lru_push_newest(t, created);
    t->n_states++;
    while (t->n_states > t->max_states && uid_evict_oldest(t, created))
        ;
    memcpy(t->last_uid, uid, TOK_SERVICE_UID_LEN + 1);
    pthread_mutex_unlock(&t->lock);
}

bool uid_table_pin(uid_table *t, const char *uid)
{
    pthread_mutex_lock(&t->lock);
    uid_state *st = *uid_bucket_slot(t, uid);
    if (st)
        t->pinned = st;
    pthread_mutex_unlock(&t->lock);
    return st != NULL;
}

void uid_table_set_last(uid_table *t, const char *uid)
{
    pthread_mutex_lock(&t->lock);
    snprintf(t->last_uid, sizeof t->last_uid, "%s", uid);
    pthread_mutex_unlock(&t->lock);
}

bool uid_table_last(uid_table *t, char out[TOK_SERVICE_UID_LEN + 1])
{
    pthread_mutex_lock(&t->lock);
    bool have = t->last_uid[0] != '\0';
    if (have)
        memcpy(out, t->last_uid, TOK_SERVICE_UID_LEN + 1);
    pthread_mutex_unlock(&t->lock);
    return have;
}
