/* Tests for net/http_server. Two groups:
 *   - its own features, with small routes of their own and a raw-socket client (independent of the
 *     code under test; each exchange asks the server to close the connection): routing and the
 *     fallback handler, the before_body hook, query parameters, the body limit (413 early and late,
 *     or left to the handler), the API options on by default and off when disabled (CORS, Host
 *     guard, request log), the on_response hook (each answer with its route's pattern), both
 *     threading modes, the idle timeout, listen errors, and stop with a running handler or stream;
 *   - the behaviours the Ollama API relies on, exercised through the Ollama routes (src/api) over
 *     the fake engine (fake_engine.h) with libcurl: the 404/405 texts, keep-alive connection reuse,
 *     the body limit (413, chunked too), line separators escaped in JSON lines and
 *     http_json_encode, CORS per the allowed origins, the Host guard of a loopback listener, a
 *     client that disconnects cancelling its job (mid-stream and before the first event), and
 *     stopping the server ending running streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/ollama.h"
#include "common/buf.h"
#include "common/clock.h"
#include "fake_engine.h"
#include "http_probe.h"
#include "models/manifest.h"
#include "net/http_server.h"

/* ------------------------------------------------------------------ a raw client */

static int connect_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const char *data, size_t n)
{
    assert_int_equal(send(fd, data, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until the server closes or timeout_s passes; the bytes read (NUL-terminated; caller frees). */
static char *read_until_closed(int fd, double timeout_s)
{
    strbuf in = {0};
    sb_append(&in, "", 0);
    double deadline = deadline_in(timeout_s);
    while (!deadline_passed(deadline)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline_left(deadline) * 1000) + 1) <= 0)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        sb_append(&in, buf, (size_t)n);
    }
    return sb_steal(&in);
}

/* One raw request (its text whole, "Connection: close" included by the caller); the whole answer. */
static char *exchange(uint16_t port, const char *request)
{
    int fd = connect_port(port);
    send_all(fd, request, strlen(request));
    char *answer = read_until_closed(fd, 10.0);
    close(fd);
    return answer;
}

/* METHOD path with an optional extra header line ("Name: value\r\n") and body. */
static char *request(uint16_t port, const char *method, const char *path, const char *extra_headers, const char *body)
{
    strbuf req = {0};
    sb_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
              extra_headers ? extra_headers : "");
    if (body)
        sb_printf(&req, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    else
        sb_puts(&req, "\r\n");
    char *answer = exchange(port, req.data);
    sb_free(&req);
    return answer;
}

static int status_of(const char *answer)
{
    int status = 0;
    if (sscanf(answer, "HTTP/1.1 %d", &status) != 1)
        return 0;
    return status;
}

static const char *body_of(const char *answer)
{
    const char *b = strstr(answer, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* The value of a response header (copy; NULL when absent). */
static char *header_of(const char *answer, const char *name)
{
    const char *end = strstr(answer, "\r\n\r\n");
    size_t n = strlen(name);
    for (const char *line = strstr(answer, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (!strncasecmp(h, name, n) && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ')
                v++;
            return xstrndup(v, strcspn(v, "\r"));
        }
    }
    return NULL;
}

static void assert_answer(char *answer, int status, const char *body)
{
    assert_int_equal(status_of(answer), status);
    assert_string_equal(body_of(answer), body);
    free(answer);
}

/* ------------------------------------------------------------------ small routes */

static http_response *say_hello(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_static(200, HTTP_CONTENT_TYPE_TEXT, "hello");
}

/* "METHOD path body" */
static http_response *echo_request(const http_request *req, void *user)
{
    (void)user;
    strbuf out = {0};
    sb_printf(&out, "%s %s %.*s", req->method, req->path, (int)req->body_len, req->body);
    size_t len = out.len;
    return http_response_take(200, HTTP_CONTENT_TYPE_TEXT, sb_steal(&out), len);
}

/* "too large" or the body's length, as the handler sees them. */
static http_response *report_size(const http_request *req, void *user)
{
    (void)user;
    char text[64];
    if (req->body_too_large)
        snprintf(text, sizeof text, "too large (body %zu)", req->body_len);
    else
        snprintf(text, sizeof text, "%zu", req->body_len);
    return http_response_bytes(200, HTTP_CONTENT_TYPE_TEXT, text, strlen(text));
}

static http_response *read_query(const http_request *req, void *user)
{
    (void)user;
    const char *v = http_request_query(req, "name");
    return http_response_bytes(200, HTTP_CONTENT_TYPE_TEXT, v ? v : "(none)", strlen(v ? v : "(none)"));
}

static const http_route g_routes[] = {
    {.method = "GET", .path = "/hello", .handler = say_hello},
    {.method = "POST", .path = "/echo", .handler = echo_request},
    {.method = "GET", .path = "/items/*", .handler = echo_request},
    {.method = "POST", .path = "/size", .handler = report_size},
    {.method = "GET", .path = "/query", .handler = read_query},
};
#define N_ROUTES (sizeof g_routes / sizeof g_routes[0])

static http_server *start_with(http_server_config cfg)
{
    if (!cfg.routes) {
        cfg.routes = g_routes;
        cfg.n_routes = N_ROUTES;
    }
    char err[256];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    if (!srv)
        fail_msg("http_server_start: %s", err);
    return srv;
}

/* ------------------------------------------------------------------ routing and the fallback */

static void test_routes_match_exact_and_prefix_paths(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){0});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "GET", "/hello", NULL, NULL), 200, "hello");
    assert_answer(request(port, "POST", "/echo", NULL, "abc"), 200, "POST /echo abc");
    assert_answer(request(port, "GET", "/items/a/b", NULL, NULL), 200, "GET /items/a/b ");
    assert_answer(request(port, "GET", "/items/", NULL, NULL), 404, "404 page not found"); /* a prefix needs more */
    assert_answer(request(port, "GET", "/hello/", NULL, NULL), 404, "404 page not found");
    http_server_stop(srv);
}

static void test_without_a_fallback_unrouted_requests_get_gins_404_and_405(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){0});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "GET", "/nowhere", NULL, NULL), 404, "404 page not found");
    char *a = request(port, "DELETE", "/echo", NULL, NULL);
    char *allow = header_of(a, "Allow");
    assert_non_null(allow);
    assert_string_equal(allow, "POST");
    free(allow);
    assert_answer(a, 405, "405 method not allowed");
    http_server_stop(srv);
}

static void test_fallback_takes_every_unrouted_request_with_its_body(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.fallback = echo_request});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "GET", "/nowhere", NULL, NULL), 200, "GET /nowhere ");
    assert_answer(request(port, "DELETE", "/echo", NULL, "x"), 200, "DELETE /echo x"); /* known path, other method */
    assert_answer(request(port, "FROB", "/any", NULL, "body"), 200, "FROB /any body"); /* a method nobody knows */
    assert_answer(request(port, "GET", "/hello", NULL, NULL), 200, "hello");           /* routes still win */
    http_server_stop(srv);
}

typedef struct {
    atomic_int calls, saw_a_body;
} before_body_log;

/* Refuses PUT before the body is read; lets everything else through. */
static http_response *refuse_put(const http_request *req, void *user)
{
    before_body_log *log = user; /* no cmocka asserts off the main thread */
    atomic_fetch_add(&log->calls, 1);
    if (req->body_len || req->body[0])
        atomic_fetch_add(&log->saw_a_body, 1);
    if (strcmp(req->method, "PUT"))
        return NULL;
    http_response *r = http_response_static(405, HTTP_CONTENT_TYPE_TEXT, "no PUT here");
    http_response_add_header(r, "Allow", "GET, POST");
    return r;
}

static void test_before_body_refuses_without_reading_the_body_or_lets_the_request_on(void **state)
{
    (void)state;
    before_body_log log = {0};
    http_server *srv = start_with((http_server_config){.before_body = refuse_put, .before_body_user = &log});
    uint16_t port = http_server_port(srv);
    /* a PUT that announces 1 MB and never sends it: answered at once all the same */
    int fd = connect_port(port);
    const char head[] = "PUT /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    double t0 = clock_mono();
    char *a = read_until_closed(fd, 5.0);
    close(fd);
    assert_true(clock_mono() - t0 < 2.0);
    char *allow = header_of(a, "Allow");
    assert_non_null(allow);
    assert_string_equal(allow, "GET, POST");
    free(allow);
    assert_answer(a, 405, "no PUT here");
    assert_answer(request(port, "POST", "/echo", NULL, "on"), 200, "POST /echo on");
    assert_int_equal(atomic_load(&log.calls), 2);
    assert_int_equal(atomic_load(&log.saw_a_body), 0);
    http_server_stop(srv);
}

static void test_query_parameters_are_read_percent_decoded(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){0});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "GET", "/query?name=a%20b&x=1", NULL, NULL), 200, "a b");
    assert_answer(request(port, "GET", "/query", NULL, NULL), 200, "(none)");
    http_server_stop(srv);
}

/* ------------------------------------------------------------------ the body limit */

#define LIMIT_413 "{\"error\":\"request body too large (limit 16 bytes)\"}"

static void test_body_limit_is_exact_and_a_declared_oversize_is_refused_at_once(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.max_body_bytes = 16});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "POST", "/size", NULL, "0123456789abcdef"), 200, "16");
    assert_answer(request(port, "POST", "/size", NULL, "0123456789abcdefg"), 413, LIMIT_413);
    int fd = connect_port(port); /* announced, never sent */
    const char head[] = "POST /size HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    char *a = read_until_closed(fd, 5.0);
    close(fd);
    assert_answer(a, 413, LIMIT_413);
    http_server_stop(srv);
}

static const char chunked_17[] =
    "POST /size HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    "a\r\n0123456789\r\n7\r\nabcdefg\r\n0\r\n\r\n";

static void test_a_chunked_body_over_the_limit_gets_413_once_uploaded(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.max_body_bytes = 16});
    assert_answer(exchange(http_server_port(srv), chunked_17), 413, LIMIT_413);
    http_server_stop(srv);
}

static void test_handler_takes_oversize_runs_the_handler_with_the_flag_and_no_body(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.max_body_bytes = 16, .handler_takes_oversize = true});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "POST", "/size", NULL, "0123456789abcdef"), 200, "16");
    assert_answer(request(port, "POST", "/size", NULL, "0123456789abcdefg"), 200, "too large (body 0)");
    assert_answer(exchange(port, chunked_17), 200, "too large (body 0)");
    http_server_stop(srv);
}

/* ------------------------------------------------------------------ the API's options */

static void test_cors_rules_apply_by_default_and_not_when_disabled(void **state)
{
    (void)state;
    const char *const origins[] = {"http://allowed.example", NULL};
    http_server *on = start_with((http_server_config){.origins = origins});
    http_server *off = start_with((http_server_config){.origins = origins, .disable_cors = true});
    const char *evil = "Origin: http://evil.example\r\n", *good = "Origin: http://allowed.example\r\n";

    assert_answer(request(http_server_port(on), "GET", "/hello", evil, NULL), 403, "");
    char *a = request(http_server_port(on), "GET", "/hello", good, NULL);
    char *acao = header_of(a, "Access-Control-Allow-Origin");
    assert_non_null(acao);
    assert_string_equal(acao, "http://allowed.example");
    free(acao);
    assert_answer(a, 200, "hello");
    a = request(http_server_port(on), "OPTIONS", "/hello", good, NULL);
    char *methods = header_of(a, "Access-Control-Allow-Methods");
    assert_non_null(methods);
    free(methods);
    assert_answer(a, 204, "");

    a = request(http_server_port(off), "GET", "/hello", evil, NULL);
    assert_null(header_of(a, "Access-Control-Allow-Origin"));
    assert_answer(a, 200, "hello");
    a = request(http_server_port(off), "OPTIONS", "/hello", good, NULL); /* no preflight: routing decides */
    assert_null(header_of(a, "Access-Control-Allow-Methods"));
    assert_answer(a, 405, "405 method not allowed");
    http_server_stop(on);
    http_server_stop(off);
}

/* The raw client's Host header is 127.0.0.1; this one names a foreign site. */
static char *request_with_host(uint16_t port, const char *host)
{
    char req[256];
    snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    return exchange(port, req);
}

static void test_host_guard_applies_by_default_and_not_when_disabled(void **state)
{
    (void)state;
    http_server *on = start_with((http_server_config){0});
    http_server *off = start_with((http_server_config){.disable_host_guard = true});
    assert_true(http_server_is_loopback(on));
    assert_answer(request_with_host(http_server_port(on), "evil.example"), 403, "");
    assert_answer(request_with_host(http_server_port(on), "localhost:1234"), 200, "hello");
    assert_answer(request_with_host(http_server_port(off), "evil.example"), 200, "hello");
    http_server_stop(on);
    http_server_stop(off);
}

typedef struct {
    pthread_mutex_t lock;
    strbuf lines;
} log_capture;

static void capture_line(void *user, const char *line)
{
    log_capture *c = user;
    pthread_mutex_lock(&c->lock);
    sb_printf(&c->lines, "%s\n", line);
    pthread_mutex_unlock(&c->lock);
}

static void test_requests_are_logged_only_with_log_requests(void **state)
{
    (void)state;
    log_capture quiet = {.lock = PTHREAD_MUTEX_INITIALIZER}, loud = {.lock = PTHREAD_MUTEX_INITIALIZER};
    http_server *q = start_with((http_server_config){.log = capture_line, .log_user = &quiet});
    http_server *l = start_with((http_server_config){.log = capture_line, .log_user = &loud, .log_requests = true});
    assert_answer(request(http_server_port(q), "GET", "/hello", NULL, NULL), 200, "hello");
    assert_answer(request(http_server_port(l), "GET", "/hello", NULL, NULL), 200, "hello");
    assert_answer(request(http_server_port(l), "GET", "/nowhere", NULL, NULL), 404, "404 page not found");
    http_server_stop(q);
    http_server_stop(l);
    assert_true(!quiet.lines.data || !strstr(quiet.lines.data, "[HTTP]"));
    sb_free(&quiet.lines);
    assert_non_null(loud.lines.data);
    assert_non_null(strstr(loud.lines.data, "[HTTP] 200 |"));
    assert_non_null(strstr(loud.lines.data, "| GET     \"/hello\""));
    assert_non_null(strstr(loud.lines.data, "[HTTP] 404 |"));
    sb_free(&loud.lines);
}

/* on_response: "METHOD route status" lines. */
static void capture_response(void *user, const char *method, const char *route, unsigned status)
{
    log_capture *c = user;
    pthread_mutex_lock(&c->lock);
    sb_printf(&c->lines, "%s %s %u\n", method, route ? route : "(none)", status);
    pthread_mutex_unlock(&c->lock);
}

static void test_on_response_reports_each_answer_with_its_route_pattern(void **state)
{
    (void)state;
    const char *const origins[] = {"http://allowed.example", NULL};
    log_capture seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    http_server *srv = start_with(
        (http_server_config){.origins = origins, .on_response = capture_response, .on_response_user = &seen});
    uint16_t port = http_server_port(srv);
    assert_answer(request(port, "GET", "/hello", NULL, NULL), 200, "hello");
    assert_answer(request(port, "GET", "/items/a/b", NULL, NULL), 200, "GET /items/a/b ");
    assert_answer(request(port, "GET", "/nowhere", NULL, NULL), 404, "404 page not found");
    assert_answer(request(port, "DELETE", "/echo", NULL, NULL), 405, "405 method not allowed");
    assert_answer(request(port, "GET", "/hello", "Origin: http://evil.example\r\n", NULL), 403, "");
    http_server_stop(srv);
    assert_string_equal(seen.lines.data, "GET /hello 200\n"
                                         "GET /items/* 200\n"
                                         "GET (none) 404\n"
                                         "DELETE /echo 405\n"
                                         "GET /hello 403\n");
    sb_free(&seen.lines);
}

/* ------------------------------------------------------------------ threading */

typedef struct {
    atomic_int running, most;
} concurrency;

/* Holds its thread for 0.5 s and records how many handlers ran at once. */
static http_response *hold_a_while(const http_request *req, void *user)
{
    (void)req;
    concurrency *c = user;
    int now = atomic_fetch_add(&c->running, 1) + 1;
    int most = atomic_load(&c->most);
    while (now > most && !atomic_compare_exchange_weak(&c->most, &most, now)) {
    }
    clock_sleep(0.5);
    atomic_fetch_sub(&c->running, 1);
    return http_response_static(200, HTTP_CONTENT_TYPE_TEXT, "held");
}

typedef struct {
    uint16_t port;
    int status;
} client_job;

static void *client_thread(void *arg)
{
    client_job *cj = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(cj->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        const char req[] = "GET /hold HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
            char *answer = read_until_closed(fd, 10.0); /* no cmocka asserts off the main thread */
            cj->status = status_of(answer);
            free(answer);
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Four clients at once; returns the most handlers that ran at the same time. */
static int run_four_clients(http_threading threading, unsigned pool_threads)
{
    concurrency c = {0};
    const http_route routes[] = {{.method = "GET", .path = "/hold", .handler = hold_a_while, .user = &c}};
    http_server *srv = start_with(
        (http_server_config){.routes = routes, .n_routes = 1, .threading = threading, .pool_threads = pool_threads});
    pthread_t threads[4];
    client_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (client_job){.port = http_server_port(srv)};
        assert_int_equal(pthread_create(&threads[i], NULL, client_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].status, 200);
    }
    http_server_stop(srv);
    return atomic_load(&c.most);
}

static void test_thread_per_connection_runs_every_handler_at_once(void **state)
{
    (void)state;
    assert_int_equal(run_four_clients(HTTP_THREAD_PER_CONNECTION, 0), 4);
}

static void test_a_thread_pool_runs_at_most_its_threads_at_once(void **state)
{
    (void)state;
    int most = run_four_clients(HTTP_THREAD_POOL, 2);
    assert_true(most >= 1 && most <= 2);
    assert_int_equal(run_four_clients(HTTP_THREAD_POOL, 1), 1); /* the listener's thread alone */
}

static void test_an_idle_connection_is_closed_after_the_idle_timeout(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.idle_timeout_s = 1});
    int fd = connect_port(http_server_port(srv));
    const char partial[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n"; /* the headers never end */
    send_all(fd, partial, sizeof partial - 1);
    double t0 = clock_mono();
    char *got = read_until_closed(fd, 5.0);
    double waited = clock_mono() - t0;
    close(fd);
    assert_string_equal(got, "");
    free(got);
    assert_true(waited >= 0.5 && waited < 4.0);
    http_server_stop(srv);
}

/* ------------------------------------------------------------------ start and stop */

static void test_start_reports_a_taken_port_and_a_bad_port(void **state)
{
    (void)state;
    http_server *first = start_with((http_server_config){0});
    char err[256] = "", want[128];
    http_server_config cfg = {.routes = g_routes, .n_routes = N_ROUTES, .port = http_server_port(first)};
    assert_null(http_server_start(&cfg, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%u: %s", (unsigned)cfg.port, strerror(EADDRINUSE));
    assert_string_equal(err, want);
    cfg.port = 70000;
    assert_null(http_server_start(&cfg, err, sizeof err));
    assert_string_equal(err, "invalid port 70000");
    http_server_stop(first);
}

typedef struct {
    atomic_bool started, gave_up;
} waiter_state;

/* Waits (bounded) until the client is gone or the server stops, as a model load would. */
static http_response *wait_until_abandoned(const http_request *req, void *user)
{
    waiter_state *w = user;
    atomic_store(&w->started, true);
    double deadline = deadline_in(10.0);
    while (!http_request_abandoned(req) && !deadline_passed(deadline))
        clock_sleep(0.01);
    atomic_store(&w->gave_up, http_request_abandoned(req));
    return NULL;
}

typedef struct {
    atomic_int pulls, cancels, frees;
} endless_stream;

static bool endless_pull(void *state, strbuf *out, double timeout_s)
{
    endless_stream *s = state;
    if (atomic_fetch_add(&s->pulls, 1) == 0)
        sb_puts(out, "first line\n");
    else
        clock_sleep(timeout_s); /* nothing more, ever */
    return true;
}

static void endless_cancel(void *state)
{
    atomic_fetch_add(&((endless_stream *)state)->cancels, 1);
}

static void endless_free(void *state)
{
    atomic_fetch_add(&((endless_stream *)state)->frees, 1);
}

static http_response *start_endless_stream(const http_request *req, void *user)
{
    (void)req;
    static const http_stream_ops ops = {.pull = endless_pull, .cancel = endless_cancel, .free = endless_free};
    return http_response_stream(HTTP_CONTENT_TYPE_NDJSON, &ops, user);
}

/* A producer that always has 64 KiB more. */
static bool flood_pull(void *state, strbuf *out, double timeout_s)
{
    (void)timeout_s;
    atomic_fetch_add(&((endless_stream *)state)->pulls, 1);
    for (int i = 0; i < 1024; i++)
        sb_puts(out, "0123456789012345678901234567890123456789012345678901234567890123\n");
    return true;
}

static http_response *start_flood_stream(const http_request *req, void *user)
{
    (void)req;
    static const http_stream_ops ops = {.pull = flood_pull, .cancel = endless_cancel, .free = endless_free};
    return http_response_stream(HTTP_CONTENT_TYPE_NDJSON, &ops, user);
}

/* A client that stops reading a stream holds its connection (and thread) only for the idle timeout:
 * once the socket takes no more bytes, the stream is cancelled and the connection closed. */
static void test_a_client_that_stops_reading_a_stream_is_dropped_after_the_idle_timeout(void **state)
{
    (void)state;
    endless_stream s = {0};
    const http_route routes[] = {
        {.method = "GET", .path = "/flood", .handler = start_flood_stream, .user = &s, .blocking = true},
    };
    http_server *srv = start_with((http_server_config){.routes = routes, .n_routes = 1, .idle_timeout_s = 1});
    int fd = connect_port(http_server_port(srv));
    const char req[] = "GET /flood HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, req, sizeof req - 1); /* and never read */
    double t0 = clock_mono();
    while (atomic_load(&s.frees) == 0 && clock_mono() - t0 < 30.0)
        clock_sleep(0.05);
    double dropped_after = clock_mono() - t0;
    assert_int_equal(atomic_load(&s.cancels), 1);
    assert_int_equal(atomic_load(&s.frees), 1);
    assert_true(dropped_after < 20.0);
    assert_true(atomic_load(&s.pulls) > 1); /* it did stream until the socket was full */
    close(fd);
    http_server_stop(srv);
}

/* Descriptors open in this process (the listing's own descriptor included, so compare counts). */
static int count_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Stop closes the listen socket and every connection exactly once, in both threading models and
 * with a client connected while it stops (stop once quiesced the daemon first: with the thread
 * pool that raced the workers and could abort the process). */
static void test_stop_closes_the_listen_socket_and_every_connection(void **state)
{
    (void)state;
    int before = count_open_fds();
    for (int round = 0; round < 40; round++) {
        http_threading threading = round % 2 ? HTTP_THREAD_POOL : HTTP_THREAD_PER_CONNECTION;
        http_server *srv = start_with((http_server_config){.threading = threading, .pool_threads = 4});
        uint16_t port = http_server_port(srv);
        int fd = connect_port(port);
        const char req[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
        send_all(fd, req, sizeof req - 1);
        http_server_stop(srv);
        close(fd);
        assert_int_equal(count_open_fds(), before);
        int again = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_not_equal(connect(again, (struct sockaddr *)&addr, sizeof addr), 0); /* nobody listens */
        close(again);
    }
}

static void test_stop_ends_a_waiting_handler_and_a_running_stream_promptly(void **state)
{
    (void)state;
    waiter_state w = {0};
    endless_stream s = {0};
    const http_route routes[] = {
        {.method = "GET", .path = "/wait", .handler = wait_until_abandoned, .user = &w, .blocking = true},
        {.method = "GET", .path = "/stream", .handler = start_endless_stream, .user = &s, .blocking = true},
    };
    http_server *srv = start_with((http_server_config){.routes = routes, .n_routes = 2});
    int waiting = connect_port(http_server_port(srv)), streaming = connect_port(http_server_port(srv));
    const char wait_req[] = "GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n",
               stream_req[] = "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(waiting, wait_req, sizeof wait_req - 1);
    send_all(streaming, stream_req, sizeof stream_req - 1);
    double deadline = deadline_in(5.0); /* both are running */
    while ((!atomic_load(&w.started) || atomic_load(&s.pulls) < 2) && !deadline_passed(deadline))
        clock_sleep(0.01);
    assert_true(atomic_load(&w.started));
    assert_true(atomic_load(&s.pulls) >= 2);
    double t0 = clock_mono();
    http_server_stop(srv);
    assert_true(clock_mono() - t0 < 2.0);
    assert_true(atomic_load(&w.gave_up));
    assert_int_equal(atomic_load(&s.cancels), 1);
    assert_int_equal(atomic_load(&s.frees), 1);
    char *streamed = read_until_closed(streaming, 2.0);
    assert_non_null(strstr(streamed, "first line\n"));
    free(streamed);
    close(waiting);
    close(streaming);
}

/* ================================================================== through the Ollama routes */

/* ================================================================== the server under test */

/* The Ollama routes over the fake engine, with two models ("qwen3-test" runs the generations,
 * "plain" answers /api/show) and CORS origins; other servers with other settings are started by
 * the tests that need them. */
static model_manifest ollama_routes_models[2];
static model_registry ollama_routes_registry = {.models = ollama_routes_models, .n = 2};
static engine *ollama_routes_engine;
static ollama_api ollama_routes_api;
static http_route ollama_routes[OLLAMA_API_MAX_ROUTES];
static size_t ollama_routes_n;
static http_server *ollama_routes_srv;
static char ollama_routes_base[64];

static const char *const ollama_routes_origins[] = {"http://localhost", "http://localhost:*", "app://*",
                                                    "chrome-extension://abcdef", NULL};

static http_server *start_ollama_routes_server(const char *host, const char *const *origins, size_t max_body)
{
    return probe_start_server(ollama_routes, ollama_routes_n, host, origins, max_body);
}

static int ollama_routes_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static char *empty_list[] = {NULL};
    ollama_routes_models[0] = (model_manifest){
        .name = "qwen3-test:latest",
        .modified = 1000000000,
        .runtime_args = empty_list,
        .env = empty_list,
        .template_family = CHAT_TEMPLATE_QWEN3,
        .max_prefill = 2048,
        .max_positions = 2559,
        .thinking = true,
    };
    memset(ollama_routes_models[0].digest, 'a', 64);
    ollama_routes_models[1] = (model_manifest){
        .name = "plain:latest",
        .modified = 1100000000,
        .runtime_args = empty_list,
        .env = empty_list,
        .template_family = CHAT_TEMPLATE_QWEN25,
        .max_prefill = 1024,
        .max_positions = 1280,
    };
    memset(ollama_routes_models[1].digest, 'b', 64);
    engine_config ecfg = {.models = &ollama_routes_registry};
    ollama_routes_engine = engine_new(&ecfg);
    ollama_routes_api = (ollama_api){.engine = ollama_routes_engine, .models = &ollama_routes_registry};
    ollama_routes_n = ollama_api_routes(&ollama_routes_api, ollama_routes, OLLAMA_API_MAX_ROUTES);
    ollama_routes_srv = start_ollama_routes_server("127.0.0.1", ollama_routes_origins, 0);
    probe_base_url(ollama_routes_srv, ollama_routes_base, sizeof ollama_routes_base);
    probe_set_base(ollama_routes_base);
    return 0;
}

static int ollama_routes_teardown(void **state)
{
    (void)state;
    http_server_stop(ollama_routes_srv);
    engine_free(ollama_routes_engine);
    curl_global_cleanup();
    return 0;
}

/* The previous test's jobs are released (the server does it after the last byte went out), then
 * the fake forgets them. */
static int ollama_routes_before_each(void **state)
{
    (void)state;
    fake_wait_idle();
    fake_reset();
    return 0;
}

/* ================================================================== routing, connections, bodies */

static void test_unknown_path_is_404_text(void **state)
{
    (void)state;
    const char *paths[] = {"/nope", "/api", "/api/version/", "/api/status"};
    for (size_t i = 0; i < 4; i++) {
        probe_result r = probe_get(paths[i]);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.body.data, "404 page not found");
        probe_assert_header(&r, "Content-Type", "text/plain");
        probe_result_free(&r);
    }
}

static void test_wrong_method_is_405_text(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"GET", "/api/chat"}, {"DELETE", "/api/tags"}, {"POST", "/api/ps"}, {"HEAD", "/api/ps"}, {"PUT", "/"}};
    for (size_t i = 0; i < 5; i++) {
        probe_result r = probe_must(&(probe_request){.method = cases[i][0], .path = cases[i][1]});
        assert_int_equal(r.status, 405);
        if (strcmp(cases[i][0], "HEAD") != 0)
            assert_string_equal(r.body.data, "405 method not allowed");
        probe_assert_header(&r, "Content-Type", "text/plain");
        probe_result_free(&r);
    }
}

static void test_keep_alive_connection_is_reused(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    long total = 0;
    for (int i = 0; i < 5; i++) {
        probe_result r = probe_must(&(probe_request){.method = i % 2 ? "GET" : "POST",
                                                     .path = i % 2 ? "/api/version" : "/api/show",
                                                     .body = i % 2 ? NULL : "{\"model\":\"plain\"}",
                                                     .curl = curl});
        assert_int_equal(r.status, 200);
        total += r.connects;
        probe_result_free(&r);
    }
    curl_easy_cleanup(curl);
    assert_int_equal(total, 1);
}

static void test_body_limit_is_413(void **state)
{
    (void)state;
    http_server *small = start_ollama_routes_server("127.0.0.1", NULL, 1024);
    char base[64];
    probe_base_url(small, base, sizeof base);
    char *big = malloc(4096);
    memset(big, ' ', 4095);
    big[4095] = '\0';
    big[0] = '{';
    big[4094] = '}';
    probe_result r = probe_must(&(probe_request){.method = "POST", .path = "/api/show", .body = big, .base = base});
    probe_assert_error(&r, 413, "request body too large (limit 1024 bytes)");
    probe_result_free(&r);
    /* chunked: no Content-Length, the limit is enforced as the body arrives */
    r = probe_must(&(probe_request){
        .method = "POST", .path = "/api/show", .body = big, .base = base, .headers = {"Transfer-Encoding: chunked"}});
    probe_assert_error(&r, 413, "request body too large (limit 1024 bytes)");
    probe_result_free(&r);
    r = probe_must(
        &(probe_request){.method = "POST", .path = "/api/show", .body = "{\"model\":\"plain\"}", .base = base});
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    free(big);
    http_server_stop(small);
}

/* ================================================================== JSON line safety */

static bool contains_bytes(const strbuf *b, const char *needle)
{
    return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static void test_line_separators_are_escaped(void **state)
{
    (void)state;
    static const char tricky[] = "a\xE2\x80\xA8"
                                 "b\xE2\x80\xA9"
                                 "c\xC2\x85"
                                 "d\n\xE2\x82\xAC";
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = tricky},
                                      {.kind = JOB_EV_THINKING, .text = tricky},
                                      {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(steps);
    probe_result r =
        probe_post("/api/chat", "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.status, 200);
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA8"));
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA9"));
    assert_false(contains_bytes(&r.body, "\xC2\x85"));
    assert_true(contains_bytes(&r.body, "\\u2028"));
    assert_true(contains_bytes(&r.body, "\\u2029"));
    assert_true(contains_bytes(&r.body, "\\u0085"));
    assert_true(contains_bytes(&r.body, "\xE2\x82\xAC")); /* other characters stay raw UTF-8 */
    json_t *lines[4];
    size_t n = probe_ndjson_lines(&r, lines, 4);
    assert_int_equal(n, 3);
    assert_string_equal(probe_str(lines[0], "message.content"), tricky);
    assert_string_equal(probe_str(lines[1], "message.thinking"), tricky);
    probe_free_lines(lines, n);
    probe_result_free(&r);

    FAKE_SCRIPT(steps);
    r = probe_post("/api/generate", "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}");
    assert_false(contains_bytes(&r.body, "\xE2\x80\xA8"));
    assert_string_equal(probe_str(r.json, "response"), tricky);
    probe_result_free(&r);
}

static void test_json_encode_escapes_only_separators(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "k", "\xE2\x80\xA8\xE2\x80\xA9\xC2\x85\xC2\xA9\xE2\x80\xA7");
    size_t len;
    char *s = http_json_encode(v, &len);
    assert_string_equal(s, "{\"k\":\"\\u2028\\u2029\\u0085\xC2\xA9\xE2\x80\xA7\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(v);
    json_t *bad = http_json_string("ok\xFF");
    assert_string_equal(json_string_value(bad), "ok\xEF\xBF\xBD");
    json_decref(bad);
}

/* ================================================================== CORS and the Host guard */

static void test_cors(void **state)
{
    (void)state;
    probe_result r = probe_must(
        &(probe_request){.method = "GET", .path = "/api/version", .headers = {"Origin: http://localhost:3000"}});
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:3000");
    probe_assert_header(&r, "Vary", "Origin");
    probe_result_free(&r);

    const char *refused[] = {"Origin: https://evil.example", "Origin: null", "Origin: http://localhost.evil.example",
                             "Origin: chrome-extension://other"};
    for (size_t i = 0; i < 4; i++) {
        r = probe_must(&(probe_request){
            .method = "POST", .path = "/api/show", .body = "{\"model\":\"plain\"}", .headers = {refused[i]}});
        if (r.status != 403 || r.body.len != 0)
            fail_msg("%s: expected 403 with no body, got %ld '%s'", refused[i], r.status, r.body.data);
        probe_result_free(&r);
    }
    /* refused before routing: even an unknown path */
    r = probe_must(&(probe_request){.method = "GET", .path = "/nope", .headers = {"Origin: https://evil.example"}});
    assert_int_equal(r.status, 403);
    probe_result_free(&r);

    const char *allowed[] = {"Origin: http://localhost", "Origin: app://obsidian.md",
                             "Origin: chrome-extension://abcdef"};
    for (size_t i = 0; i < 3; i++) {
        r = probe_must(&(probe_request){.method = "GET", .path = "/api/tags", .headers = {allowed[i]}});
        assert_int_equal(r.status, 200);
        probe_assert_header(&r, "Access-Control-Allow-Origin", allowed[i] + 8);
        probe_result_free(&r);
    }

    r = probe_must(&(probe_request){.method = "OPTIONS",
                                    .path = "/api/chat",
                                    .headers = {"Origin: http://localhost:5173", "Access-Control-Request-Method: POST",
                                                "Access-Control-Request-Headers: content-type"}});
    assert_int_equal(r.status, 204);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:5173");
    probe_assert_header(&r, "Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD");
    probe_assert_header(&r, "Access-Control-Max-Age", "43200");
    char v[1024];
    probe_header(&r, "Access-Control-Allow-Headers", v, sizeof v);
    assert_non_null(strstr(v, "Authorization,Content-Type,User-Agent,Accept"));
    assert_non_null(strstr(v, "X-Stainless-Timeout"));
    probe_result_free(&r);

    /* same origin (Origin = http://<Host>): no CORS at all */
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: %s", ollama_routes_base);
    r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {origin}});
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "");
    probe_result_free(&r);

    /* OLLAMA_ORIGINS=*: everything, answered with "*" */
    static const char *const all[] = {"*", NULL};
    http_server *open = start_ollama_routes_server("127.0.0.1", all, 0);
    char base[64];
    probe_base_url(open, base, sizeof base);
    r = probe_must(&(probe_request){
        .method = "GET", .path = "/api/version", .base = base, .headers = {"Origin: https://evil.example"}});
    assert_int_equal(r.status, 200);
    probe_assert_header(&r, "Access-Control-Allow-Origin", "*");
    probe_result_free(&r);
    http_server_stop(open);
}

static void test_host_guard_on_loopback(void **state)
{
    (void)state;
    assert_true(http_server_is_loopback(ollama_routes_srv));
    const char *refused[] = {"Host: evil.example", "Host: evil.example:11434", "Host: 8.8.8.8",
                             "Host: localhost.evil.com"};
    for (size_t i = 0; i < 4; i++) {
        probe_result r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {refused[i]}});
        if (r.status != 403 || r.body.len != 0)
            fail_msg("%s: expected 403 with no body, got %ld '%s'", refused[i], r.status, r.body.data);
        probe_result_free(&r);
    }
    const char *allowed[] = {"Host: localhost:11434", "Host: LOCALHOST",   "Host: 127.0.0.1:8080", "Host: 192.168.1.5",
                             "Host: 10.1.2.3:11434",  "Host: [::1]:11434", "Host: my-box.local",   "Host: x.internal",
                             "Host: app.localhost",   "Host: 0.0.0.0"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        probe_result r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {allowed[i]}});
        if (r.status != 200)
            fail_msg("%s: expected 200, got %ld", allowed[i], r.status);
        probe_result_free(&r);
    }
    char hostname[256], hdr[300];
    if (gethostname(hostname, sizeof hostname) == 0) {
        snprintf(hdr, sizeof hdr, "Host: %s:11434", hostname);
        probe_result r = probe_must(&(probe_request){.method = "GET", .path = "/api/version", .headers = {hdr}});
        assert_int_equal(r.status, 200);
        probe_result_free(&r);
    }
    /* an allowed host *name* answers OPTIONS itself, as Ollama does */
    probe_result r =
        probe_must(&(probe_request){.method = "OPTIONS", .path = "/api/chat", .headers = {"Host: localhost"}});
    assert_int_equal(r.status, 204);
    probe_result_free(&r);

    /* not on loopback: every Host passes */
    http_server *lan = start_ollama_routes_server("", NULL, 0);
    assert_false(http_server_is_loopback(lan));
    char base[64];
    probe_base_url(lan, base, sizeof base);
    r = probe_must(
        &(probe_request){.method = "GET", .path = "/api/version", .base = base, .headers = {"Host: evil.example"}});
    assert_int_equal(r.status, 200);
    probe_result_free(&r);
    http_server_stop(lan);
}

/* ================================================================== cancellation */

typedef struct {
    strbuf got;
    double aborted_at;
} abort_ctx;

/* Takes the first NDJSON line, then makes curl abort the transfer. */
static size_t abort_after_first_line(char *data, size_t size, size_t n, void *user)
{
    abort_ctx *a = user;
    sb_append(&a->got, data, size * n);
    if (memchr(a->got.data, '\n', a->got.len)) {
        a->aborted_at = clock_mono();
        return 0;
    }
    return size * n;
}

static void test_client_disconnect_mid_stream_cancels_job(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_CONTENT, .text = "b", .delay_s = 30},
                                      {.kind = JOB_EV_DONE, .done_reason = "stop"}};
    FAKE_SCRIPT(steps);
    abort_ctx a = {0};
    CURL *curl = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/api/chat", ollama_routes_base);
    const char *body = "{\"model\":\"qwen3-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, abort_after_first_line);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl); /* closes the socket */
    double closed_at = clock_mono();
    assert_int_equal(rc, CURLE_WRITE_ERROR);
    assert_true(a.aborted_at > 0);
    double cancelled_at = fake_wait_cancel(0);
    assert_true(cancelled_at > 0);
    double delay = cancelled_at - closed_at;
    if (delay > 0.2)
        fail_msg("job_cancel came %.0f ms after the client left", delay * 1e3);
    /* and the job is released */
    assert_int_equal(fake_wait_count(&fake.releases, 1), 1);
    sb_free(&a.got);
}

static void test_client_gone_before_first_event_cancels_job(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "late", .delay_s = 30}};
    FAKE_SCRIPT(steps);
    for (int stream = 0; stream < 2; stream++) {
        int before = fake_count(&fake.cancels);
        probe_result r = probe_perform(
            &(probe_request){.method = "POST",
                             .path = "/api/generate",
                             .timeout_ms = 300,
                             .body = stream ? "{\"model\":\"qwen3-test\",\"prompt\":\"x\"}"
                                            : "{\"model\":\"qwen3-test\",\"prompt\":\"x\",\"stream\":false}"});
        double closed_at = clock_mono();
        assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
        probe_result_free(&r);
        double cancelled_at = fake_wait_cancel(before);
        assert_true(cancelled_at > 0);
        if (cancelled_at - closed_at > 0.2)
            fail_msg("job_cancel came %.0f ms after the client left", (cancelled_at - closed_at) * 1e3);
    }
}

typedef struct {
    const char *base;
    atomic_bool first_line; /* the first NDJSON line arrived */
    probe_result result;
} bg_request;

static bool note_first_line(void *user, const strbuf *body)
{
    bg_request *b = user;
    if (memchr(body->data, '\n', body->len))
        atomic_store(&b->first_line, true);
    return true;
}

static void *run_bg_request(void *arg)
{
    bg_request *b = arg;
    b->result = probe_perform(&(probe_request){.method = "POST",
                                               .path = "/api/generate",
                                               .base = b->base,
                                               .body = "{\"model\":\"qwen3-test\",\"prompt\":\"x\"}",
                                               .on_body = note_first_line,
                                               .on_body_user = b});
    return NULL;
}

static void test_server_stop_ends_streams(void **state)
{
    (void)state;
    static const fake_step steps[] = {{.kind = JOB_EV_CONTENT, .text = "a"},
                                      {.kind = JOB_EV_CONTENT, .text = "b", .delay_s = 30}};
    FAKE_SCRIPT(steps);
    http_server *srv = start_ollama_routes_server("127.0.0.1", NULL, 0);
    char base[64];
    probe_base_url(srv, base, sizeof base);
    bg_request b = {.base = base};
    pthread_t t;
    pthread_create(&t, NULL, run_bg_request, &b);
    /* the stream is running: its first line reached the client */
    double deadline = deadline_in(3);
    while (!atomic_load(&b.first_line) && !deadline_passed(deadline))
        clock_sleep(0.002);
    double stop_at = clock_mono();
    http_server_stop(srv);
    double stop_took = clock_mono() - stop_at;
    pthread_join(t, NULL);
    assert_true(atomic_load(&b.first_line));
    assert_true(stop_took < 1.0);
    assert_int_equal(fake_count(&fake.cancels), 1);
    assert_int_equal(fake_count(&fake.releases), 1);
    assert_int_equal(b.result.status, 200);
    assert_non_null(strstr(b.result.body.data, "\"response\":\"a\""));
    probe_result_free(&b.result);
}

int main(void)
{
    const struct CMUnitTest own_tests[] = {
        cmocka_unit_test(test_routes_match_exact_and_prefix_paths),
        cmocka_unit_test(test_without_a_fallback_unrouted_requests_get_gins_404_and_405),
        cmocka_unit_test(test_fallback_takes_every_unrouted_request_with_its_body),
        cmocka_unit_test(test_before_body_refuses_without_reading_the_body_or_lets_the_request_on),
        cmocka_unit_test(test_query_parameters_are_read_percent_decoded),
        cmocka_unit_test(test_body_limit_is_exact_and_a_declared_oversize_is_refused_at_once),
        cmocka_unit_test(test_a_chunked_body_over_the_limit_gets_413_once_uploaded),
        cmocka_unit_test(test_handler_takes_oversize_runs_the_handler_with_the_flag_and_no_body),
        cmocka_unit_test(test_cors_rules_apply_by_default_and_not_when_disabled),
        cmocka_unit_test(test_host_guard_applies_by_default_and_not_when_disabled),
        cmocka_unit_test(test_requests_are_logged_only_with_log_requests),
        cmocka_unit_test(test_on_response_reports_each_answer_with_its_route_pattern),
        cmocka_unit_test(test_thread_per_connection_runs_every_handler_at_once),
        cmocka_unit_test(test_a_thread_pool_runs_at_most_its_threads_at_once),
        cmocka_unit_test(test_an_idle_connection_is_closed_after_the_idle_timeout),
        cmocka_unit_test(test_start_reports_a_taken_port_and_a_bad_port),
        cmocka_unit_test(test_stop_ends_a_waiting_handler_and_a_running_stream_promptly),
        cmocka_unit_test(test_stop_closes_the_listen_socket_and_every_connection),
        cmocka_unit_test(test_a_client_that_stops_reading_a_stream_is_dropped_after_the_idle_timeout),
    };
    const struct CMUnitTest ollama_routes_tests[] = {
        cmocka_unit_test_setup(test_unknown_path_is_404_text, ollama_routes_before_each),
        cmocka_unit_test_setup(test_wrong_method_is_405_text, ollama_routes_before_each),
        cmocka_unit_test_setup(test_keep_alive_connection_is_reused, ollama_routes_before_each),
        cmocka_unit_test_setup(test_body_limit_is_413, ollama_routes_before_each),
        cmocka_unit_test_setup(test_line_separators_are_escaped, ollama_routes_before_each),
        cmocka_unit_test_setup(test_json_encode_escapes_only_separators, ollama_routes_before_each),
        cmocka_unit_test_setup(test_cors, ollama_routes_before_each),
        cmocka_unit_test_setup(test_host_guard_on_loopback, ollama_routes_before_each),
        cmocka_unit_test_setup(test_client_disconnect_mid_stream_cancels_job, ollama_routes_before_each),
        cmocka_unit_test_setup(test_client_gone_before_first_event_cancels_job, ollama_routes_before_each),
        cmocka_unit_test_setup(test_server_stop_ends_streams, ollama_routes_before_each),
    };
    int failed = cmocka_run_group_tests_name("http_server", own_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("http_server through the Ollama routes", ollama_routes_tests,
                                          ollama_routes_setup, ollama_routes_teardown);
    return failed;
}
