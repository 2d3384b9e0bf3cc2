/* test_tokensvc: the tokenizer service (src/tokensvc) over real HTTP (libcurl) with the real Qwen3
 * tokenizer: every endpoint, the token arithmetic of reset/encode, streaming decode, errors, limits,
 * concurrency, the staging seam and observers, and `axllama tokenizer serve` end to end.
 * Needs AXLLAMA_TOKENIZER_DIR; the CLI tests also AXLLAMA_BUILD (skipped without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokensvc/tokensvc.h"

#define DEFAULT_PROMPT CHAT_DEFAULT_SYSTEM_PROMPT
#define IM_START 151644
#define IM_END 151645
#define NEWLINE_ID 198
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

static tokenizer *g_tok;
static tok_service *g_svc;
static char g_base[64];

/* ------------------------------------------------------------------ observers */

typedef struct {
    char uid[TOK_SERVICE_UID_LEN + 1];
    char *text;
    size_t n_ids;
} decode_event;

static struct {
    pthread_mutex_t lock;
    decode_event events[4096];
    size_t n_events;
    char new_uids[8][TOK_SERVICE_UID_LEN + 1];
    size_t n_new_uids; /* total count; the array keeps the last 8 */
    int wrong_user;    /* callbacks that got another user pointer */
} g_seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_new_uid(void *user, const char *uid)
{
    pthread_mutex_lock(&g_seen.lock);
    g_seen.wrong_user += user != &g_seen;
    memcpy(g_seen.new_uids[g_seen.n_new_uids % 8], uid, TOK_SERVICE_UID_LEN + 1);
    g_seen.n_new_uids++;
    pthread_mutex_unlock(&g_seen.lock);
}

static void on_decode(void *user, const char *uid, const int32_t *ids, size_t n_ids, const char *text, size_t len)
{
    (void)ids;
    pthread_mutex_lock(&g_seen.lock);
    g_seen.wrong_user += user != &g_seen;
    if (g_seen.n_events < sizeof g_seen.events / sizeof g_seen.events[0]) {
        decode_event *e = &g_seen.events[g_seen.n_events++];
        memcpy(e->uid, uid, TOK_SERVICE_UID_LEN + 1);
        e->text = xstrndup(text, len);
        e->n_ids = n_ids;
    }
    pthread_mutex_unlock(&g_seen.lock);
}

static bool seen_new_uid(const char *uid)
{
    pthread_mutex_lock(&g_seen.lock);
    bool found = false;
    for (size_t i = 0; i < 8 && i < g_seen.n_new_uids; i++)
        found |= strcmp(g_seen.new_uids[i], uid) == 0;
    pthread_mutex_unlock(&g_seen.lock);
    return found;
}

/* ------------------------------------------------------------------ HTTP client helpers */

typedef struct {
    long status;
    strbuf body;
    strbuf headers;
    long connects; /* new connections curl had to open */
    CURLcode rc;
} http_result;

static size_t collect(char *data, size_t size, size_t n, void *sb)
{
    sb_append(sb, data, size * n);
    return size * n;
}

static void http_result_free(http_result *r)
{
    sb_free(&r->body);
    sb_free(&r->headers);
}

/* One request without cmocka asserts (usable on any thread); curl may be a reused handle
 * (keep-alive) or NULL for a fresh one. */
static http_result http_raw(CURL *curl, const char *base, const char *method, const char *path, const char *body,
                            size_t body_len, bool chunked)
{
    http_result r = {.rc = CURLE_FAILED_INIT};
    sb_append(&r.body, "", 0);
    sb_append(&r.headers, "", 0);
    bool own = !curl;
    if (own)
        curl = curl_easy_init();
    if (!curl)
        return r;
    char url[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    r.rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.connects);
    sb_append(&r.body, "", 0);
    sb_append(&r.headers, "", 0);
    curl_slist_free_all(hdrs);
    if (own)
        curl_easy_cleanup(curl);
    return r;
}

static http_result http_on(CURL *curl, const char *base, const char *method, const char *path, const char *body,
                           size_t body_len, bool chunked)
{
    http_result r = http_raw(curl, base, method, path, body, body_len, chunked);
    if (r.rc != CURLE_OK)
        fail_msg("%s %s%s: %s", method, base, path, curl_easy_strerror(r.rc));
    return r;
}

static http_result http_get(const char *path)
{
    return http_on(NULL, g_base, "GET", path, NULL, 0, false);
}

static http_result http_post(const char *path, const char *body)
{
    return http_on(NULL, g_base, "POST", path, body, strlen(body), false);
}

/* POSTs a jansson object (stolen) as compact JSON. */
static http_result http_post_json(const char *base, const char *path, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    http_result r = http_on(NULL, base, "POST", path, text, strlen(text), false);
    free(text);
    return r;
}

static void assert_response(http_result *r, long status, const char *body)
{
    if (r->status != status || strcmp(r->body.data, body) != 0)
        fail_msg("expected %ld %s\n     got %ld %s", status, body, r->status, r->body.data);
    http_result_free(r);
}

/* Asserts the status and that the body is JSON equal to expected (stolen). */
static void assert_json_response(http_result *r, long status, json_t *expected)
{
    json_t *got = json_loads(r->body.data, 0, NULL);
    char *want = json_dumps(expected, JSON_COMPACT);
    if (r->status != status || !got || !json_equal(got, expected))
        fail_msg("expected %ld %s\n     got %ld %s", status, want, r->status, r->body.data);
    free(want);
    json_decref(got);
    json_decref(expected);
    http_result_free(r);
}

static void new_uid_on(const char *base, char uid[TOK_SERVICE_UID_LEN + 1])
{
    http_result r = http_on(NULL, base, "GET", "/get_uid", NULL, 0, false);
    assert_int_equal(r.status, 200);
    json_t *obj = json_loads(r.body.data, 0, NULL);
    assert_non_null(obj);
    const char *s = json_string_value(json_object_get(obj, "uid"));
    assert_non_null(s);
    assert_int_equal(strlen(s), TOK_SERVICE_UID_LEN);
    memcpy(uid, s, TOK_SERVICE_UID_LEN + 1);
    json_decref(obj);
    http_result_free(&r);
}

static void new_uid(char uid[TOK_SERVICE_UID_LEN + 1])
{
    new_uid_on(g_base, uid);
}

static json_t *ids_json(const idvec *ids)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < ids->len; i++)
        json_array_append_new(arr, json_integer(ids->v[i]));
    return arr;
}

static void json_to_ids(json_t *arr, idvec *out)
{
    assert_true(json_is_array(arr));
    iv_clear(out);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        assert_true(json_is_integer(json_array_get(arr, i)));
        iv_push(out, (int32_t)json_integer_value(json_array_get(arr, i)));
    }
}

/* ------------------------------------------------------------------ expected values */

static void encode_text(const char *text, idvec *out)
{
    iv_clear(out);
    tokenizer_encode(g_tok, text, strlen(text), out);
}

/* encode(render(msgs, add_generation_prompt=True)), minus the 3 generation-prompt ids if asked
 * (no cmocka asserts: usable on any thread). */
static bool render_ids(const chat_message *msgs, size_t n, bool drop3, idvec *out)
{
    chat_template_options opt = {.add_generation_prompt = true, .enable_thinking = -1};
    strbuf text = {0};
    bool ok = chat_template_render(CHAT_TEMPLATE_QWEN25, msgs, n, &opt, &text);
    iv_clear(out);
    if (ok)
        tokenizer_encode(g_tok, text.data, text.len, out);
    if (drop3)
        ok = ok && out->len >= 3 && (out->len -= 3, true);
    sb_free(&text);
    return ok;
}

static void expect_render(const chat_message *msgs, size_t n, bool drop3, idvec *out)
{
    assert_true(render_ids(msgs, n, drop3, out));
}

static void assert_ids_equal(const idvec *got, const idvec *want)
{
    if (got->len != want->len)
        fail_msg("id count: got %zu want %zu", got->len, want->len);
    for (size_t i = 0; i < got->len; i++)
        if (got->v[i] != want->v[i])
            fail_msg("id %zu: got %d want %d", i, got->v[i], want->v[i]);
}

static http_result post_reset(const char *uid, const char *system_prompt)
{
    json_t *req = json_pack("{ss}", "uid", uid);
    if (system_prompt)
        json_object_set_new(req, "system_prompt", json_string(system_prompt));
    return http_post_json(g_base, "/reset", req);
}

/* POST /encode; returns its token_ids and diff (status must be 200). last_reply NULL = omitted. */
static void encode_turn_on(const char *base, const char *uid, const char *text, const char *last_reply, idvec *full,
                           idvec *diff)
{
    json_t *req = json_pack("{sssssb}", "uid", uid, "text", text, "img_prompt", 0);
    if (last_reply)
        json_object_set_new(req, "last_reply", json_string(last_reply));
    http_result r = http_post_json(base, "/encode", req);
    if (r.status != 200)
        fail_msg("encode: %ld %s", r.status, r.body.data);
    json_t *obj = json_loads(r.body.data, 0, NULL);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 2);
    json_to_ids(json_object_get(obj, "token_ids"), full);
    json_to_ids(json_object_get(obj, "diff"), diff);
    json_decref(obj);
    http_result_free(&r);
}

static void encode_turn(const char *uid, const char *text, const char *last_reply, idvec *full, idvec *diff)
{
    encode_turn_on(g_base, uid, text, last_reply, full, diff);
}

/* POST /decode; returns the text (caller frees). */
static char *decode_ids_on(const char *base, const char *uid, const int32_t *ids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    http_result r = http_post_json(base, "/decode", json_pack("{ssso}", "uid", uid, "token_ids", arr));
    if (r.status != 200)
        fail_msg("decode: %ld %s", r.status, r.body.data);
    json_t *obj = json_loads(r.body.data, 0, NULL);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 1);
    const char *text = json_string_value(json_object_get(obj, "text"));
    assert_non_null(text);
    char *copy = xstrdup(text);
    json_decref(obj);
    http_result_free(&r);
    return copy;
}

static char *decode_ids(const char *uid, const int32_t *ids, size_t n)
{
    return decode_ids_on(g_base, uid, ids, n);
}

static void assert_decodes_to(const char *uid, const int32_t *ids, size_t n, const char *want)
{
    char *got = decode_ids(uid, ids, n);
    assert_string_equal(got, want);
    free(got);
}

static tok_service *start_extra(tok_service_config cfg, char *base, size_t baselen)
{
    char err[256] = "";
    cfg.tok = g_tok;
    tok_service *svc = tok_service_start(&cfg, err, sizeof err);
    if (!svc)
        fail_msg("tok_service_start: %s", err);
    snprintf(base, baselen, "http://127.0.0.1:%u", (unsigned)tok_service_port(svc));
    return svc;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* ------------------------------------------------------------------ fixtures */

static int group_setup(void **state)
{
    (void)state;
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    if (!dir) {
        fprintf(stderr, "AXLLAMA_TOKENIZER_DIR is not set\n");
        return -1;
    }
    char err[256];
    g_tok = tokenizer_load(dir, err, sizeof err);
    if (!g_tok) {
        fprintf(stderr, "tokenizer_load(%s): %s\n", dir, err);
        return -1;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    tok_service_config cfg = {
        .tok = g_tok, .port = 0, .on_new_uid = on_new_uid, .on_decode = on_decode, .user = &g_seen};
    g_svc = tok_service_start(&cfg, err, sizeof err);
    if (!g_svc) {
        fprintf(stderr, "tok_service_start: %s\n", err);
        return -1;
    }
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%u", (unsigned)tok_service_port(g_svc));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tok_service_stop(g_svc);
    tokenizer_free(g_tok);
    for (size_t i = 0; i < g_seen.n_events; i++)
        free(g_seen.events[i].text);
    curl_global_cleanup();
    return 0;
}

/* ------------------------------------------------------------------ GET endpoints */

static void test_get_uid_returns_a_fresh_uuid4_each_time(void **state)
{
    (void)state;
    char a[TOK_SERVICE_UID_LEN + 1], b[TOK_SERVICE_UID_LEN + 1];
    new_uid(a);
    new_uid(b);
    assert_string_not_equal(a, b);
    for (int i = 0; i < TOK_SERVICE_UID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
    http_result r = http_get("/get_uid");
    assert_int_equal(r.status, 200);
    assert_int_equal(strlen(r.body.data), strlen("{\"uid\":\"\"}") + TOK_SERVICE_UID_LEN);
    assert_memory_equal(r.body.data, "{\"uid\":\"", 8);
    http_result_free(&r);
}

static void test_bos_id_is_minus_one_for_qwen3(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1], path[128];
    new_uid(uid);
    snprintf(path, sizeof path, "/bos_id?uid=%s", uid);
    http_result r = http_get(path);
    assert_response(&r, 200, "{\"bos_id\":-1}");
}

static void test_eos_id_is_im_end(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1], path[128];
    new_uid(uid);
    snprintf(path, sizeof path, "/eos_id?uid=%s", uid);
    http_result r = http_get(path);
    assert_response(&r, 200, "{\"eos_id\":151645}");
}

static void test_bos_and_eos_with_unknown_or_missing_uid_fail(void **state)
{
    (void)state;
    http_result r = http_get("/bos_id?uid=00000000-0000-4000-8000-000000000000");
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
    r = http_get("/eos_id?uid=nope");
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
    r = http_get("/eos_id");
    assert_response(&r, 400, "{\"error\":\"missing query parameter: uid\"}");
}

/* ------------------------------------------------------------------ reset */

static void test_reset_default_system_prompt_gives_the_21_system_ids(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    chat_message sys = {.role = "system", .content = DEFAULT_PROMPT};
    idvec want = {0};
    expect_render(&sys, 1, true, &want);
    assert_int_equal(want.len, 21);
    assert_int_equal(want.v[0], IM_START);
    assert_int_equal(want.v[19], IM_END);
    assert_int_equal(want.v[20], NEWLINE_ID);

    http_result r = post_reset(uid, NULL);
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&want)));
    /* an explicit null also means the default prompt */
    char body[256];
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"system_prompt\":null}", uid);
    r = http_post("/reset", body);
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&want)));
    iv_free(&want);
}

static void test_reset_custom_system_prompt(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec want = {0};
    encode_text("<|im_start|>system\nYou are a pirate. Answer in 名字.<|im_end|>\n", &want);
    http_result r = post_reset(uid, "You are a pirate. Answer in 名字.");
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&want)));
    iv_free(&want);
}

static void test_reset_empty_system_prompt_is_used_as_is(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec want = {0};
    encode_text("<|im_start|>system\n<|im_end|>\n", &want);
    assert_int_equal(want.len, 5);
    http_result r = post_reset(uid, "");
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&want)));
    iv_free(&want);
}

/* ------------------------------------------------------------------ encode */

static void test_encode_first_turn_diff_is_the_user_block(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    http_result r = post_reset(uid, NULL);
    assert_int_equal(r.status, 200);
    http_result_free(&r);

    idvec full = {0}, diff = {0}, want_diff = {0}, want_full = {0};
    encode_turn(uid, "Hello there", NULL, &full, &diff);
    encode_text("<|im_start|>user\nHello there/no_think<|im_end|>\n<|im_start|>assistant\n", &want_diff);
    assert_ids_equal(&diff, &want_diff);
    encode_text("<|im_start|>system\n" DEFAULT_PROMPT "<|im_end|>\n"
                "<|im_start|>user\nHello there/no_think<|im_end|>\n<|im_start|>assistant\n",
                &want_full);
    assert_ids_equal(&full, &want_full);
    assert_int_equal(full.len, 21 + diff.len);
    iv_free(&full), iv_free(&diff), iv_free(&want_diff), iv_free(&want_full);
}

static void test_encode_with_last_reply_diff_is_the_next_user_block(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    http_result r = post_reset(uid, NULL);
    http_result_free(&r);
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn(uid, "Say hi", NULL, &full, &diff);
    encode_turn(uid, "Again", "<think>\n\n</think>\n\nHi", &full, &diff);

    encode_text("<|im_start|>user\nAgain/no_think<|im_end|>\n<|im_start|>assistant\n", &want);
    assert_ids_equal(&diff, &want);
    /* the cleaned reply ("Hi": think tags removed, newlines stripped) is in the history */
    chat_message msgs[] = {{.role = "system", .content = DEFAULT_PROMPT},
                           {.role = "user", .content = "Say hi/no_think"},
                           {.role = "assistant", .content = "Hi"},
                           {.role = "user", .content = "Again/no_think"}};
    expect_render(msgs, 4, false, &want);
    assert_ids_equal(&full, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_encode_prompt_ending_in_no_think_gets_no_second_suffix(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    http_result r = post_reset(uid, NULL);
    http_result_free(&r);
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn(uid, "Be brief/no_think", NULL, &full, &diff);
    encode_text("<|im_start|>user\nBe brief/no_think<|im_end|>\n<|im_start|>assistant\n", &want);
    assert_ids_equal(&diff, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_encode_without_reset_diffs_against_nothing(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn(uid, "Hi", NULL, &full, &diff);
    chat_message msgs[] = {{.role = "system", .content = DEFAULT_PROMPT}, {.role = "user", .content = "Hi/no_think"}};
    expect_render(msgs, 2, false, &want);
    assert_ids_equal(&full, &want);
    assert_ids_equal(&diff, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_encode_empty_last_reply_adds_an_empty_assistant_turn_and_null_adds_none(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    http_result r = post_reset(uid, NULL);
    http_result_free(&r);
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn(uid, "one", NULL, &full, &diff);
    encode_turn(uid, "two", "", &full, &diff);
    char body[256];
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"text\":\"three\",\"last_reply\":null}", uid);
    r = http_post("/encode", body);
    assert_int_equal(r.status, 200);
    json_t *obj = json_loads(r.body.data, 0, NULL);
    json_to_ids(json_object_get(obj, "token_ids"), &full);
    json_decref(obj);
    http_result_free(&r);
    chat_message msgs[] = {{.role = "system", .content = DEFAULT_PROMPT},
                           {.role = "user", .content = "one/no_think"},
                           {.role = "assistant", .content = ""},
                           {.role = "user", .content = "two/no_think"},
                           {.role = "user", .content = "three/no_think"}};
    expect_render(msgs, 5, false, &want);
    assert_ids_equal(&full, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_encode_last_reply_cleanup_removes_think_tags_and_outer_newlines_only(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn(uid, "q", NULL, &full, &diff);
    encode_turn(uid, "r", "\n\n<think>deep</think>\n A<think>\nB </think>\n\n", &full, &diff);
    chat_message msgs[] = {{.role = "system", .content = DEFAULT_PROMPT},
                           {.role = "user", .content = "q/no_think"},
                           {.role = "assistant", .content = "deep\n A\nB "},
                           {.role = "user", .content = "r/no_think"}};
    expect_render(msgs, 4, false, &want);
    assert_ids_equal(&full, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

/* ------------------------------------------------------------------ decode */

static void test_decode_returns_the_text_of_the_ids(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec ids = {0};
    encode_text("<think>\n\n</think>\n\nHello, 世界!", &ids);
    assert_decodes_to(uid, ids.v, ids.len, "<think>\n\n</think>\n\nHello, 世界!");
    assert_decodes_to(uid, NULL, 0, "");
    iv_free(&ids);
}

/* U+1D11E MUSICAL SYMBOL G CLEF: Qwen3 splits its 4 bytes over 2 tokens (f0 9d 84 | 9e). */
static void split_clef(idvec *ids)
{
    encode_text("\xF0\x9D\x84\x9E", ids);
    assert_int_equal(ids->len, 2);
    strbuf first = {0};
    assert_true(tokenizer_decode_bytes(g_tok, ids->v, 1, &first));
    assert_int_equal(first.len, 3);
    sb_free(&first);
}

static void test_decode_multibyte_character_split_across_calls_comes_out_whole(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec clef = {0}, tail = {0};
    split_clef(&clef);
    encode_text(" ok", &tail);
    assert_decodes_to(uid, clef.v, 1, "");
    int32_t rest[8] = {clef.v[1]};
    memcpy(rest + 1, tail.v, tail.len * sizeof *tail.v);
    assert_decodes_to(uid, rest, 1 + tail.len, "\xF0\x9D\x84\x9E ok");
    iv_free(&clef), iv_free(&tail);
}

static void test_decode_invalid_bytes_give_replacement_and_do_not_silence_later_text(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    int32_t lone_continuation = tokenizer_token_id(g_tok, "\x80");
    assert_true(lone_continuation >= 0);
    idvec hello = {0}, clef = {0};
    encode_text("Hello", &hello);
    split_clef(&clef);
    assert_decodes_to(uid, &lone_continuation, 1, REPLACEMENT);
    assert_decodes_to(uid, hello.v, hello.len, "Hello");
    /* a held partial character followed by ASCII: one U+FFFD, then the text, at once */
    assert_decodes_to(uid, clef.v, 1, "");
    assert_decodes_to(uid, hello.v, hello.len, REPLACEMENT "Hello");
    assert_decodes_to(uid, hello.v, hello.len, "Hello");
    iv_free(&hello), iv_free(&clef);
}

static void test_reset_and_encode_drop_a_held_partial_character(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec clef = {0}, hi = {0}, full = {0}, diff = {0};
    split_clef(&clef);
    encode_text("Hi", &hi);
    assert_decodes_to(uid, clef.v, 1, "");
    http_result r = post_reset(uid, NULL);
    http_result_free(&r);
    assert_decodes_to(uid, hi.v, hi.len, "Hi");
    assert_decodes_to(uid, clef.v, 1, "");
    encode_turn(uid, "next", "x", &full, &diff);
    assert_decodes_to(uid, hi.v, hi.len, "Hi");
    iv_free(&clef), iv_free(&hi), iv_free(&full), iv_free(&diff);
}

/* ------------------------------------------------------------------ errors */

static void test_bad_json_is_400_on_every_post_endpoint(void **state)
{
    (void)state;
    const char *paths[] = {"/reset", "/encode", "/decode"};
    const char *bodies[] = {"{", "", "{\"uid\": }", "{\"uid\":\"a\"} trailing", "{\"uid\":\"\xff\"}", "\"x\""};
    for (size_t p = 0; p < 3; p++) {
        for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
            http_result r = http_post(paths[p], bodies[b]);
            assert_int_equal(r.status, 400);
            json_t *obj = json_loads(r.body.data, 0, NULL);
            assert_non_null(obj);
            assert_int_equal(json_object_size(obj), 1);
            const char *msg = json_string_value(json_object_get(obj, "error"));
            assert_non_null(msg);
            assert_memory_equal(msg, "invalid JSON: ", strlen("invalid JSON: "));
            json_decref(obj);
            http_result_free(&r);
        }
        http_result r = http_post(paths[p], "[1,2]");
        assert_response(&r, 400, "{\"error\":\"request body must be a JSON object\"}");
    }
}

static void test_wrong_field_types_are_400(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    static const struct {
        const char *path, *body_fmt, *error;
    } cases[] = {
        {"/reset", "{\"uid\":5}", "field 'uid' must be a string"},
        {"/encode", "{\"uid\":null,\"text\":\"x\"}", "field 'uid' must be a string"},
        {"/encode", "{\"uid\":\"%s\",\"text\":5}", "field 'text' must be a string"},
        {"/encode", "{\"uid\":\"%s\",\"text\":null}", "field 'text' must be a string"},
        {"/encode", "{\"uid\":\"%s\",\"text\":\"x\",\"last_reply\":[]}", "field 'last_reply' must be a string or null"},
        {"/reset", "{\"uid\":\"%s\",\"system_prompt\":true}", "field 'system_prompt' must be a string or null"},
        {"/decode", "{\"uid\":\"%s\",\"token_ids\":\"1 2\"}", "field 'token_ids' must be an array of integers"},
        {"/decode", "{\"uid\":\"%s\",\"token_ids\":[1,2.5]}", "field 'token_ids' must be an array of integers"},
        {"/decode", "{\"uid\":\"%s\",\"token_ids\":[\"1\"]}", "field 'token_ids' must be an array of integers"},
        {"/decode", "{\"uid\":\"%s\",\"token_ids\":null}", "field 'token_ids' must be an array of integers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256], want[256];
        snprintf(body, sizeof body, cases[i].body_fmt, uid);
        snprintf(want, sizeof want, "{\"error\":\"%s\"}", cases[i].error);
        http_result r = http_post(cases[i].path, body);
        assert_response(&r, 400, want);
    }
}

static void test_missing_fields_are_400(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1], body[128];
    new_uid(uid);
    http_result r = http_post("/reset", "{}");
    assert_response(&r, 400, "{\"error\":\"missing field: uid\"}");
    r = http_post("/encode", "{\"text\":\"x\"}");
    assert_response(&r, 400, "{\"error\":\"missing field: uid\"}");
    r = http_post("/decode", "{\"token_ids\":[1]}");
    assert_response(&r, 400, "{\"error\":\"missing field: uid\"}");
    snprintf(body, sizeof body, "{\"uid\":\"%s\"}", uid);
    r = http_post("/encode", body);
    assert_response(&r, 400, "{\"error\":\"missing field: text\"}");
    r = http_post("/decode", body);
    assert_response(&r, 400, "{\"error\":\"missing field: token_ids\"}");
}

static void test_unknown_uid_is_404_on_every_post_endpoint(void **state)
{
    (void)state;
    const char *uid = "00000000-0000-4000-8000-000000000000";
    char body[256];
    snprintf(body, sizeof body, "{\"uid\":\"%s\"}", uid);
    http_result r = http_post("/reset", body);
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"text\":\"x\"}", uid);
    r = http_post("/encode", body);
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"token_ids\":[1]}", uid);
    r = http_post("/decode", body);
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
}

static void test_unknown_endpoints_are_404(void **state)
{
    (void)state;
    http_result r = http_get("/nope");
    assert_response(&r, 404, "{\"error\":\"Invalid GET endpoint\"}");
    r = http_get("/encode");
    assert_response(&r, 404, "{\"error\":\"Invalid GET endpoint\"}");
    r = http_get("/get_uid/x");
    assert_response(&r, 404, "{\"error\":\"Invalid GET endpoint\"}");
    r = http_post("/nope", "{}");
    assert_response(&r, 404, "{\"error\":\"Invalid POST endpoint\"}");
    r = http_post("/get_uid", "{}");
    assert_response(&r, 404, "{\"error\":\"Invalid POST endpoint\"}");
    r = http_post("/encode/", "{}");
    assert_response(&r, 404, "{\"error\":\"Invalid POST endpoint\"}");
}

static void test_repeated_leading_slashes_are_collapsed(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1], path[128];
    new_uid(uid);
    snprintf(path, sizeof path, "//eos_id?uid=%s", uid);
    http_result r = http_get(path);
    assert_response(&r, 200, "{\"eos_id\":151645}");
    idvec hi = {0};
    encode_text("Hi", &hi);
    char body[256];
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"token_ids\":[%d]}", uid, hi.v[0]);
    r = http_post("///decode", body);
    assert_response(&r, 200, "{\"text\":\"Hi\"}");
    iv_free(&hi);
}

static void test_other_methods_are_405(void **state)
{
    (void)state;
    const char *methods[] = {"PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < 3; i++) {
        http_result r = http_on(NULL, g_base, methods[i], "/encode", "{}", 2, false);
        assert_non_null(strstr(r.headers.data, "Allow: GET, POST\r\n"));
        assert_response(&r, 405, "{\"error\":\"Method not allowed (use GET or POST)\"}");
    }
}

static void test_out_of_range_ids_are_400_naming_the_id(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1], body[256];
    new_uid(uid);
    assert_int_equal(tokenizer_vocab_size(g_tok), 151669);
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"token_ids\":[9707,151669]}", uid);
    http_result r = http_post("/decode", body);
    assert_response(&r, 400, "{\"error\":\"token id 151669 is out of range (valid ids: 0..151668)\"}");
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"token_ids\":[-1]}", uid);
    r = http_post("/decode", body);
    assert_response(&r, 400, "{\"error\":\"token id -1 is out of range (valid ids: 0..151668)\"}");
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"token_ids\":[4294967296]}", uid);
    r = http_post("/decode", body);
    assert_response(&r, 400, "{\"error\":\"token id 4294967296 is out of range (valid ids: 0..151668)\"}");
    /* the rejected request consumed nothing: the stream still works */
    assert_decodes_to(uid, (const int32_t[]){9707}, 1, "Hello");
}

static void test_oversized_body_with_content_length_is_413_and_service_stays_up(void **state)
{
    (void)state;
    size_t n = TOK_SERVICE_DEFAULT_MAX_BODY + 1;
    char *big = xmalloc(n);
    memset(big, ' ', n);
    http_result r = http_on(NULL, g_base, "POST", "/encode", big, n, false);
    assert_response(&r, 413, "{\"error\":\"request body too large (limit 8388608 bytes)\"}");
    free(big);
    r = http_get("/eos_id?uid=x");
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
}

static void test_body_limit_is_exact_and_chunked_oversize_is_413(void **state)
{
    (void)state;
    char base[64], uid[TOK_SERVICE_UID_LEN + 1];
    tok_service *svc = start_extra((tok_service_config){.max_body_bytes = 80}, base, sizeof base);
    new_uid_on(base, uid);
    char body[128];
    /* {"uid":"<36>","token_ids":[9707]} is 65 bytes; pad with spaces to exactly 80, then 81 */
    int len = snprintf(body, sizeof body, "{\"uid\":\"%s\",\"token_ids\":[9707]}", uid);
    assert_int_equal(len, 65);
    memset(body + len, ' ', 16);
    http_result r = http_on(NULL, base, "POST", "/decode", body, 80, false);
    assert_response(&r, 200, "{\"text\":\"Hello\"}");
    r = http_on(NULL, base, "POST", "/decode", body, 81, false);
    assert_response(&r, 413, "{\"error\":\"request body too large (limit 80 bytes)\"}");
    r = http_on(NULL, base, "POST", "/decode", body, 81, true);
    assert_response(&r, 413, "{\"error\":\"request body too large (limit 80 bytes)\"}");
    r = http_on(NULL, base, "POST", "/decode", body, 80, true);
    assert_response(&r, 200, "{\"text\":\"Hello\"}");
    tok_service_stop(svc);
}

static void test_bare_connect_and_close_probe_leaves_service_healthy(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        close(connect_to(tok_service_port(g_svc)));
    int fd = connect_to(tok_service_port(g_svc)); /* and one that dies mid-request */
    const char partial[] = "POST /encode HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"uid\"";
    assert_int_equal(send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL), (ssize_t)(sizeof partial - 1));
    close(fd);
    char uid[TOK_SERVICE_UID_LEN + 1], path[128];
    new_uid(uid);
    snprintf(path, sizeof path, "/eos_id?uid=%s", uid);
    http_result r = http_get(path);
    assert_response(&r, 200, "{\"eos_id\":151645}");
}

static void test_responses_are_http11_with_content_length_and_json_type(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    char body[128];
    snprintf(body, sizeof body, "{\"uid\":\"%s\"}", uid);
    const char *paths[] = {"/reset", "/nope"};
    for (size_t i = 0; i < 2; i++) {
        http_result r = http_post(paths[i], body);
        assert_memory_equal(r.headers.data, "HTTP/1.1 ", 9);
        char want[64];
        snprintf(want, sizeof want, "\r\nContent-Length: %zu\r\n", r.body.len);
        assert_non_null(strstr(r.headers.data, want));
        assert_non_null(strstr(r.headers.data, "\r\nContent-Type: application/json\r\n"));
        http_result_free(&r);
    }
}

static void test_keep_alive_connection_serves_several_requests(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    http_result r = http_on(curl, g_base, "GET", "/get_uid", NULL, 0, false);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 1);
    http_result_free(&r);
    for (int i = 0; i < 3; i++) {
        r = http_on(curl, g_base, "GET", "/eos_id?uid=x", NULL, 0, false);
        assert_int_equal(r.connects, 0); /* reused */
        assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
    }
    curl_easy_cleanup(curl);
}

/* ------------------------------------------------------------------ concurrency and limits */

#define CLIENT_THREADS 8
#define REQUESTS_PER_THREAD 50

typedef struct {
    int index;
    int failures;
} client_job;

/* A request from a client thread: 200 + JSON object, or false. resp is set on success. */
static bool thread_request(const char *path, json_t *req, json_t **resp)
{
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    http_result r = http_raw(NULL, g_base, text ? "POST" : "GET", path, text, text ? strlen(text) : 0, false);
    free(text);
    *resp = r.rc == CURLE_OK && r.status == 200 ? json_loads(r.body.data, 0, NULL) : NULL;
    http_result_free(&r);
    return json_is_object(*resp);
}

static bool json_ids_equal(json_t *arr, const int32_t *ids, size_t n)
{
    if (!json_is_array(arr) || json_array_size(arr) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != ids[i])
            return false;
    return true;
}

/* One client: get_uid, then 49 requests alternating encode and decode on its own uid, checking
 * every answer against what its own conversation must give. No cmocka asserts off the main thread. */
static void *client_main(void *arg)
{
    client_job *job = arg;
    json_t *resp;
    if (!thread_request("/get_uid", NULL, &resp)) {
        job->failures++;
        return NULL;
    }
    char uid[TOK_SERVICE_UID_LEN + 1];
    snprintf(uid, sizeof uid, "%s", json_string_value(json_object_get(resp, "uid")));
    json_decref(resp);

    chat_message msgs[REQUESTS_PER_THREAD + 1] = {{.role = "system", .content = DEFAULT_PROMPT}};
    char texts[REQUESTS_PER_THREAD][64];
    size_t n_msgs = 1, prev_len = 0;
    idvec want = {0}, text_ids = {0};
    for (int k = 1; k < REQUESTS_PER_THREAD; k++) {
        if (k % 2) {
            snprintf(texts[k], sizeof texts[k], "thread %d says %d/no_think", job->index, k);
            msgs[n_msgs].role = "user";
            msgs[n_msgs++].content = texts[k];
            bool ok = render_ids(msgs, n_msgs, false, &want) &&
                      thread_request("/encode", json_pack("{ssss}", "uid", uid, "text", texts[k]), &resp);
            if (ok) {
                size_t from = prev_len < want.len ? prev_len : want.len;
                ok = json_ids_equal(json_object_get(resp, "token_ids"), want.v, want.len) &&
                     json_ids_equal(json_object_get(resp, "diff"), want.v + from, want.len - from);
                json_decref(resp);
            }
            job->failures += !ok;
            prev_len = want.len;
        } else {
            char want_text[64];
            snprintf(want_text, sizeof want_text, "piece %d of thread %d", k, job->index);
            iv_clear(&text_ids);
            tokenizer_encode(g_tok, want_text, strlen(want_text), &text_ids);
            json_t *arr = json_array();
            for (size_t i = 0; i < text_ids.len; i++)
                json_array_append_new(arr, json_integer(text_ids.v[i]));
            bool ok = thread_request("/decode", json_pack("{ssso}", "uid", uid, "token_ids", arr), &resp);
            if (ok) {
                const char *got = json_string_value(json_object_get(resp, "text"));
                ok = got && strcmp(got, want_text) == 0;
                json_decref(resp);
            }
            job->failures += !ok;
        }
    }
    iv_free(&want), iv_free(&text_ids);
    return NULL;
}

static void test_concurrent_clients_each_get_their_own_correct_answers(void **state)
{
    (void)state;
    pthread_t threads[CLIENT_THREADS];
    client_job jobs[CLIENT_THREADS];
    for (int i = 0; i < CLIENT_THREADS; i++) {
        jobs[i] = (client_job){.index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &jobs[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < CLIENT_THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += jobs[i].failures;
    }
    assert_int_equal(failures, 0);
    assert_int_equal(g_seen.wrong_user, 0);
}

static void test_uid_cap_evicts_the_least_recently_used(void **state)
{
    (void)state;
    char base[64], a[TOK_SERVICE_UID_LEN + 1], b[TOK_SERVICE_UID_LEN + 1], c[TOK_SERVICE_UID_LEN + 1],
        d[TOK_SERVICE_UID_LEN + 1], path[128];
    tok_service *svc = start_extra((tok_service_config){.max_uids = 3}, base, sizeof base);
    new_uid_on(base, a);
    new_uid_on(base, b);
    new_uid_on(base, c);
    snprintf(path, sizeof path, "/eos_id?uid=%s", a); /* a is now the most recently used */
    http_result r = http_on(NULL, base, "GET", path, NULL, 0, false);
    assert_response(&r, 200, "{\"eos_id\":151645}");
    new_uid_on(base, d); /* evicts b */
    const char *alive[] = {a, c, d};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/eos_id?uid=%s", alive[i]);
        r = http_on(NULL, base, "GET", path, NULL, 0, false);
        assert_response(&r, 200, "{\"eos_id\":151645}");
    }
    snprintf(path, sizeof path, "/eos_id?uid=%s", b);
    r = http_on(NULL, base, "GET", path, NULL, 0, false);
    assert_response(&r, 404, "{\"error\":\"Invalid uid\"}");
    tok_service_stop(svc);
}

static void test_idle_connection_is_closed_after_the_timeout(void **state)
{
    (void)state;
    char base[64];
    tok_service *svc = start_extra((tok_service_config){.connection_timeout_s = 1}, base, sizeof base);
    int fd = connect_to(tok_service_port(svc));
    const char partial[] = "GET /get_uid HTTP/1.1\r\nHost: x\r\n"; /* headers never finished */
    assert_int_equal(send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL), (ssize_t)(sizeof partial - 1));
    double t0 = clock_mono();
    bool closed = false;
    while (!closed && clock_mono() - t0 < 5.0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        char buf[256];
        closed = recv(fd, buf, sizeof buf, 0) <= 0; /* any bytes would be an answer: keep reading */
    }
    double waited = clock_mono() - t0;
    assert_true(closed);
    assert_true(waited >= 0.5 && waited < 4.0);
    close(fd);
    tok_service_stop(svc);
}

static void test_stop_with_a_stuck_client_returns_promptly(void **state)
{
    (void)state;
    char base[64];
    tok_service *svc = start_extra((tok_service_config){0}, base, sizeof base);
    int fd = connect_to(tok_service_port(svc));
    const char partial[] = "POST /encode HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{";
    assert_int_equal(send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL), (ssize_t)(sizeof partial - 1));
    usleep(100 * 1000);
    double t0 = clock_mono();
    tok_service_stop(svc);
    assert_true(clock_mono() - t0 < 2.0);
    close(fd);
}

static void test_start_fails_with_a_message_when_the_port_is_taken(void **state)
{
    (void)state;
    char err[256] = "";
    tok_service_config cfg = {.tok = g_tok, .port = tok_service_port(g_svc)};
    assert_null(tok_service_start(&cfg, err, sizeof err));
    char want[128];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%u: ", (unsigned)cfg.port);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(strstr(err, strerror(EADDRINUSE)));
    cfg.host = "no-such-host.invalid";
    cfg.port = 0;
    assert_null(tok_service_start(&cfg, err, sizeof err));
    const char *want_resolve = "cannot resolve host 'no-such-host.invalid': ";
    assert_memory_equal(err, want_resolve, strlen(want_resolve));
}

/* ------------------------------------------------------------------ proxy mode */

static struct {
    pthread_mutex_t lock;
    char uid[TOK_SERVICE_UID_LEN + 1];
    size_t n_encodes, last_diff_len;
    size_t n_decodes;
    char decoded[256];
    size_t n_errors;
    char error[512];
} g_px = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void px_uid(void *user, const char *uid)
{
    (void)user;
    pthread_mutex_lock(&g_px.lock);
    snprintf(g_px.uid, sizeof g_px.uid, "%s", uid);
    pthread_mutex_unlock(&g_px.lock);
}

static void px_encode(void *user, const char *uid, const int32_t *diff, size_t n)
{
    (void)user;
    (void)uid;
    (void)diff;
    pthread_mutex_lock(&g_px.lock);
    g_px.n_encodes++;
    g_px.last_diff_len = n;
    pthread_mutex_unlock(&g_px.lock);
}

static void px_decode(void *user, const char *uid, const int32_t *ids, size_t n, const char *text, size_t len)
{
    (void)user;
    (void)uid;
    (void)ids;
    (void)n;
    pthread_mutex_lock(&g_px.lock);
    g_px.n_decodes++;
    snprintf(g_px.decoded, sizeof g_px.decoded, "%.*s", (int)len, text);
    pthread_mutex_unlock(&g_px.lock);
}

static void px_error(void *user, const char *path, const char *message)
{
    (void)user;
    (void)path;
    pthread_mutex_lock(&g_px.lock);
    g_px.n_errors++;
    snprintf(g_px.error, sizeof g_px.error, "%s", message);
    pthread_mutex_unlock(&g_px.lock);
}

static void test_proxy_mode_forwards_unchanged_and_reports_what_it_saw(void **state)
{
    (void)state;
    char base[64];
    tok_service_config cfg = {.upstream_url = g_base,
                              .upstream_timeout_s = 10,
                              .on_new_uid = px_uid,
                              .on_encode = px_encode,
                              .on_decode = px_decode,
                              .on_upstream_error = px_error};
    tok_service *px = start_extra(cfg, base, sizeof base);
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid_on(base, uid); /* created by the upstream, seen by the proxy */
    assert_string_equal(g_px.uid, uid);
    char last[TOK_SERVICE_UID_LEN + 1];
    assert_true(tok_service_last_uid(px, last));
    assert_string_equal(last, uid);
    char path[128];
    snprintf(path, sizeof path, "/eos_id?uid=%s", uid);
    http_result r = http_on(NULL, base, "GET", path, NULL, 0, false);
    assert_response(&r, 200, "{\"eos_id\":151645}");
    /* the upstream's answers, byte for byte; the diff and the decoded text are reported */
    idvec full = {0}, diff = {0};
    encode_turn_on(base, uid, "Hello", NULL, &full, &diff);
    assert_true(diff.len > 0);
    assert_int_equal(g_px.n_encodes, 1);
    assert_int_equal(g_px.last_diff_len, diff.len);
    idvec hello = {0};
    encode_text("Hello", &hello);
    char *text = decode_ids_on(base, uid, hello.v, hello.len);
    assert_string_equal(text, "Hello");
    free(text);
    assert_int_equal(g_px.n_decodes, 1);
    assert_string_equal(g_px.decoded, "Hello");
    assert_false(tok_service_stage_encode(px, uid, full.v, full.len, diff.len)); /* no staging here */
    assert_int_equal(g_px.n_errors, 0);
    /* an upstream error answer is passed on unchanged and reported */
    http_result bad =
        http_post_json(base, "/encode", json_pack("{sssssb}", "uid", "no-such-uid", "text", "x", "img_prompt", 0));
    http_result direct =
        http_post_json(g_base, "/encode", json_pack("{sssssb}", "uid", "no-such-uid", "text", "x", "img_prompt", 0));
    assert_int_equal(bad.status, 404);
    assert_string_equal(bad.body.data, direct.body.data);
    http_result_free(&direct);
    http_result_free(&bad);
    assert_int_equal(g_px.n_errors, 1);
    assert_non_null(strstr(g_px.error, "answered 404"));
    tok_service_stop(px);
    iv_free(&full);
    iv_free(&diff);
    iv_free(&hello);
}

static void test_proxy_mode_without_an_upstream_answers_502_and_reports_it(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* a port nobody listens on */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char upstream[64], base[64];
    snprintf(upstream, sizeof upstream, "http://127.0.0.1:%u/", (unsigned)ntohs(sa.sin_port));
    pthread_mutex_lock(&g_px.lock);
    g_px.n_errors = 0;
    pthread_mutex_unlock(&g_px.lock);
    tok_service_config cfg = {.upstream_url = upstream, .upstream_timeout_s = 5, .on_upstream_error = px_error};
    tok_service *px = start_extra(cfg, base, sizeof base);
    http_result r = http_on(NULL, base, "GET", "/get_uid", NULL, 0, false);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body.data, "{\"error\":\"tokenizer upstream http://127.0.0.1:"));
    http_result_free(&r);
    assert_int_equal(g_px.n_errors, 1);
    assert_non_null(strstr(g_px.error, "GET /get_uid"));
    tok_service_stop(px);
    close(fd);
}

/* ------------------------------------------------------------------ the seam */

static void test_staged_encode_is_returned_verbatim_and_next_encode_diffs_against_it(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    http_result r = post_reset(uid, NULL);
    http_result_free(&r);
    idvec staged = {0}, full = {0}, diff = {0}, want = {0};
    encode_text("<|im_start|>system\nstaged by the engine<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                "<|im_start|>assistant\n",
                &staged);
    assert_true(tok_service_stage_encode(g_svc, uid, staged.v, staged.len, 9));

    encode_turn(uid, "ignored text", "ignored reply", &full, &diff);
    assert_ids_equal(&full, &staged);
    idvec staged_tail = {.v = staged.v + staged.len - 9, .len = 9};
    assert_ids_equal(&diff, &staged_tail);

    /* consumed: the next encode is computed, diffing by length against the staged ids; the
     * staged turn left the message history alone */
    encode_turn(uid, "real", NULL, &full, &diff);
    chat_message msgs[] = {{.role = "system", .content = DEFAULT_PROMPT}, {.role = "user", .content = "real/no_think"}};
    expect_render(msgs, 2, false, &want);
    assert_ids_equal(&full, &want);
    idvec want_diff = {.v = want.v + staged.len, .len = want.len - staged.len};
    assert_ids_equal(&diff, &want_diff);
    iv_free(&staged), iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_encode_after_a_longer_staged_conversation_has_an_empty_diff(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec staged = {0}, full = {0}, diff = {0};
    for (int i = 0; i < 200; i++)
        iv_push(&staged, 9707);
    assert_true(tok_service_stage_encode(g_svc, uid, staged.v, staged.len, 0));
    encode_turn(uid, "x", NULL, &full, &diff);
    assert_int_equal(diff.len, 0);
    encode_turn(uid, "y", NULL, &full, &diff);
    assert_int_equal(diff.len, 0);
    assert_true(full.len < staged.len);
    iv_free(&staged), iv_free(&full), iv_free(&diff);
}

static void test_stage_encode_rejects_unknown_uid_bad_diff_and_bad_ids(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    int32_t ids[] = {9707, 1879};
    int32_t bad[] = {9707, 151669};
    assert_false(tok_service_stage_encode(g_svc, "00000000-0000-4000-8000-000000000000", ids, 2, 1));
    assert_false(tok_service_stage_encode(g_svc, uid, ids, 2, 3));
    assert_false(tok_service_stage_encode(g_svc, uid, bad, 2, 1));
    assert_false(tok_service_stage_reset(g_svc, "nope", ids, 2));
    assert_false(tok_service_clear_staged(g_svc, "nope"));
    /* nothing was staged: the encode is computed */
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn(uid, "a", NULL, &full, &diff);
    chat_message msgs[] = {{.role = "system", .content = DEFAULT_PROMPT}, {.role = "user", .content = "a/no_think"}};
    expect_render(msgs, 2, false, &want);
    assert_ids_equal(&full, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_staged_reset_is_returned_verbatim_once(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec staged = {0}, full = {0}, diff = {0}, want = {0};
    encode_text("<|im_start|>system\nengine system<|im_end|>\n", &staged);
    assert_true(tok_service_stage_reset(g_svc, uid, staged.v, staged.len));
    http_result r = post_reset(uid, "engine system");
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&staged)));
    encode_turn(uid, "q", NULL, &full, &diff);
    encode_text("<|im_start|>user\nq/no_think<|im_end|>\n<|im_start|>assistant\n", &want);
    assert_ids_equal(&diff, &want);
    r = post_reset(uid, NULL); /* consumed: computed again */
    expect_render(&(chat_message){.role = "system", .content = DEFAULT_PROMPT}, 1, true, &want);
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&want)));
    iv_free(&staged), iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_clear_staged_restores_computed_answers(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    int32_t ids[] = {9707, 1879};
    assert_true(tok_service_stage_encode(g_svc, uid, ids, 2, 1));
    assert_true(tok_service_stage_reset(g_svc, uid, ids, 2));
    assert_true(tok_service_clear_staged(g_svc, uid));
    idvec want = {0};
    expect_render(&(chat_message){.role = "system", .content = DEFAULT_PROMPT}, 1, true, &want);
    http_result r = post_reset(uid, NULL);
    assert_json_response(&r, 200, json_pack("{so}", "token_ids", ids_json(&want)));
    idvec full = {0}, diff = {0};
    encode_turn(uid, "a", NULL, &full, &diff);
    encode_text("<|im_start|>user\na/no_think<|im_end|>\n<|im_start|>assistant\n", &want);
    assert_ids_equal(&diff, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);
}

static void test_decode_observer_sees_each_piece_in_order(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    idvec clef = {0}, a = {0}, b = {0};
    split_clef(&clef);
    encode_text("Hello", &a);
    encode_text(" world", &b);
    assert_decodes_to(uid, a.v, a.len, "Hello");
    assert_decodes_to(uid, clef.v, 1, "");
    assert_decodes_to(uid, clef.v + 1, 1, "\xF0\x9D\x84\x9E");
    assert_decodes_to(uid, b.v, b.len, " world");
    const char *want[] = {"Hello", "", "\xF0\x9D\x84\x9E", " world"};
    size_t want_ids[] = {a.len, 1, 1, b.len};
    size_t seen = 0;
    pthread_mutex_lock(&g_seen.lock);
    for (size_t i = 0; i < g_seen.n_events; i++) {
        if (strcmp(g_seen.events[i].uid, uid) != 0)
            continue;
        assert_true(seen < 4);
        assert_string_equal(g_seen.events[i].text, want[seen]);
        assert_int_equal(g_seen.events[i].n_ids, want_ids[seen]);
        seen++;
    }
    pthread_mutex_unlock(&g_seen.lock);
    assert_int_equal(seen, 4);
    iv_free(&clef), iv_free(&a), iv_free(&b);
}

static void test_new_uid_callback_and_last_uid_report_the_handed_out_uid(void **state)
{
    (void)state;
    char uid[TOK_SERVICE_UID_LEN + 1], last[TOK_SERVICE_UID_LEN + 1];
    new_uid(uid);
    assert_true(tok_service_last_uid(g_svc, last));
    assert_string_equal(last, uid);
    assert_true(seen_new_uid(uid));

    char base[64];
    tok_service *svc = start_extra((tok_service_config){0}, base, sizeof base);
    assert_false(tok_service_last_uid(svc, last));
    tok_service_stop(svc);
}

/* ------------------------------------------------------------------ the CLI */

typedef struct {
    pid_t pid;
    int out_fd, err_fd;
} child;

static bool spawn_axllama(char *const args[], child *c)
{
    const char *build = getenv("AXLLAMA_BUILD");
    if (!build)
        return false;
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/axllama", build);
    if (access(exe, X_OK) != 0)
        return false;
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        char *argv[16] = {exe};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(exe, argv);
        _exit(127);
    }
    close(out[1]), close(err[1]);
    c->out_fd = out[0];
    c->err_fd = err[0];
    return true;
}

/* Reads fd until a newline, EOF or timeout; returns what was read (caller frees). */
static char *read_line(int fd, int timeout_ms)
{
    strbuf sb = {0};
    sb_append(&sb, "", 0);
    double deadline = clock_mono() + timeout_ms / 1000.0;
    while (!strchr(sb.data, '\n') && clock_mono() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        sb_append(&sb, buf, (size_t)n);
    }
    return sb_steal(&sb);
}

/* Waits for the child to exit (SIGKILL after timeout_s); returns its wait status or -1. */
static int wait_child(child *c, double timeout_s)
{
    double deadline = clock_mono() + timeout_s;
    int status;
    while (clock_mono() < deadline) {
        pid_t p = waitpid(c->pid, &status, WNOHANG);
        if (p == c->pid) {
            close(c->out_fd), close(c->err_fd);
            return status;
        }
        usleep(20 * 1000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &status, 0);
    close(c->out_fd), close(c->err_fd);
    return -1;
}

static void test_cli_serve_prints_its_address_answers_and_stops_on_sigterm(void **state)
{
    (void)state;
    child c;
    char *args[] = {"tokenizer", "serve", "--tokenizer", getenv("AXLLAMA_TOKENIZER_DIR"), "--port", "0", NULL};
    if (!spawn_axllama(args, &c))
        skip();
    char *line = read_line(c.out_fd, 20000);
    unsigned port = 0;
    int matched = sscanf(line, "Server running at http://127.0.0.1:%u\n", &port);
    if (matched != 1 || port == 0 || port > 65535) {
        kill(c.pid, SIGKILL);
        wait_child(&c, 5);
        fail_msg("unexpected first line: '%s'", line);
    }
    free(line);
    char base[64], uid[TOK_SERVICE_UID_LEN + 1], path[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", port);
    new_uid_on(base, uid);
    snprintf(path, sizeof path, "/eos_id?uid=%s", uid);
    http_result r = http_on(NULL, base, "GET", path, NULL, 0, false);
    assert_response(&r, 200, "{\"eos_id\":151645}");
    char body[128];
    snprintf(body, sizeof body, "{\"uid\":\"%s\"}", uid);
    r = http_on(NULL, base, "POST", "/reset", body, strlen(body), false);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    idvec full = {0}, diff = {0}, want = {0};
    encode_turn_on(base, uid, "Hello there", NULL, &full, &diff);
    encode_text("<|im_start|>user\nHello there/no_think<|im_end|>\n<|im_start|>assistant\n", &want);
    assert_ids_equal(&diff, &want);
    iv_free(&full), iv_free(&diff), iv_free(&want);

    kill(c.pid, SIGTERM);
    int status = wait_child(&c, 10);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void expect_cli_failure(char *const args[], const char *stderr_part)
{
    child c;
    if (!spawn_axllama(args, &c))
        skip();
    char *err = read_line(c.err_fd, 20000);
    int status = wait_child(&c, 20);
    if (!strstr(err, stderr_part))
        fail_msg("stderr '%s' lacks '%s'", err, stderr_part);
    free(err);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

static void test_cli_bad_flags_and_unloadable_tokenizer_exit_1_with_a_message(void **state)
{
    (void)state;
    char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    expect_cli_failure((char *[]){"tokenizer", "serve", "--tokenizer", dir, "--bogus", NULL},
                       "unknown argument '--bogus'");
    expect_cli_failure((char *[]){"tokenizer", "serve", "--tokenizer", dir, "--port", "70000", NULL},
                       "invalid --port '70000'");
    expect_cli_failure((char *[]){"tokenizer", "serve", NULL}, "--tokenizer DIR is required");
    expect_cli_failure((char *[]){"tokenizer", "serve", "--tokenizer", "/nonexistent-dir", "--port", "0", NULL},
                       "cannot load the tokenizer from /nonexistent-dir");
    expect_cli_failure((char *[]){"tokenizer", "frobnicate", NULL}, "unknown sub-command 'frobnicate'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_uid_returns_a_fresh_uuid4_each_time),
        cmocka_unit_test(test_proxy_mode_forwards_unchanged_and_reports_what_it_saw),
        cmocka_unit_test(test_proxy_mode_without_an_upstream_answers_502_and_reports_it),
        cmocka_unit_test(test_bos_id_is_minus_one_for_qwen3),
        cmocka_unit_test(test_eos_id_is_im_end),
        cmocka_unit_test(test_bos_and_eos_with_unknown_or_missing_uid_fail),
        cmocka_unit_test(test_reset_default_system_prompt_gives_the_21_system_ids),
        cmocka_unit_test(test_reset_custom_system_prompt),
        cmocka_unit_test(test_reset_empty_system_prompt_is_used_as_is),
        cmocka_unit_test(test_encode_first_turn_diff_is_the_user_block),
        cmocka_unit_test(test_encode_with_last_reply_diff_is_the_next_user_block),
        cmocka_unit_test(test_encode_prompt_ending_in_no_think_gets_no_second_suffix),
        cmocka_unit_test(test_encode_without_reset_diffs_against_nothing),
        cmocka_unit_test(test_encode_empty_last_reply_adds_an_empty_assistant_turn_and_null_adds_none),
        cmocka_unit_test(test_encode_last_reply_cleanup_removes_think_tags_and_outer_newlines_only),
        cmocka_unit_test(test_decode_returns_the_text_of_the_ids),
        cmocka_unit_test(test_decode_multibyte_character_split_across_calls_comes_out_whole),
        cmocka_unit_test(test_decode_invalid_bytes_give_replacement_and_do_not_silence_later_text),
        cmocka_unit_test(test_reset_and_encode_drop_a_held_partial_character),
        cmocka_unit_test(test_bad_json_is_400_on_every_post_endpoint),
        cmocka_unit_test(test_wrong_field_types_are_400),
        cmocka_unit_test(test_missing_fields_are_400),
        cmocka_unit_test(test_unknown_uid_is_404_on_every_post_endpoint),
        cmocka_unit_test(test_unknown_endpoints_are_404),
        cmocka_unit_test(test_repeated_leading_slashes_are_collapsed),
        cmocka_unit_test(test_other_methods_are_405),
        cmocka_unit_test(test_out_of_range_ids_are_400_naming_the_id),
        cmocka_unit_test(test_oversized_body_with_content_length_is_413_and_service_stays_up),
        cmocka_unit_test(test_body_limit_is_exact_and_chunked_oversize_is_413),
        cmocka_unit_test(test_bare_connect_and_close_probe_leaves_service_healthy),
        cmocka_unit_test(test_responses_are_http11_with_content_length_and_json_type),
        cmocka_unit_test(test_keep_alive_connection_serves_several_requests),
        cmocka_unit_test(test_concurrent_clients_each_get_their_own_correct_answers),
        cmocka_unit_test(test_uid_cap_evicts_the_least_recently_used),
        cmocka_unit_test(test_idle_connection_is_closed_after_the_timeout),
        cmocka_unit_test(test_stop_with_a_stuck_client_returns_promptly),
        cmocka_unit_test(test_start_fails_with_a_message_when_the_port_is_taken),
        cmocka_unit_test(test_staged_encode_is_returned_verbatim_and_next_encode_diffs_against_it),
        cmocka_unit_test(test_encode_after_a_longer_staged_conversation_has_an_empty_diff),
        cmocka_unit_test(test_stage_encode_rejects_unknown_uid_bad_diff_and_bad_ids),
        cmocka_unit_test(test_staged_reset_is_returned_verbatim_once),
        cmocka_unit_test(test_clear_staged_restores_computed_answers),
        cmocka_unit_test(test_decode_observer_sees_each_piece_in_order),
        cmocka_unit_test(test_new_uid_callback_and_last_uid_report_the_handed_out_uid),
        cmocka_unit_test(test_cli_serve_prints_its_address_answers_and_stops_on_sigterm),
        cmocka_unit_test(test_cli_bad_flags_and_unloadable_tokenizer_exit_1_with_a_message),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("tokenizer_service", tests, group_setup, group_teardown);
}
