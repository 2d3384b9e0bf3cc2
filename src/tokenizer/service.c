/* service: the HTTP tokenizer service (get_uid, bos_id, eos_id, reset, encode, decode) the vendor
 * runtime calls; owns the listen socket, the libmicrohttpd daemon, the uid table (hash + LRU, capped)
 * and each uid's conversation state, plus the staging seam; in proxy mode (compatibility mode) it
 * forwards every call to an upstream service instead and reports what it saw. Protocol:
 * spec/tokenizer-protocol.md. */
#include "tokenizer/service.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "tokenizer/chat_template.h"

/* Status codes by number: older libmicrohttpd releases name 413 differently. */
#define HTTP_METHOD_NOT_ALLOWED 405u
#define HTTP_CONTENT_TOO_LARGE 413u

/* The ids of the generation prompt `<|im_start|>assistant\n` that /reset and a reply drop. */
#define GENERATION_PROMPT_IDS 3

/* ---------------------------------------------------------------- per-uid state */

typedef struct {
    const char *role; /* static string */
    char *content;
} stored_message;

typedef struct uid_state uid_state;
struct uid_state {
    char uid[TOK_SERVICE_UID_LEN + 1];
    pthread_mutex_t lock; /* guards everything below up to the table bookkeeping */
    stored_message *messages;
    size_t n_messages, cap_messages;
    idvec token_ids;
    decode_stream stream;
    bool has_staged_encode;
    idvec staged_full;
    size_t staged_diff;
    bool has_staged_reset;
    idvec staged_reset;
    /* table bookkeeping, guarded by the service's table_lock */
    uid_state *hash_next;
    uid_state *lru_newer, *lru_older;
    unsigned refs;
    bool evicted;
};

struct tok_service {
    const tokenizer *tok;
    size_t max_body;
    size_t max_uids;
    tok_service_uid_fn on_new_uid;
    tok_service_decode_fn on_decode;
    tok_service_request_fn on_request;
    char *upstream_url; /* proxy mode when set */
    double upstream_timeout_s;
    tok_service_encode_fn on_encode;
    tok_service_error_fn on_upstream_error;
    void *user;

    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;

    pthread_mutex_t table_lock; /* guards the fields below and every state's bookkeeping */
    uid_state **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_states;
    uid_state *lru_newest, *lru_oldest;
    char last_uid[TOK_SERVICE_UID_LEN + 1];
};

static void state_add_message(uid_state *st, const char *role, const char *content, size_t len)
{
    if (st->n_messages == st->cap_messages) {
        st->cap_messages = st->cap_messages ? st->cap_messages * 2 : 8;
        st->messages = xrealloc(st->messages, st->cap_messages * sizeof *st->messages);
    }
    st->messages[st->n_messages].role = role;
    st->messages[st->n_messages].content = xstrndup(content, len);
    st->n_messages++;
}

static void state_clear_messages(uid_state *st)
{
    for (size_t i = 0; i < st->n_messages; i++)
        free(st->messages[i].content);
    st->n_messages = 0;
}

static uid_state *state_new(const char *uid)
{
    uid_state *st = xcalloc(1, sizeof *st);
    memcpy(st->uid, uid, TOK_SERVICE_UID_LEN + 1);
    pthread_mutex_init(&st->lock, NULL);
    state_add_message(st, "system", CHAT_DEFAULT_SYSTEM_PROMPT, strlen(CHAT_DEFAULT_SYSTEM_PROMPT));
    decode_stream_init(&st->stream);
    return st;
}

static void state_free(uid_state *st)
{
    state_clear_messages(st);
    free(st->messages);
    iv_free(&st->token_ids);
    iv_free(&st->staged_full);
    iv_free(&st->staged_reset);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ---------------------------------------------------------------- uid table (hash + LRU) */

static size_t uid_hash(const char *uid)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)uid; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static uid_state **bucket_slot(tok_service *svc, const char *uid)
{
    uid_state **slot = &svc->buckets[uid_hash(uid) & (svc->n_buckets - 1)];
    while (*slot && strcmp((*slot)->uid, uid) != 0)
        slot = &(*slot)->hash_next;
    return slot;
}

static void lru_unlink(tok_service *svc, uid_state *st)
{
    if (st->lru_newer)
        st->lru_newer->lru_older = st->lru_older;
    else
        svc->lru_newest = st->lru_older;
    if (st->lru_older)
        st->lru_older->lru_newer = st->lru_newer;
    else
        svc->lru_oldest = st->lru_newer;
    st->lru_newer = st->lru_older = NULL;
}

static void lru_push_newest(tok_service *svc, uid_state *st)
{
    st->lru_older = svc->lru_newest;
    st->lru_newer = NULL;
    if (svc->lru_newest)
        svc->lru_newest->lru_newer = st;
    svc->lru_newest = st;
    if (!svc->lru_oldest)
        svc->lru_oldest = st;
}

/* Removes the least recently used state; it is freed now, or by its last holder. Table locked. */
static void evict_oldest(tok_service *svc)
{
    uid_state *st = svc->lru_oldest;
    uid_state **slot = bucket_slot(svc, st->uid);
    *slot = st->hash_next;
    lru_unlink(svc, st);
    svc->n_states--;
    st->evicted = true;
    if (st->refs == 0)
        state_free(st);
}

/* Finds uid and holds it (release with state_release); marks it most recently used. */
static uid_state *state_acquire(tok_service *svc, const char *uid)
{
    pthread_mutex_lock(&svc->table_lock);
    uid_state *st = *bucket_slot(svc, uid);
    if (st) {
        st->refs++;
        lru_unlink(svc, st);
        lru_push_newest(svc, st);
    }
    pthread_mutex_unlock(&svc->table_lock);
    return st;
}

static void state_release(tok_service *svc, uid_state *st)
{
    pthread_mutex_lock(&svc->table_lock);
    bool free_now = --st->refs == 0 && st->evicted;
    pthread_mutex_unlock(&svc->table_lock);
    if (free_now)
        state_free(st);
}

static void make_uuid4(char out[TOK_SERVICE_UID_LEN + 1])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t r = getrandom(b + got, sizeof b - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) { /* no kernel randomness: still unique enough for a local service */
            static unsigned counter;
            for (size_t i = got; i < sizeof b; i++)
                b[i] = (unsigned char)(rand() ^ (int)(counter++ * 131u));
            break;
        }
        got += (size_t)r;
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    snprintf(out, TOK_SERVICE_UID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Creates a fresh uid state, evicting the least recently used one beyond max_uids. */
static void state_create(tok_service *svc, char uid[TOK_SERVICE_UID_LEN + 1])
{
    uid_state **slot;
    pthread_mutex_lock(&svc->table_lock);
    do {
        make_uuid4(uid);
        slot = bucket_slot(svc, uid);
    } while (*slot);
    *slot = state_new(uid);
    lru_push_newest(svc, *slot);
    svc->n_states++;
    while (svc->n_states > svc->max_uids)
        evict_oldest(svc);
    memcpy(svc->last_uid, uid, TOK_SERVICE_UID_LEN + 1);
    pthread_mutex_unlock(&svc->table_lock);
}

/* ---------------------------------------------------------------- tokenizer work (state locked) */

/* ids = encode(render(messages, add_generation_prompt)), minus the generation prompt if asked. */
static void render_and_encode(const tok_service *svc, const uid_state *st, bool drop_generation_prompt,
                              idvec *ids)
{
    chat_message *msgs = xcalloc(st->n_messages, sizeof *msgs);
    for (size_t i = 0; i < st->n_messages; i++) {
        msgs[i].role = st->messages[i].role;
        msgs[i].content = st->messages[i].content;
    }
    chat_template_options opt = {.add_generation_prompt = true, .enable_thinking = -1};
    strbuf text = {0};
    if (!chat_template_render(CHAT_TEMPLATE_QWEN25, msgs, st->n_messages, &opt, &text)) {
        /* unreachable: the service only stores system/user/assistant messages */
        fprintf(stderr, "axllama: tokenizer service: chat template rejected the conversation\n");
        abort();
    }
    iv_clear(ids);
    tokenizer_encode(svc->tok, text.data ? text.data : "", text.len, ids);
    if (drop_generation_prompt)
        ids->len = ids->len >= GENERATION_PROMPT_IDS ? ids->len - GENERATION_PROMPT_IDS : 0;
    sb_free(&text);
    free(msgs);
}

static void idvec_assign(idvec *dst, const int32_t *ids, size_t n)
{
    iv_clear(dst);
    iv_append(dst, ids, n);
}

/* The vendor's last_reply clean-up: drop every literal <think> then every </think>, then strip
 * leading and trailing '\n'. Returns a new string of *len bytes. */
static char *clean_last_reply(const char *reply, size_t n, size_t *len)
{
    static const char *const tags[] = {"<think>", "</think>"};
    strbuf cur = {0};
    sb_append(&cur, reply, n);
    for (size_t t = 0; t < 2; t++) {
        size_t tag_len = strlen(tags[t]);
        strbuf next = {0};
        sb_reserve(&next, cur.len);
        size_t i = 0;
        while (i < cur.len) {
            if (cur.len - i >= tag_len && memcmp(cur.data + i, tags[t], tag_len) == 0) {
                i += tag_len;
            } else {
                sb_putc(&next, cur.data[i]);
                i++;
            }
        }
        sb_free(&cur);
        cur = next;
    }
    size_t start = 0, end = cur.len;
    while (start < end && cur.data[start] == '\n')
        start++;
    while (end > start && cur.data[end - 1] == '\n')
        end--;
    *len = end - start;
    char *out = xstrndup(cur.data ? cur.data + start : "", end - start);
    sb_free(&cur);
    return out;
}

/* ---------------------------------------------------------------- HTTP plumbing */

typedef struct {
    strbuf body;
    bool too_large;
} request_ctx;

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text) /* only if a string was not UTF-8, which the handlers never produce */
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, POST");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a parser message may quote raw request bytes, and truncation may cut a character */
    strbuf text = {0};
    utf8_append_lossy(&text, msg, strlen(msg));
    json_t *obj = json_object();
    json_object_set_new(obj, "error", json_stringn(text.data, text.len));
    sb_free(&text);
    return send_json(conn, status, obj);
}

static enum MHD_Result send_invalid_uid(struct MHD_Connection *conn)
{
    return send_error(conn, MHD_HTTP_NOT_FOUND, "Invalid uid");
}

static json_t *json_ids(const int32_t *ids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    return arr;
}

/* ---------------------------------------------------------------- request validation */

typedef enum { FIELD_ABSENT, FIELD_NULL, FIELD_STRING, FIELD_WRONG_TYPE } field_kind;

static field_kind string_field(json_t *body, const char *key, const char **s, size_t *len)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return FIELD_ABSENT;
    if (json_is_null(v))
        return FIELD_NULL;
    if (!json_is_string(v))
        return FIELD_WRONG_TYPE;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return FIELD_STRING;
}

/* A required string field; on failure the 400 has been queued into *ret. */
static bool require_string(struct MHD_Connection *conn, json_t *body, const char *key, const char **s,
                           size_t *len, enum MHD_Result *ret)
{
    switch (string_field(body, key, s, len)) {
    case FIELD_STRING:
        return true;
    case FIELD_ABSENT:
        *ret = send_error(conn, MHD_HTTP_BAD_REQUEST, "missing field: %s", key);
        return false;
    default:
        *ret = send_error(conn, MHD_HTTP_BAD_REQUEST, "field '%s' must be a string", key);
        return false;
    }
}

/* An optional string-or-null field: *present tells whether a string was given. */
static bool optional_string(struct MHD_Connection *conn, json_t *body, const char *key, const char **s,
                            size_t *len, bool *present, enum MHD_Result *ret)
{
    field_kind k = string_field(body, key, s, len);
    if (k == FIELD_WRONG_TYPE) {
        *ret = send_error(conn, MHD_HTTP_BAD_REQUEST, "field '%s' must be a string or null", key);
        return false;
    }
    *present = k == FIELD_STRING;
    return true;
}

static bool ids_in_range(const tokenizer *tok, const int32_t *ids, size_t n)
{
    size_t vocab = tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab)
            return false;
    return true;
}

/* ---------------------------------------------------------------- endpoints */

static enum MHD_Result handle_get_uid(tok_service *svc, struct MHD_Connection *conn)
{
    char uid[TOK_SERVICE_UID_LEN + 1];
    state_create(svc, uid);
    if (svc->on_new_uid)
        svc->on_new_uid(svc->user, uid);
    json_t *obj = json_object();
    json_object_set_new(obj, "uid", json_string(uid));
    return send_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result handle_special_id(tok_service *svc, struct MHD_Connection *conn, const char *key,
                                         int32_t id)
{
    const char *uid = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "uid");
    if (!uid)
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "missing query parameter: uid");
    uid_state *st = state_acquire(svc, uid);
    if (!st)
        return send_invalid_uid(conn);
    state_release(svc, st);
    json_t *obj = json_object();
    json_object_set_new(obj, key, json_integer(id));
    return send_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result handle_reset(tok_service *svc, struct MHD_Connection *conn, json_t *body,
                                    const char *uid)
{
    enum MHD_Result ret;
    const char *prompt = NULL;
    size_t prompt_len = 0;
    bool has_prompt;
    if (!optional_string(conn, body, "system_prompt", &prompt, &prompt_len, &has_prompt, &ret))
        return ret;
    if (!has_prompt) {
        prompt = CHAT_DEFAULT_SYSTEM_PROMPT;
        prompt_len = strlen(prompt);
    }
    uid_state *st = state_acquire(svc, uid);
    if (!st)
        return send_invalid_uid(conn);
    pthread_mutex_lock(&st->lock);
    state_clear_messages(st);
    state_add_message(st, "system", prompt, prompt_len);
    if (st->has_staged_reset) {
        idvec_assign(&st->token_ids, st->staged_reset.v, st->staged_reset.len);
        st->has_staged_reset = false;
        iv_free(&st->staged_reset);
    } else {
        render_and_encode(svc, st, true, &st->token_ids);
    }
    decode_stream_init(&st->stream);
    json_t *obj = json_object();
    json_object_set_new(obj, "token_ids", json_ids(st->token_ids.v, st->token_ids.len));
    pthread_mutex_unlock(&st->lock);
    state_release(svc, st);
    return send_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result handle_encode(tok_service *svc, struct MHD_Connection *conn, json_t *body,
                                     const char *uid)
{
    enum MHD_Result ret;
    const char *text, *reply = NULL;
    size_t text_len, reply_len = 0;
    bool has_reply;
    if (!require_string(conn, body, "text", &text, &text_len, &ret) ||
        !optional_string(conn, body, "last_reply", &reply, &reply_len, &has_reply, &ret))
        return ret;
    /* img_prompt is ignored, like the vendor does */

    uid_state *st = state_acquire(svc, uid);
    if (!st)
        return send_invalid_uid(conn);
    pthread_mutex_lock(&st->lock);
    json_t *obj = json_object();
    if (st->has_staged_encode) {
        idvec_assign(&st->token_ids, st->staged_full.v, st->staged_full.len);
        size_t diff_from = st->staged_full.len - st->staged_diff;
        st->has_staged_encode = false;
        iv_free(&st->staged_full);
        json_object_set_new(obj, "token_ids", json_ids(st->token_ids.v, st->token_ids.len));
        json_object_set_new(obj, "diff", json_ids(st->token_ids.v + diff_from, st->token_ids.len - diff_from));
    } else {
        if (has_reply) {
            size_t clean_len;
            char *clean = clean_last_reply(reply, reply_len, &clean_len);
            state_add_message(st, "assistant", clean, clean_len);
            free(clean);
            render_and_encode(svc, st, true, &st->token_ids);
        }
        static const char no_think[] = "/no_think";
        size_t suffix_len = sizeof no_think - 1;
        bool has_suffix = text_len >= suffix_len && memcmp(text + text_len - suffix_len, no_think, suffix_len) == 0;
        strbuf user = {0};
        sb_append(&user, text, text_len);
        if (!has_suffix)
            sb_append(&user, no_think, suffix_len);
        state_add_message(st, "user", user.data, user.len);
        sb_free(&user);

        idvec full = {0};
        render_and_encode(svc, st, false, &full);
        size_t diff_from = st->token_ids.len < full.len ? st->token_ids.len : full.len;
        json_object_set_new(obj, "token_ids", json_ids(full.v, full.len));
        json_object_set_new(obj, "diff", json_ids(full.v + diff_from, full.len - diff_from));
        iv_free(&st->token_ids);
        st->token_ids = full;
    }
    decode_stream_init(&st->stream);
    pthread_mutex_unlock(&st->lock);
    state_release(svc, st);
    return send_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result handle_decode(tok_service *svc, struct MHD_Connection *conn, json_t *body,
                                     const char *uid)
{
    json_t *arr = json_object_get(body, "token_ids");
    if (!arr)
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "missing field: token_ids");
    if (!json_is_array(arr))
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "field 'token_ids' must be an array of integers");
    size_t n = json_array_size(arr);
    size_t vocab = tokenizer_vocab_size(svc->tok);
    int32_t *ids = xmalloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v)) {
            free(ids);
            return send_error(conn, MHD_HTTP_BAD_REQUEST, "field 'token_ids' must be an array of integers");
        }
        json_int_t id = json_integer_value(v);
        if (id < 0 || (uint64_t)id >= vocab) {
            free(ids);
            return send_error(conn, MHD_HTTP_BAD_REQUEST, "token id %" JSON_INTEGER_FORMAT
                              " is out of range (valid ids: 0..%zu)", id, vocab - 1);
        }
        ids[i] = (int32_t)id;
    }

    uid_state *st = state_acquire(svc, uid);
    if (!st) {
        free(ids);
        return send_invalid_uid(conn);
    }
    strbuf text = {0};
    sb_append(&text, "", 0); /* NUL-terminated even when nothing completes */
    pthread_mutex_lock(&st->lock);
    decode_stream_push(&st->stream, svc->tok, ids, n, &text); /* ids were checked above */
    if (svc->on_decode)
        svc->on_decode(svc->user, st->uid, ids, n, text.data, text.len);
    pthread_mutex_unlock(&st->lock);
    state_release(svc, st);
    free(ids);

    json_t *obj = json_object();
    json_object_set_new(obj, "text", json_stringn(text.data, text.len));
    sb_free(&text);
    return send_json(conn, MHD_HTTP_OK, obj);
}

static enum MHD_Result handle_post(tok_service *svc, struct MHD_Connection *conn, const char *path,
                                   const request_ctx *req)
{
    enum { POST_RESET, POST_ENCODE, POST_DECODE } which;
    if (!strcmp(path, "/reset"))
        which = POST_RESET;
    else if (!strcmp(path, "/encode"))
        which = POST_ENCODE;
    else if (!strcmp(path, "/decode"))
        which = POST_DECODE;
    else
        return send_error(conn, MHD_HTTP_NOT_FOUND, "Invalid POST endpoint");

    json_error_t jerr;
    json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, &jerr);
    if (!body)
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid JSON: %s (line %d, column %d)", jerr.text,
                          jerr.line, jerr.column);
    enum MHD_Result ret;
    const char *uid;
    size_t uid_len;
    if (!json_is_object(body)) {
        ret = send_error(conn, MHD_HTTP_BAD_REQUEST, "request body must be a JSON object");
    } else if (require_string(conn, body, "uid", &uid, &uid_len, &ret)) {
        if (which == POST_RESET)
            ret = handle_reset(svc, conn, body, uid);
        else if (which == POST_ENCODE)
            ret = handle_encode(svc, conn, body, uid);
        else
            ret = handle_decode(svc, conn, body, uid);
    }
    json_decref(body);
    return ret;
}

static enum MHD_Result handle_get(tok_service *svc, struct MHD_Connection *conn, const char *path)
{
    if (!strcmp(path, "/get_uid"))
        return handle_get_uid(svc, conn);
    if (!strcmp(path, "/bos_id"))
        return handle_special_id(svc, conn, "bos_id", tokenizer_bos_id(svc->tok));
    if (!strcmp(path, "/eos_id"))
        return handle_special_id(svc, conn, "eos_id", tokenizer_eos_id(svc->tok));
    return send_error(conn, MHD_HTTP_NOT_FOUND, "Invalid GET endpoint");
}

/* ---------------------------------------------------------------- proxy mode */

typedef struct {
    strbuf data;
    size_t limit;
    bool too_large;
} proxy_body;

static size_t proxy_collect(char *data, size_t size, size_t n, void *user)
{
    proxy_body *b = user;
    size_t len = size * n;
    if (b->data.len + len > b->limit) {
        b->too_large = true;
        return 0; /* aborts the transfer */
    }
    sb_append(&b->data, data, len);
    return len;
}

static void proxy_error(tok_service *svc, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void proxy_error(tok_service *svc, const char *path, const char *fmt, ...)
{
    if (!svc->on_upstream_error)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    svc->on_upstream_error(svc->user, path, msg);
}

/* An array of integers as int32 ids (malloc'ed, never NULL); false if it is not one. */
static bool proxy_ids(json_t *arr, int32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr))
        return false;
    size_t len = json_array_size(arr);
    int32_t *ids = xmalloc((len ? len : 1) * sizeof *ids);
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
            free(ids);
            return false;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    *out = ids;
    *n = len;
    return true;
}

/* Tells the callbacks what a successful answer of the upstream says. */
static void proxy_observe(tok_service *svc, const char *path, const request_ctx *req, const proxy_body *resp)
{
    bool get_uid = !strcmp(path, "/get_uid"), encode = !strcmp(path, "/encode"), decode = !strcmp(path, "/decode");
    if (!get_uid && !encode && !decode)
        return;
    json_t *answer = json_loadb(resp->data.data ? resp->data.data : "", resp->data.len, 0, NULL);
    json_t *request = decode || encode ? json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL) : NULL;
    const char *uid = request ? json_string_value(json_object_get(request, "uid")) : NULL;
    bool ok = false;
    if (get_uid) {
        const char *u = json_string_value(json_object_get(answer, "uid"));
        if (u && strlen(u) <= TOK_SERVICE_UID_LEN) {
            ok = true;
            pthread_mutex_lock(&svc->table_lock);
            snprintf(svc->last_uid, sizeof svc->last_uid, "%s", u);
            pthread_mutex_unlock(&svc->table_lock);
            if (svc->on_new_uid)
                svc->on_new_uid(svc->user, u);
        }
    } else if (encode) {
        int32_t *diff;
        size_t n;
        if (proxy_ids(json_object_get(answer, "diff"), &diff, &n)) {
            ok = true;
            if (svc->on_encode)
                svc->on_encode(svc->user, uid ? uid : "", diff, n);
            free(diff);
        }
    } else {
        int32_t *ids;
        size_t n;
        json_t *text = json_object_get(answer, "text");
        if (json_is_string(text) && proxy_ids(json_object_get(request, "token_ids"), &ids, &n)) {
            ok = true;
            if (svc->on_decode)
                svc->on_decode(svc->user, uid ? uid : "", ids, n, json_string_value(text), json_string_length(text));
            free(ids);
        }
    }
    if (!ok)
        proxy_error(svc, path, "tokenizer upstream %s: malformed answer to %s", svc->upstream_url, path);
    json_decref(answer);
    json_decref(request);
}

/* Forwards one request to the upstream and returns its answer unchanged (502 if there is none). */
static enum MHD_Result proxy_forward(tok_service *svc, struct MHD_Connection *conn, bool is_get, const char *path,
                                     const request_ctx *req)
{
    CURL *curl = curl_easy_init();
    if (!curl)
        return send_error(conn, MHD_HTTP_BAD_GATEWAY, "tokenizer upstream: cannot create an HTTP client");
    strbuf url = {0};
    sb_printf(&url, "%s%s", svc->upstream_url, path);
    const char *uid = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "uid");
    if (uid) {
        char *esc = curl_easy_escape(curl, uid, 0);
        sb_printf(&url, "?uid=%s", esc ? esc : "");
        curl_free(esc);
    }
    proxy_body resp = {.limit = svc->max_body};
    sb_append(&resp.data, "", 0);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    long timeout_ms = (long)(svc->upstream_timeout_s * 1000);
    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, proxy_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    if (!is_get) {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body.data ? req->body.data : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)req->body.len);
    }
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    char *ctype = NULL;
    if (rc == CURLE_OK) {
        char *ct = NULL;
        if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            ctype = xstrdup(ct);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    sb_free(&url);

    enum MHD_Result ret;
    if (rc != CURLE_OK || code < 100 || code > 599) {
        const char *why = resp.too_large ? "answer too large" : rc != CURLE_OK ? curl_easy_strerror(rc) : "bad status";
        proxy_error(svc, path, "tokenizer upstream %s: %s %s: %s", svc->upstream_url, is_get ? "GET" : "POST", path, why);
        ret = send_error(conn, MHD_HTTP_BAD_GATEWAY, "tokenizer upstream %s: %s", svc->upstream_url, why);
    } else {
        if (code == 200)
            proxy_observe(svc, path, req, &resp);
        else if (strcmp(path, "/api/generate_provider") && strcmp(path, "/api/stop"))
            proxy_error(svc, path, "tokenizer upstream %s: %s %s answered %ld: %.200s", svc->upstream_url,
                        is_get ? "GET" : "POST", path, code, resp.data.data);
        struct MHD_Response *r = MHD_create_response_from_buffer(resp.data.len, resp.data.data, MHD_RESPMEM_MUST_COPY);
        if (r) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype ? ctype : "application/json");
            ret = MHD_queue_response(conn, (unsigned)code, r);
            MHD_destroy_response(r);
        } else {
            ret = MHD_NO;
        }
    }
    free(ctype);
    sb_free(&resp.data);
    return ret;
}

/* libmicrohttpd calls this once with the headers, then once per chunk of body, then once more with
 * *upload_size == 0 when the body is complete. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    tok_service *svc = cls;
    bool is_get = !strcmp(method, MHD_HTTP_METHOD_GET);
    bool is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
    request_ctx *req = *con_cls;

    if (!req) { /* headers only; answering now would make libmicrohttpd close the connection */
        if (!is_get && !is_post)
            return send_error(conn, HTTP_METHOD_NOT_ALLOWED, "Method not allowed (use GET or POST)");
        req = xcalloc(1, sizeof *req);
        *con_cls = req;
        /* reject a declared oversize body before it is uploaded */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (is_post && cl) {
            errno = 0;
            unsigned long long declared = strtoull(cl, NULL, 10);
            if (errno == ERANGE || declared > svc->max_body) {
                req->too_large = true;
                return send_error(conn, HTTP_CONTENT_TOO_LARGE, "request body too large (limit %zu bytes)",
                                  svc->max_body);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a chunk of body */
        if (!req->too_large) {
            if (*upload_size > svc->max_body - req->body.len) {
                req->too_large = true; /* stop buffering; answer 413 once the upload ends */
                sb_free(&req->body);
            } else {
                sb_append(&req->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }

    if (svc->on_request) {
        const char *query = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "uid");
        strbuf path = {0};
        sb_puts(&path, url);
        if (query)
            sb_printf(&path, "?uid=%s", query);
        svc->on_request(svc->user, method, path.data, req->body.data ? req->body.data : "", req->body.len);
        sb_free(&path);
    }
    while (url[0] == '/' && url[1] == '/')
        url++;
    if (svc->upstream_url && !req->too_large)
        return proxy_forward(svc, conn, is_get, url, req);
    if (is_get)
        return handle_get(svc, conn, url);
    if (req->too_large)
        return send_error(conn, HTTP_CONTENT_TOO_LARGE, "request body too large (limit %zu bytes)", svc->max_body);
    return handle_post(svc, conn, url, req);
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    request_ctx *req = *con_cls;
    if (req) {
        sb_free(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* ---------------------------------------------------------------- start / stop */

/* Binds and listens on host:port (IPv4 addresses tried first); returns the socket or -1. */
static int open_listener(const char *host, uint16_t port, char *err, size_t errlen)
{
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list;
    int rc = getaddrinfo(host, port_text, &hints, &list);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
            if ((pass == 0) != (ai->ai_family == AF_INET))
                continue;
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
            if (fd < 0) {
                last_errno = errno;
                continue;
            }
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
                last_errno = errno;
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(list);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, (unsigned)port,
                 last_errno ? strerror(last_errno) : "no usable address");
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("axllama: tokenizer service: ", stderr);
    vfprintf(stderr, fmt, ap);
}

tok_service *tok_service_start(const tok_service_config *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->tok) {
        snprintf(err, errlen, "tokenizer service: no tokenizer given");
        return NULL;
    }
    tok_service *svc = xcalloc(1, sizeof *svc);
    svc->tok = cfg->tok;
    svc->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : TOK_SERVICE_DEFAULT_MAX_BODY;
    svc->max_uids = cfg->max_uids ? cfg->max_uids : TOK_SERVICE_DEFAULT_MAX_UIDS;
    svc->on_new_uid = cfg->on_new_uid;
    svc->on_decode = cfg->on_decode;
    svc->on_request = cfg->on_request;
    if (cfg->upstream_url) {
        size_t n = strlen(cfg->upstream_url);
        while (n && cfg->upstream_url[n - 1] == '/')
            n--;
        svc->upstream_url = xstrndup(cfg->upstream_url, n);
    }
    svc->upstream_timeout_s = cfg->upstream_timeout_s > 0 ? cfg->upstream_timeout_s : TOK_SERVICE_DEFAULT_TIMEOUT_S;
    svc->on_encode = cfg->on_encode;
    svc->on_upstream_error = cfg->on_upstream_error;
    svc->user = cfg->user;
    svc->n_buckets = 16;
    while (svc->n_buckets < svc->max_uids && svc->n_buckets < ((size_t)1 << 20))
        svc->n_buckets *= 2;
    svc->buckets = xcalloc(svc->n_buckets, sizeof *svc->buckets);
    pthread_mutex_init(&svc->table_lock, NULL);

    const char *host = cfg->host ? cfg->host : TOK_SERVICE_DEFAULT_HOST;
    svc->listen_fd = open_listener(host, cfg->port, err, errlen);
    if (svc->listen_fd < 0) {
        tok_service_stop(svc);
        return NULL;
    }
    svc->port = bound_port(svc->listen_fd);

    unsigned threads = cfg->threads ? cfg->threads : TOK_SERVICE_DEFAULT_THREADS;
    unsigned timeout = cfg->connection_timeout_s ? cfg->connection_timeout_s : TOK_SERVICE_DEFAULT_TIMEOUT_S;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    svc->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, svc,
                                   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                   MHD_OPTION_LISTEN_SOCKET, svc->listen_fd,
                                   MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
                                   MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                   MHD_OPTION_CONNECTION_LIMIT, 256u,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_request_done, NULL,
                                   MHD_OPTION_END);
    if (!svc->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%u", host, (unsigned)svc->port);
        tok_service_stop(svc);
        return NULL;
    }
    return svc;
}

void tok_service_stop(tok_service *svc)
{
    if (!svc)
        return;
    if (svc->daemon) {
        /* take the listen socket back so that it is closed exactly once, by us (if that fails the
         * daemon still owns it) */
        if (MHD_quiesce_daemon(svc->daemon) == MHD_INVALID_SOCKET)
            svc->listen_fd = -1;
        MHD_stop_daemon(svc->daemon);
    }
    if (svc->listen_fd >= 0)
        close(svc->listen_fd);
    for (size_t i = 0; svc->buckets && i < svc->n_buckets; i++) {
        uid_state *st = svc->buckets[i];
        while (st) {
            uid_state *next = st->hash_next;
            state_free(st);
            st = next;
        }
    }
    free(svc->buckets);
    free(svc->upstream_url);
    pthread_mutex_destroy(&svc->table_lock);
    free(svc);
}

uint16_t tok_service_port(const tok_service *svc)
{
    return svc->port;
}

bool tok_service_last_uid(tok_service *svc, char out[TOK_SERVICE_UID_LEN + 1])
{
    pthread_mutex_lock(&svc->table_lock);
    bool have = svc->last_uid[0] != '\0';
    if (have)
        memcpy(out, svc->last_uid, TOK_SERVICE_UID_LEN + 1);
    pthread_mutex_unlock(&svc->table_lock);
    return have;
}

/* ---------------------------------------------------------------- the seam */

bool tok_service_stage_encode(tok_service *svc, const char *uid, const int32_t *full, size_t n_full,
                              size_t n_diff)
{
    if (!uid || n_diff > n_full || (n_full && !full) || !ids_in_range(svc->tok, full, n_full))
        return false;
    uid_state *st = state_acquire(svc, uid);
    if (!st)
        return false;
    pthread_mutex_lock(&st->lock);
    idvec_assign(&st->staged_full, full, n_full);
    st->staged_diff = n_diff;
    st->has_staged_encode = true;
    pthread_mutex_unlock(&st->lock);
    state_release(svc, st);
    return true;
}

bool tok_service_stage_reset(tok_service *svc, const char *uid, const int32_t *ids, size_t n)
{
    if (!uid || (n && !ids) || !ids_in_range(svc->tok, ids, n))
        return false;
    uid_state *st = state_acquire(svc, uid);
    if (!st)
        return false;
    pthread_mutex_lock(&st->lock);
    idvec_assign(&st->staged_reset, ids, n);
    st->has_staged_reset = true;
    pthread_mutex_unlock(&st->lock);
    state_release(svc, st);
    return true;
}

bool tok_service_clear_staged(tok_service *svc, const char *uid)
{
    if (!uid)
        return false;
    uid_state *st = state_acquire(svc, uid);
    if (!st)
        return false;
    pthread_mutex_lock(&st->lock);
    st->has_staged_encode = false;
    iv_free(&st->staged_full);
    st->has_staged_reset = false;
    iv_free(&st->staged_reset);
    pthread_mutex_unlock(&st->lock);
    state_release(svc, st);
    return true;
}
