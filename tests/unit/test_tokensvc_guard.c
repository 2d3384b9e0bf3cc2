/* Tests for what keeps the tokenizer service's clients from hurting the runtime (issue 9, defect 4):
 * the pinned uid survives a flood of GET /get_uid (and a new pin frees the old one), a request naming
 * an unknown uid is reported before its 404, and loopback_only refuses requests addressed to another
 * host, requests of web pages and peers on other machines, while the runtime's own requests pass.
 * Raw sockets (raw_http.h), the real Qwen3 tokenizer (AXLLAMA_TOKENIZER_DIR). */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <ifaddrs.h>
#include <jansson.h>
#include <pthread.h>

#include "raw_http.h"
#include "tokenizer/tokenizer.h"
#include "tokensvc/tokensvc.h"

static tokenizer *g_tok;

static struct {
    pthread_mutex_t lock;
    char path[32];
    char uid[64];
    int calls;
} g_unknown = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_unknown_uid(void *user, const char *path, const char *uid)
{
    (void)user;
    pthread_mutex_lock(&g_unknown.lock);
    snprintf(g_unknown.path, sizeof g_unknown.path, "%s", path);
    snprintf(g_unknown.uid, sizeof g_unknown.uid, "%s", uid);
    g_unknown.calls++;
    pthread_mutex_unlock(&g_unknown.lock);
}

static tok_service *start_service(const char *host, size_t max_uids, bool loopback_only)
{
    tok_service_config cfg = {.tok = g_tok,
                              .host = host,
                              .max_uids = max_uids,
                              .loopback_only = loopback_only,
                              .on_unknown_uid = on_unknown_uid};
    char err[256];
    tok_service *svc = tok_service_start(&cfg, err, sizeof err);
    if (!svc)
        fail_msg("tok_service_start: %s", err);
    return svc;
}

/* One request with the given header lines (each ending in \r\n) and body (NULL: none); the answer
 * whole. */
static char *request(int port, const char *method, const char *path, const char *headers, const char *body)
{
    strbuf req = {0};
    sb_printf(&req, "%s %s HTTP/1.1\r\n%sConnection: close\r\n", method, path, headers);
    if (body)
        sb_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    else
        sb_puts(&req, "\r\n");
    char *answer = raw_exchange_from(NULL, port, req.data);
    sb_free(&req);
    return answer;
}

static char *loopback_request(int port, const char *method, const char *path, const char *body)
{
    char host[64];
    snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", port);
    return request(port, method, path, host, body);
}

/* A fresh uid from GET /get_uid. */
static void get_uid(int port, char out[TOK_SERVICE_UID_LEN + 1])
{
    char *a = loopback_request(port, "GET", "/get_uid", NULL);
    assert_int_equal(raw_status(a), 200);
    json_t *v = json_loads(raw_body(a), 0, NULL);
    assert_non_null(v);
    snprintf(out, TOK_SERVICE_UID_LEN + 1, "%s", json_string_value(json_object_get(v, "uid")));
    json_decref(v);
    free(a);
}

static int encode_status(int port, const char *uid)
{
    char body[128];
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"text\":\"hi\"}", uid);
    char *a = loopback_request(port, "POST", "/encode", body);
    int status = raw_status(a);
    free(a);
    return status;
}

/* ------------------------------------------------------------------ the pinned uid */

static void test_the_pinned_uid_survives_a_flood_of_get_uid(void **state)
{
    (void)state;
    tok_service *svc = start_service(NULL, 16, false);
    int port = tok_service_port(svc);
    char runtime_uid[TOK_SERVICE_UID_LEN + 1], other[TOK_SERVICE_UID_LEN + 1];
    get_uid(port, runtime_uid);
    get_uid(port, other);
    assert_true(tok_service_pin_uid(svc, runtime_uid));
    for (int i = 0; i < 100; i++) { /* far more than max_uids */
        char flood[TOK_SERVICE_UID_LEN + 1];
        get_uid(port, flood);
    }
    assert_int_equal(encode_status(port, runtime_uid), 200);
    assert_int_equal(encode_status(port, other), 404); /* an unpinned one is evicted as before */
    tok_service_stop(svc);
}

static void test_a_new_pin_makes_the_old_uid_evictable_again(void **state)
{
    (void)state;
    tok_service *svc = start_service(NULL, 4, false);
    int port = tok_service_port(svc);
    char first[TOK_SERVICE_UID_LEN + 1], second[TOK_SERVICE_UID_LEN + 1];
    get_uid(port, first);
    assert_true(tok_service_pin_uid(svc, first));
    get_uid(port, second);
    assert_true(tok_service_pin_uid(svc, second)); /* a restarted runtime's uid */
    for (int i = 0; i < 10; i++) {
        char flood[TOK_SERVICE_UID_LEN + 1];
        get_uid(port, flood);
    }
    assert_int_equal(encode_status(port, second), 200);
    assert_int_equal(encode_status(port, first), 404);
    assert_false(tok_service_pin_uid(svc, "no-such-uid"));
    tok_service_stop(svc);
}

/* ------------------------------------------------------------------ unknown uids */

static void test_an_unknown_uid_is_reported_before_its_404(void **state)
{
    (void)state;
    tok_service *svc = start_service(NULL, 0, false);
    int port = tok_service_port(svc);
    static const struct {
        const char *path, *body;
    } cases[] = {
        {"/encode", "{\"uid\":\"gone-1\",\"text\":\"x\"}"},
        {"/reset", "{\"uid\":\"gone-2\"}"},
        {"/decode", "{\"uid\":\"gone-3\",\"token_ids\":[1]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = g_unknown.calls;
        char *a = loopback_request(port, "POST", cases[i].path, cases[i].body);
        assert_int_equal(raw_status(a), 404);
        assert_string_equal(raw_body(a), "{\"error\":\"Invalid uid\"}");
        free(a);
        pthread_mutex_lock(&g_unknown.lock);
        assert_int_equal(g_unknown.calls, before + 1);
        assert_string_equal(g_unknown.path, cases[i].path);
        char want[16];
        snprintf(want, sizeof want, "gone-%zu", i + 1);
        assert_string_equal(g_unknown.uid, want);
        pthread_mutex_unlock(&g_unknown.lock);
    }
    /* a GET of bos_id with an unknown uid is the runtime's start-up probe, not a turn: not reported */
    int before = g_unknown.calls;
    char *a = loopback_request(port, "GET", "/bos_id?uid=gone-4", NULL);
    assert_int_equal(raw_status(a), 404);
    free(a);
    assert_int_equal(g_unknown.calls, before);
    tok_service_stop(svc);
}

/* ------------------------------------------------------------------ loopback_only */

static void assert_refused(char *answer, const char *what)
{
    if (raw_status(answer) != 403)
        fail_msg("%s: expected 403, got %s", what, answer);
    json_t *v = json_loads(raw_body(answer), 0, NULL);
    assert_non_null(v);
    assert_true(json_is_string(json_object_get(v, "error")));
    json_decref(v);
    free(answer);
}

static void assert_served(char *answer, const char *what)
{
    if (raw_status(answer) != 200)
        fail_msg("%s: expected 200, got %s", what, answer);
    free(answer);
}

static void test_loopback_only_refuses_other_hosts_and_web_pages(void **state)
{
    (void)state;
    tok_service *svc = start_service(NULL, 0, true);
    int port = tok_service_port(svc);
    char hdr[256];
    const char *refused[] = {"Host: evil.example\r\n", "Host: evil.example:%d\r\n", "Host: 192.168.1.9:%d\r\n",
                             "Host: localhost.evil.example:%d\r\n", "Host: 127.0.0.1:%d x\r\n",
                             "Host: 127.0.0.1:%d\r\nHost: 127.0.0.1:%d\r\n",
                             /* a web page's blind cross-site GET carries one of these */
                             "Host: 127.0.0.1:%d\r\nOrigin: https://evil.example\r\n",
                             "Host: 127.0.0.1:%d\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n",
                             "Host: 127.0.0.1:%d\r\nReferer: https://evil.example/page\r\n"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(hdr, sizeof hdr, refused[i], port, port);
        assert_refused(request(port, "GET", "/get_uid", hdr, NULL), refused[i]);
    }
    /* nothing was created by the refused requests: the first uid is handed out now */
    const char *served[] = {"Host: 127.0.0.1:%d\r\n", "Host: localhost:%d\r\n", "Host: LOCALHOST\r\n",
                            "Host: [::1]:%d\r\n",     "Host: 127.0.0.2:%d\r\n", "User-Agent: cpp-httplib/0.14\r\n"};
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++) {
        snprintf(hdr, sizeof hdr, served[i], port);
        if (strstr(served[i], "User-Agent")) /* HTTP/1.0 without a Host at all */
            assert_served(raw_exchange_from(NULL, port, "GET /get_uid HTTP/1.0\r\n\r\n"), "no Host");
        else
            assert_served(request(port, "GET", "/get_uid", hdr, NULL), served[i]);
    }
    tok_service_stop(svc);
}

static void test_without_loopback_only_any_host_is_served(void **state)
{
    (void)state;
    tok_service *svc = start_service(NULL, 0, false); /* `axllama tokenizer serve` */
    int port = tok_service_port(svc);
    assert_served(request(port, "GET", "/get_uid", "Host: tokenizer.lan:12345\r\nOrigin: http://x\r\n", NULL),
                  "standalone");
    tok_service_stop(svc);
}

/* An address of this machine that is not a loopback one ("" when there is none). */
static void local_non_loopback_ipv4(char *out, size_t n)
{
    out[0] = '\0';
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i && !out[0]; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
            inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)n);
    }
    freeifaddrs(ifs);
}

static void test_loopback_only_refuses_a_peer_on_another_address(void **state)
{
    (void)state;
    char ip[INET_ADDRSTRLEN];
    local_non_loopback_ipv4(ip, sizeof ip);
    if (!ip[0])
        skip(); /* no network interface but loopback */
    tok_service *svc = start_service("0.0.0.0", 0, true);
    int port = tok_service_port(svc);
    /* from the machine's own LAN address to its LAN address: not a loopback peer */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &src.sin_addr);
    inet_pton(AF_INET, ip, &dst.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof dst), 0);
    char req[128];
    snprintf(req, sizeof req, "GET /get_uid HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port);
    raw_send(fd, req, strlen(req));
    char *a = raw_read_until_closed(fd, 10.0, NULL);
    close(fd);
    assert_refused(a, "a LAN peer");
    tok_service_stop(svc);
}

static int setup(void **state)
{
    (void)state;
    const char *dir = getenv("AXLLAMA_TOKENIZER_DIR");
    char err[256];
    g_tok = dir ? tokenizer_load(dir, err, sizeof err) : NULL;
    if (!g_tok)
        fprintf(stderr, "AXLLAMA_TOKENIZER_DIR must name the Qwen3 tokenizer data\n");
    return g_tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tokenizer_free(g_tok);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_pinned_uid_survives_a_flood_of_get_uid),
        cmocka_unit_test(test_a_new_pin_makes_the_old_uid_evictable_again),
        cmocka_unit_test(test_an_unknown_uid_is_reported_before_its_404),
        cmocka_unit_test(test_loopback_only_refuses_other_hosts_and_web_pages),
        cmocka_unit_test(test_without_loopback_only_any_host_is_served),
        cmocka_unit_test(test_loopback_only_refuses_a_peer_on_another_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
