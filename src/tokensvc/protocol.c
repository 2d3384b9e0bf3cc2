/* protocol: the tokenizer service's six endpoints (docs/spec/tokenizer-protocol.md): GET /get_uid,
 * /bos_id, /eos_id and POST /reset, /encode, /decode; the validation of their requests (400s with a
 * message naming the field), the conversation each uid keeps (rendered with the Qwen2.5 template and
 * encoded), the staged answers of the seam, and the JSON answers. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "tokenizer/chat_template.h"
#include "tokensvc/tokensvc_internal.h"

#define STATUS_OK 200u
#define STATUS_BAD_REQUEST 400u
#define STATUS_NOT_FOUND 404u

/* The ids of the generation prompt `<|im_start|>assistant\n` that /reset and a reply drop. */
#define GENERATION_PROMPT_IDS 3

/* ---------------------------------------------------------------- answers */

/* The object as compact JSON (taken over); NULL (the connection is dropped) only if a string was not
 * UTF-8, which the handlers never produce. */
static http_response *tokproto_json(unsigned status, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return NULL;
    return http_response_take(status, TOKSVC_CONTENT_TYPE, text, strlen(text));
}

http_response *tokproto_error(unsigned status, const char *fmt, ...)
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
    return tokproto_json(status, obj);
}

/* The 404 for a uid the service does not know, reported first (on_unknown_uid) for a POST. */
static http_response *tokproto_invalid_uid(tok_service *svc, const char *path, const char *uid)
{
    if (path && svc->on_unknown_uid)
        svc->on_unknown_uid(svc->user, path, uid);
    return tokproto_error(STATUS_NOT_FOUND, "Invalid uid");
}

static json_t *tokproto_json_ids(const int32_t *ids, size_t n)
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

/* A required string field; on failure *fail is the 400 to answer. */
static bool require_string(json_t *body, const char *key, const char **s, size_t *len, http_response **fail)
{
    switch (string_field(body, key, s, len)) {
    case FIELD_STRING: return true;
    case FIELD_ABSENT: *fail = tokproto_error(STATUS_BAD_REQUEST, "missing field: %s", key); return false;
    default: *fail = tokproto_error(STATUS_BAD_REQUEST, "field '%s' must be a string", key); return false;
    }
}

/* An optional string-or-null field: *present tells whether a string was given. */
static bool optional_string(json_t *body, const char *key, const char **s, size_t *len, bool *present,
                            http_response **fail)
{
    field_kind k = string_field(body, key, s, len);
    if (k == FIELD_WRONG_TYPE) {
        *fail = tokproto_error(STATUS_BAD_REQUEST, "field '%s' must be a string or null", key);
        return false;
    }
    *present = k == FIELD_STRING;
    return true;
}

bool tokproto_ids_in_vocab(const tokenizer *tok, const int32_t *ids, size_t n)
{
    size_t vocab = tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab)
            return false;
    return true;
}

/* ---------------------------------------------------------------- tokenizer work (state locked) */

/* ids = encode(render(messages, add_generation_prompt)), minus the generation prompt if asked. */
static void render_and_encode(const tok_service *svc, const uid_state *st, bool drop_generation_prompt, idvec *ids)
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

/* ---------------------------------------------------------------- GET endpoints */

static http_response *tokproto_get_uid(tok_service *svc)
{
    char uid[TOK_SERVICE_UID_LEN + 1];
    uid_table_create(svc->uids, uid);
    if (svc->on_new_uid)
        svc->on_new_uid(svc->user, uid);
    json_t *obj = json_object();
    json_object_set_new(obj, "uid", json_string(uid));
    return tokproto_json(STATUS_OK, obj);
}

static http_response *tokproto_special_id(tok_service *svc, const http_request *req, const char *key, int32_t id)
{
    const char *uid = http_request_query(req, "uid");
    if (!uid)
        return tokproto_error(STATUS_BAD_REQUEST, "missing query parameter: uid");
    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st)
        return tokproto_invalid_uid(svc, NULL, uid);
    uid_table_release(svc->uids, st);
    json_t *obj = json_object();
    json_object_set_new(obj, key, json_integer(id));
    return tokproto_json(STATUS_OK, obj);
}

http_response *tokproto_get(tok_service *svc, const http_request *req, const char *path)
{
    if (!strcmp(path, "/get_uid"))
        return tokproto_get_uid(svc);
    if (!strcmp(path, "/bos_id"))
        return tokproto_special_id(svc, req, "bos_id", tokenizer_bos_id(svc->tok));
    if (!strcmp(path, "/eos_id"))
        return tokproto_special_id(svc, req, "eos_id", tokenizer_eos_id(svc->tok));
    return tokproto_error(STATUS_NOT_FOUND, "Invalid GET endpoint");
}

/* ---------------------------------------------------------------- POST endpoints */

static http_response *tokproto_reset(tok_service *svc, json_t *body, const char *uid)
{
    http_response *fail = NULL;
    const char *prompt = NULL;
    size_t prompt_len = 0;
    bool has_prompt;
    if (!optional_string(body, "system_prompt", &prompt, &prompt_len, &has_prompt, &fail))
        return fail;
    if (!has_prompt) {
        prompt = CHAT_DEFAULT_SYSTEM_PROMPT;
        prompt_len = strlen(prompt);
    }
    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st)
        return tokproto_invalid_uid(svc, "/reset", uid);
    pthread_mutex_lock(&st->lock);
    uid_state_clear_messages(st);
    uid_state_add_message(st, "system", prompt, prompt_len);
    if (st->has_staged_reset) {
        idvec_assign(&st->token_ids, st->staged_reset.v, st->staged_reset.len);
        st->has_staged_reset = false;
        iv_free(&st->staged_reset);
    } else {
        render_and_encode(svc, st, true, &st->token_ids);
    }
    decode_stream_init(&st->stream);
    json_t *obj = json_object();
    json_object_set_new(obj, "token_ids", tokproto_json_ids(st->token_ids.v, st->token_ids.len));
    pthread_mutex_unlock(&st->lock);
    uid_table_release(svc->uids, st);
    return tokproto_json(STATUS_OK, obj);
}

/* An unstaged /encode: the reply (if any) and the text join the conversation, which is rendered and
 * encoded; the diff is what is new since the uid's last token_ids. State locked. */
static void tokproto_encode_computed(tok_service *svc, uid_state *st, const char *text, size_t text_len,
                                     const char *reply, size_t reply_len, bool has_reply, json_t *obj)
{
    if (has_reply) {
        size_t clean_len;
        char *clean = clean_last_reply(reply, reply_len, &clean_len);
        uid_state_add_message(st, "assistant", clean, clean_len);
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
    uid_state_add_message(st, "user", user.data, user.len);
    sb_free(&user);

    idvec full = {0};
    render_and_encode(svc, st, false, &full);
    size_t diff_from = st->token_ids.len < full.len ? st->token_ids.len : full.len;
    json_object_set_new(obj, "token_ids", tokproto_json_ids(full.v, full.len));
    json_object_set_new(obj, "diff", tokproto_json_ids(full.v + diff_from, full.len - diff_from));
    iv_free(&st->token_ids);
    st->token_ids = full;
}

static http_response *tokproto_encode(tok_service *svc, json_t *body, const char *uid)
{
    http_response *fail = NULL;
    const char *text, *reply = NULL;
    size_t text_len, reply_len = 0;
    bool has_reply;
    if (!require_string(body, "text", &text, &text_len, &fail) ||
        !optional_string(body, "last_reply", &reply, &reply_len, &has_reply, &fail))
        return fail;
    /* img_prompt is ignored, like the vendor does */

    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st)
        return tokproto_invalid_uid(svc, "/encode", uid);
    pthread_mutex_lock(&st->lock);
    json_t *obj = json_object();
    if (st->has_staged_encode) {
        idvec_assign(&st->token_ids, st->staged_full.v, st->staged_full.len);
        size_t diff_from = st->staged_full.len - st->staged_diff;
        st->has_staged_encode = false;
        iv_free(&st->staged_full);
        json_object_set_new(obj, "token_ids", tokproto_json_ids(st->token_ids.v, st->token_ids.len));
        /* no ids staged: v may be NULL, and NULL + 0 is undefined */
        const int32_t *diff = st->token_ids.len ? st->token_ids.v + diff_from : NULL;
        json_object_set_new(obj, "diff", tokproto_json_ids(diff, st->token_ids.len - diff_from));
    } else {
        tokproto_encode_computed(svc, st, text, text_len, reply, reply_len, has_reply, obj);
    }
    decode_stream_init(&st->stream);
    pthread_mutex_unlock(&st->lock);
    uid_table_release(svc->uids, st);
    return tokproto_json(STATUS_OK, obj);
}

static http_response *tokproto_decode(tok_service *svc, json_t *body, const char *uid)
{
    json_t *arr = json_object_get(body, "token_ids");
    if (!arr)
        return tokproto_error(STATUS_BAD_REQUEST, "missing field: token_ids");
    if (!json_is_array(arr))
        return tokproto_error(STATUS_BAD_REQUEST, "field 'token_ids' must be an array of integers");
    size_t n = json_array_size(arr);
    size_t vocab = tokenizer_vocab_size(svc->tok);
    int32_t *ids = xmalloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v)) {
            free(ids);
            return tokproto_error(STATUS_BAD_REQUEST, "field 'token_ids' must be an array of integers");
        }
        json_int_t id = json_integer_value(v);
        if (id < 0 || (uint64_t)id >= vocab) {
            free(ids);
            return tokproto_error(STATUS_BAD_REQUEST,
                                  "token id %" JSON_INTEGER_FORMAT " is out of range (valid ids: 0..%zu)", id,
                                  vocab - 1);
        }
        ids[i] = (int32_t)id;
    }

    uid_state *st = uid_table_acquire(svc->uids, uid);
    if (!st) {
        free(ids);
        return tokproto_invalid_uid(svc, "/decode", uid);
    }
    strbuf text = {0};
    sb_append(&text, "", 0); /* NUL-terminated even when nothing completes */
    pthread_mutex_lock(&st->lock);
    decode_stream_push(&st->stream, svc->tok, ids, n, &text); /* ids were checked above */
    if (svc->on_decode)
        svc->on_decode(svc->user, st->uid, ids, n, text.data, text.len);
    pthread_mutex_unlock(&st->lock);
    uid_table_release(svc->uids, st);
    free(ids);

    json_t *obj = json_object();
    json_object_set_new(obj, "text", json_stringn(text.data, text.len));
    sb_free(&text);
    return tokproto_json(STATUS_OK, obj);
}

http_response *tokproto_post(tok_service *svc, const http_request *req, const char *path)
{
    enum { POST_RESET, POST_ENCODE, POST_DECODE } which;
    if (!strcmp(path, "/reset"))
        which = POST_RESET;
    else if (!strcmp(path, "/encode"))
        which = POST_ENCODE;
    else if (!strcmp(path, "/decode"))
        which = POST_DECODE;
    else
        return tokproto_error(STATUS_NOT_FOUND, "Invalid POST endpoint");

    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!body)
        return tokproto_error(STATUS_BAD_REQUEST, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                              jerr.column);
    http_response *answer = NULL;
    const char *uid;
    size_t uid_len;
    if (!json_is_object(body)) {
        answer = tokproto_error(STATUS_BAD_REQUEST, "request body must be a JSON object");
    } else if (require_string(body, "uid", &uid, &uid_len, &answer)) {
        if (which == POST_RESET)
            answer = tokproto_reset(svc, body, uid);
        else if (which == POST_ENCODE)
            answer = tokproto_encode(svc, body, uid);
        else
            answer = tokproto_decode(svc, body, uid);
    }
    json_decref(body);
    return answer;
}
