/* Tests for the limits of net/http_server that keep slow or hostile clients from holding it (issue 9):
 * Go's Host checks (a Host with garbage after the port, two Host headers, none on HTTP/1.1: 400 and
 * the connection closed), the request deadline (headers or a body trickled past it, a kept-alive
 * connection trickling its next request: closed without an answer; a handler that runs longer is not
 * cut), the per-address connection limit, and a slowloris of thousands of connections from one address
 * while another client is served. Raw sockets from chosen loopback source addresses. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>
#include <stdatomic.h>

#include "net/http_server.h"
#include "raw_http.h"

static http_response *hello(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_static(200, HTTP_CONTENT_TYPE_TEXT, "hello");
}

static http_response *echo(const http_request *req, void *user)
{
    (void)user;
    return http_response_bytes(200, HTTP_CONTENT_TYPE_TEXT, req->body, req->body_len);
}

/* Takes longer than the tests' request deadline to answer. */
static http_response *slow(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    clock_sleep(2.5);
    return http_response_static(200, HTTP_CONTENT_TYPE_TEXT, "slow");
}

static const http_route routes[] = {
    {.method = "GET", .path = "/hello", .handler = hello},
    {.method = "POST", .path = "/echo", .handler = echo},
    {.method = "GET", .path = "/slow", .handler = slow, .blocking = true},
};

static http_server *start_with(http_server_config cfg)
{
    cfg.routes = routes;
    cfg.n_routes = sizeof routes / sizeof routes[0];
    char err[256];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    if (!srv)
        fail_msg("http_server_start: %s", err);
    return srv;
}

static char *get_with_headers(int port, const char *headers)
{
    char req[512];
    snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\n%sConnection: close\r\n\r\n", headers);
    return raw_exchange_from(NULL, port, req);
}

/* ------------------------------------------------------------------ Go's Host checks */

static void assert_go_400(char *answer, const char *why)
{
    if (raw_status(answer) != 400)
        fail_msg("expected 400 (%s), got: %s", why, answer);
    char body[128];
    snprintf(body, sizeof body, "400 Bad Request: %s", why);
    assert_string_equal(raw_body(answer), body);
    assert_non_null(strcasestr(answer, "\r\nConnection: close\r\n"));
    free(answer);
}

static void test_a_host_with_garbage_after_the_port_gets_gos_400(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){0});
    int port = http_server_port(srv);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Host: localhost:%d evil.example\r\n", port);
    assert_go_400(get_with_headers(port, hdr), "malformed Host header");
    assert_go_400(get_with_headers(port, "Host: local\"host\r\n"), "malformed Host header");
    assert_go_400(get_with_headers(port, "Host: a/b\r\n"), "malformed Host header");
    /* what a host can hold passes: names, ports, IPv6 literals */
    const char *fine[] = {"Host: localhost:11434\r\n", "Host: [::1]:80\r\n", "Host: my_box.local\r\n"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        char *a = get_with_headers(port, fine[i]);
        if (raw_status(a) != 200)
            fail_msg("%s: expected 200, got %s", fine[i], a);
        free(a);
    }
    http_server_stop(srv);
}

static void test_two_host_headers_get_gos_400(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){0});
    assert_go_400(get_with_headers(http_server_port(srv), "Host: localhost\r\nHost: evil.example\r\n"),
                  "too many Host headers");
    /* on any listener, not only a loopback one */
    http_server *lan = start_with((http_server_config){.host = ""});
    assert_go_400(get_with_headers(http_server_port(lan), "Host: a\r\nhost: a\r\n"), "too many Host headers");
    http_server_stop(lan);
    http_server_stop(srv);
}

static void test_http11_needs_a_host_and_http10_does_not(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){0});
    int port = http_server_port(srv);
    assert_go_400(raw_exchange_from(NULL, port, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"),
                  "missing required Host header");
    char *a = raw_exchange_from(NULL, port, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(raw_status(a), 200);
    assert_string_equal(raw_body(a), "hello");
    free(a);
    http_server_stop(srv);
}

static void test_a_server_without_the_host_guard_skips_gos_host_checks(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.disable_host_guard = true});
    char *a = get_with_headers(http_server_port(srv), "Host: a b\r\n");
    assert_int_equal(raw_status(a), 200);
    free(a);
    http_server_stop(srv);
}

/* ------------------------------------------------------------------ the request deadline */

/* Sends text one byte every interval_s until the server closes the connection or the text ends;
 * returns when the server closed (clock_mono), or 0 when it did not. */
static double trickle(int fd, const char *text, double interval_s)
{
    for (const char *p = text; *p; p++) {
        if (!raw_send(fd, p, 1))
            return clock_mono();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(interval_s * 1000)) > 0) {
            char b[256];
            if (recv(fd, b, sizeof b, MSG_DONTWAIT) <= 0)
                return clock_mono();
        }
    }
    return 0;
}

static void test_headers_trickled_past_the_deadline_are_cut_off(void **state)
{
    (void)state;
    /* the idle timeout (each byte starts it over) would never end this connection */
    http_server *srv = start_with((http_server_config){.request_timeout_s = 1.0, .idle_timeout_s = 30});
    int fd = raw_connect_from(NULL, http_server_port(srv));
    double t0 = clock_mono();
    double closed_at =
        trickle(fd, "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 0.1);
    close(fd);
    assert_true(closed_at > 0);
    assert_true(closed_at - t0 >= 0.9 && closed_at - t0 < 3.0);
    http_server_stop(srv);
}

static void test_a_body_trickled_past_the_deadline_is_cut_off(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.request_timeout_s = 1.0, .idle_timeout_s = 30});
    int fd = raw_connect_from(NULL, http_server_port(srv));
    const char head[] = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n";
    raw_send(fd, head, sizeof head - 1);
    double t0 = clock_mono();
    double closed_at = trickle(fd, "0123456789012345678901234567890123456789012345678901234567890123456789", 0.1);
    close(fd);
    assert_true(closed_at > 0);
    assert_true(closed_at - t0 < 3.0);
    http_server_stop(srv);
}

static void test_a_kept_alive_connection_trickling_its_next_request_is_cut_off(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.request_timeout_s = 1.0, .idle_timeout_s = 30});
    int fd = raw_connect_from(NULL, http_server_port(srv));
    const char first[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    raw_send(fd, first, sizeof first - 1);
    char got[512];
    clock_sleep(0.2);
    ssize_t n = recv(fd, got, sizeof got - 1, 0);
    assert_true(n > 0);
    got[n] = '\0';
    assert_int_equal(raw_status(got), 200);
    /* the next request line itself arrives within the idle time; the rest never in time */
    double t0 = clock_mono();
    double closed_at = trickle(
        fd, "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 0.1);
    close(fd);
    assert_true(closed_at > 0);
    assert_true(closed_at - t0 < 4.0);
    http_server_stop(srv);
}

static void test_an_idle_kept_alive_connection_ends_at_the_idle_timeout_however_it_trickles(void **state)
{
    (void)state;
    /* the idle time is 1 s; a request line trickled over 3 s does not extend it */
    http_server *srv = start_with((http_server_config){.request_timeout_s = 30, .idle_timeout_s = 1});
    int fd = raw_connect_from(NULL, http_server_port(srv));
    const char first[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    raw_send(fd, first, sizeof first - 1);
    clock_sleep(0.2);
    char got[512];
    assert_true(recv(fd, got, sizeof got, 0) > 0);
    double t0 = clock_mono();
    double closed_at = trickle(fd, "GET /helloooooooooooooooooooooooooooooooooooooooooooo", 0.1);
    close(fd);
    assert_true(closed_at > 0);
    assert_true(closed_at - t0 < 3.0);
    http_server_stop(srv);
}

static void test_a_handler_running_past_the_deadline_is_not_cut(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.request_timeout_s = 1.0});
    char *a = raw_exchange_from(NULL, http_server_port(srv),
                                "GET /slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_int_equal(raw_status(a), 200);
    assert_string_equal(raw_body(a), "slow");
    free(a);
    http_server_stop(srv);
}

/* ------------------------------------------------------------------ connection limits */

static void test_the_per_address_limit_refuses_only_that_address(void **state)
{
    (void)state;
    http_server *srv = start_with((http_server_config){.max_connections_per_ip = 2});
    int port = http_server_port(srv);
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = raw_connect_from("127.0.0.2", port);
        assert_true(held[i] >= 0);
    }
    clock_sleep(0.2); /* both accepted */
    int third = raw_connect_from("127.0.0.2", port);
    assert_true(third >= 0); /* the kernel accepts; the server closes it at once */
    assert_true(raw_closed_within(third, 2.0));
    close(third);
    char *a =
        raw_exchange_from("127.0.0.1", port, "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_int_equal(raw_status(a), 200);
    free(a);
    close(held[0]);
    clock_sleep(0.3); /* a slot of 127.0.0.2 is free again */
    a = raw_exchange_from("127.0.0.2", port, "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_int_equal(raw_status(a), 200);
    free(a);
    close(held[1]);
    http_server_stop(srv);
}

#define SLOWLORIS_CONNECTIONS 3000

typedef struct {
    int port;
    atomic_int opened;
    int fds[SLOWLORIS_CONNECTIONS];
} slowloris;

/* Opens SLOWLORIS_CONNECTIONS connections from 127.0.0.2, each sending the start of a request that
 * never ends. */
static void *slowloris_main(void *arg)
{
    slowloris *s = arg;
    for (int i = 0; i < SLOWLORIS_CONNECTIONS; i++) {
        s->fds[i] = raw_connect_from("127.0.0.2", s->port);
        if (s->fds[i] >= 0)
            raw_send(s->fds[i], "GET / HTTP/1.1\r\nHost: x\r\n", 26);
        atomic_fetch_add(&s->opened, 1);
    }
    return NULL;
}

static void test_a_slowloris_from_one_address_leaves_other_clients_served(void **state)
{
    (void)state;
    raw_allow_fds(SLOWLORIS_CONNECTIONS + 512);
    http_server *srv = start_with((http_server_config){.max_connections_per_ip = 64, .request_timeout_s = 2.0});
    slowloris *s = xcalloc(1, sizeof *s);
    s->port = http_server_port(srv);
    pthread_t th;
    pthread_create(&th, NULL, slowloris_main, s);
    double worst = 0;
    int served = 0;
    while (atomic_load(&s->opened) < SLOWLORIS_CONNECTIONS || served < 20) {
        double t0 = clock_mono();
        char *a = raw_exchange_from("127.0.0.1", s->port,
                                    "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        double took = clock_mono() - t0;
        assert_int_equal(raw_status(a), 200);
        free(a);
        served++;
        if (took > worst)
            worst = took;
        clock_sleep(0.02);
    }
    pthread_join(th, NULL);
    printf("slowloris: %d connections from one address, %d requests of another client served, slowest %.1f ms\n",
           SLOWLORIS_CONNECTIONS, served, worst * 1e3);
    assert_true(worst < 1.0);
    for (int i = 0; i < SLOWLORIS_CONNECTIONS; i++)
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    free(s);
    http_server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_host_with_garbage_after_the_port_gets_gos_400),
        cmocka_unit_test(test_two_host_headers_get_gos_400),
        cmocka_unit_test(test_http11_needs_a_host_and_http10_does_not),
        cmocka_unit_test(test_a_server_without_the_host_guard_skips_gos_host_checks),
        cmocka_unit_test(test_headers_trickled_past_the_deadline_are_cut_off),
        cmocka_unit_test(test_a_body_trickled_past_the_deadline_is_cut_off),
        cmocka_unit_test(test_a_kept_alive_connection_trickling_its_next_request_is_cut_off),
        cmocka_unit_test(test_an_idle_kept_alive_connection_ends_at_the_idle_timeout_however_it_trickles),
        cmocka_unit_test(test_a_handler_running_past_the_deadline_is_not_cut),
        cmocka_unit_test(test_the_per_address_limit_refuses_only_that_address),
        cmocka_unit_test(test_a_slowloris_from_one_address_leaves_other_clients_served),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
