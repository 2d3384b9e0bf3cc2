/* Tests for net/http_server's own features, with small routes of their own (the Ollama API's use of
 * it is tested in test_api_ollama): routing and the fallback handler, the before_body hook, query
 * parameters, the body limit (413 early and late, or left to the handler), the API options on by
 * default and off when disabled (CORS, Host guard, request log), both threading modes, the idle
 * timeout, listen errors, and stop with a running handler or stream. The client is raw sockets
 * (independent of the code under test); each exchange asks the server to close the connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
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
    client_job *job = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(job->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        const char req[] = "GET /hold HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
            char *answer = read_until_closed(fd, 10.0); /* no cmocka asserts off the main thread */
            job->status = status_of(answer);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test(test_thread_per_connection_runs_every_handler_at_once),
        cmocka_unit_test(test_a_thread_pool_runs_at_most_its_threads_at_once),
        cmocka_unit_test(test_an_idle_connection_is_closed_after_the_idle_timeout),
        cmocka_unit_test(test_start_reports_a_taken_port_and_a_bad_port),
        cmocka_unit_test(test_stop_ends_a_waiting_handler_and_a_running_stream_promptly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
