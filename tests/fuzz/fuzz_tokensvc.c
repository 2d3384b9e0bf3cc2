/* fuzz_tokensvc: the tokenizer service's request handling (src/tokensvc/protocol.c, uid_table.c)
 * with the real Qwen3 tokenizer, on a service without a socket (tok_service_new_unbound) holding at
 * most 4 uids (so eviction happens). The input is a session: requests separated by NUL bytes, each
 * an operation byte then its argument:
 *   op % 9:  0 GET /get_uid   1 POST /reset   2 POST /encode   3 POST /decode   (argument: the body)
 *            4 GET <argument as path> (not /get_uid, /bos_id, /eos_id)   5 POST <argument as path>
 *            with body {}
 *            6 stage_encode   7 stage_reset (argument: little-endian 16-bit ids, scaled to cover the
 *            vocabulary and a little beyond; the first byte picks n_diff)   8 clear_staged
 * In a body, "$U" stands for the uid /get_uid handed out last (and "$V" for the one before), so
 * that most requests reach a live uid. GET /bos_id and /eos_id read the uid from the query string,
 * which needs a libmicrohttpd connection: they are left to tests/unit/test_tokensvc.c.
 * Properties:
 *   - every request gets an answer (never NULL: that would drop the runtime's connection), with
 *     status 200, 400 or 404;
 *   - a new uid is a 36-character UUID and is what tok_service_last_uid answers;
 *   - per uid, the text of the /decode calls since its last /reset or /encode is the whole decode
 *     of their ids, less an incomplete character held back (at most 3 bytes): no text lost,
 *     repeated or split, and each piece valid UTF-8;
 *   - no crash, no leak, no sanitizer report. */
#include <jansson.h>

#include "fuzz_common.h"
#include "net/http_server_internal.h"
#include "tokensvc/tokensvc_internal.h"

#define MAX_SHADOWS 64
#define SERVICE_MAX_UIDS 4

static tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_tok = fuzz_load_tokenizer();
    return 0;
}

/* What the harness knows of one uid's decode stream. */
typedef struct {
    char uid[TOK_SERVICE_UID_LEN + 1];
    strbuf raw;  /* the bytes of every id decoded since the stream started */
    strbuf text; /* the text answered for them */
} shadow;

typedef struct {
    shadow shadows[MAX_SHADOWS];
    size_t n_shadows;
    char last_uid[TOK_SERVICE_UID_LEN + 1], prev_uid[TOK_SERVICE_UID_LEN + 1];
    size_t new_uids;
} session;

static shadow *shadow_of(session *s, const char *uid)
{
    for (size_t i = 0; i < s->n_shadows; i++)
        if (!strcmp(s->shadows[i].uid, uid))
            return &s->shadows[i];
    FUZZ_CHECK(s->n_shadows < MAX_SHADOWS, "too many uids");
    shadow *sh = &s->shadows[s->n_shadows++];
    snprintf(sh->uid, sizeof sh->uid, "%s", uid);
    sb_append(&sh->raw, "", 0);
    sb_append(&sh->text, "", 0);
    return sh;
}

static void shadow_restart(session *s, const char *uid)
{
    shadow *sh = shadow_of(s, uid);
    sb_clear(&sh->raw);
    sb_clear(&sh->text);
}

static bool is_uuid(const char *u)
{
    if (strlen(u) != TOK_SERVICE_UID_LEN)
        return false;
    for (size_t i = 0; i < TOK_SERVICE_UID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
            return false;
    }
    return true;
}

static void on_new_uid(void *user, const char *uid)
{
    session *s = user;
    FUZZ_CHECK(is_uuid(uid), "a new uid is not a UUID: %s", uid);
    memcpy(s->prev_uid, s->last_uid, sizeof s->prev_uid);
    snprintf(s->last_uid, sizeof s->last_uid, "%s", uid);
    s->new_uids++;
    shadow_restart(s, uid);
}

static void on_decode(void *user, const char *uid, const int32_t *ids, size_t n_ids, const char *text, size_t len)
{
    session *s = user;
    FUZZ_CHECK(text && text[len] == '\0', "the decoded text is not NUL-terminated");
    FUZZ_CHECK(utf8_is_valid(text, len), "a /decode answer is not valid UTF-8: %s", fuzz_show(text, len));
    shadow *sh = shadow_of(s, uid);
    FUZZ_CHECK(tokenizer_decode_bytes(g_tok, ids, n_ids, &sh->raw), "/decode took ids out of range");
    sb_append(&sh->text, text, len);
    /* the answers so far are the complete part of the bytes so far */
    size_t complete = utf8_complete_prefix(sh->raw.data, sh->raw.len);
    FUZZ_CHECK(sh->raw.len - complete <= 3, "more than 3 bytes held");
    size_t want_len;
    char *want = fuzz_lossy(sh->raw.data, complete, &want_len);
    FUZZ_CHECK(want_len == sh->text.len && !memcmp(want, sh->text.data, want_len),
               "uid %s: the /decode answers are not the decode of their ids:\n  got  %s\n  want %s", uid,
               fuzz_show(sh->text.data, sh->text.len), fuzz_show(want, want_len));
    free(want);
}

/* The body with $U / $V replaced by the last two uids. */
static char *expand_body(const session *s, const char *body, size_t n, size_t *len)
{
    strbuf b = {0};
    sb_append(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (body[i] == '$' && i + 1 < n && (body[i + 1] == 'U' || body[i + 1] == 'V')) {
            sb_puts(&b, body[i + 1] == 'U' ? s->last_uid : s->prev_uid);
            i++;
        } else {
            sb_putc(&b, body[i]);
        }
    }
    *len = b.len;
    return sb_steal(&b);
}

/* The uid a body names (NULL if none). */
static char *uid_of_body(const char *body, size_t n)
{
    json_t *v = json_loadb(body, n, 0, NULL);
    const char *u = json_string_value(json_object_get(v, "uid"));
    char *copy = u ? xstrdup(u) : NULL;
    json_decref(v);
    return copy;
}

static void check_answer(http_response *resp, const char *what)
{
    FUZZ_CHECK(resp, "%s: no answer", what);
    FUZZ_CHECK(resp->status == 200 || resp->status == 400 || resp->status == 404, "%s: status %u", what, resp->status);
    http_response_free(resp);
}

static unsigned answer_status(http_response *resp, const char *what)
{
    unsigned status = resp ? resp->status : 0;
    check_answer(resp, what);
    return status;
}

static void stage(tok_service *svc, session *s, int op, const char *arg, size_t n)
{
    size_t n_ids = n > 1 ? (n - 1) / 2 : 0;
    int32_t *ids = xmalloc((n_ids ? n_ids : 1) * sizeof *ids);
    for (size_t i = 0; i < n_ids; i++) {
        const uint8_t *p = (const uint8_t *)arg + 1 + 2 * i;
        ids[i] = (int32_t)((p[0] | (p[1] << 8)) * 5 / 2); /* 0 .. 163837: the vocabulary is 151669 */
    }
    size_t n_diff = n ? (uint8_t)arg[0] % (n_ids + 2) : 0;
    if (op == 6 && tok_service_stage_encode(svc, s->last_uid, ids, n_ids, n_diff))
        FUZZ_CHECK(n_diff <= n_ids, "staged a diff of %zu of %zu ids", n_diff, n_ids);
    else if (op == 7)
        tok_service_stage_reset(svc, s->last_uid, ids, n_ids);
    else if (op == 8)
        tok_service_clear_staged(svc, s->last_uid);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session *s = xcalloc(1, sizeof *s);
    tok_service_config cfg = {
        .tok = g_tok,
        .max_uids = SERVICE_MAX_UIDS,
        .on_new_uid = on_new_uid,
        .on_decode = on_decode,
        .user = s,
    };
    tok_service *svc = tok_service_new_unbound(&cfg);
    fuzz_reader in = {data, size};
    while (in.n > 0) {
        int op = fuzz_byte(&in) % 9;
        size_t n;
        const char *arg = fuzz_field(&in, 0, &n);
        size_t body_len;
        char *body = expand_body(s, arg, n, &body_len);
        http_request req = {.method = "POST", .path = "", .body = body, .body_len = body_len};
        static const char *const post_paths[] = {"/reset", "/encode", "/decode"};
        if (op == 0) {
            if (s->new_uids >= MAX_SHADOWS / 2) {
                free(body);
                continue; /* enough uids for one session */
            }
            req.method = "GET";
            req.path = "/get_uid";
            size_t before = s->new_uids;
            FUZZ_CHECK(answer_status(tokproto_get(svc, &req, req.path), "/get_uid") == 200, "/get_uid failed");
            FUZZ_CHECK(s->new_uids == before + 1, "/get_uid did not report a new uid");
            char last[TOK_SERVICE_UID_LEN + 1];
            FUZZ_CHECK(tok_service_last_uid(svc, last) && !strcmp(last, s->last_uid), "tok_service_last_uid");
        } else if (op <= 3) {
            req.path = post_paths[op - 1];
            char *uid = uid_of_body(body, body_len);
            unsigned status = answer_status(tokproto_post(svc, &req, req.path), req.path);
            if (status == 200 && op != 3) {
                FUZZ_CHECK(uid, "%s answered 200 without a uid", req.path);
                shadow_restart(s, uid);
            }
            free(uid);
        } else if (op == 4 || op == 5) {
            char *path = xstrndup(body, body_len);
            /* /get_uid is op 0 (a GET of it here would escape the uid count) */
            bool skipped =
                op == 4 && (!strcmp(path, "/bos_id") || !strcmp(path, "/eos_id") || !strcmp(path, "/get_uid"));
            if (!skipped) {
                req.method = op == 4 ? "GET" : "POST";
                req.path = path;
                req.body = "{}";
                req.body_len = 2;
                http_response *resp = op == 4 ? tokproto_get(svc, &req, path) : tokproto_post(svc, &req, path);
                check_answer(resp, "an arbitrary path");
            }
            free(path);
        } else {
            stage(svc, s, op, body, body_len);
        }
        free(body);
    }
    tok_service_stop(svc);
    for (size_t i = 0; i < s->n_shadows; i++) {
        sb_free(&s->shadows[i].raw);
        sb_free(&s->shadows[i].text);
    }
    free(s);
    return 0;
}
