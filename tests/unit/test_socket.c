/* Tests for net/socket: listeners, the port probe, free ports, close-on-exec. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/socket.h"

static void test_listen_on_an_ephemeral_loopback_port(void **state)
{
    (void)state;
    char err[256] = "";
    int fd = net_listen("127.0.0.1", 0, err, sizeof err);
    assert_true(fd >= 0);
    int port = net_bound_port(fd);
    assert_true(port > 0);
    assert_true(net_port_answers(port, 1.0));
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    assert_false(net_port_answers(port, 1.0));
}

static void test_listen_reports_a_taken_port(void **state)
{
    (void)state;
    char err[256] = "";
    int fd = net_listen("127.0.0.1", 0, err, sizeof err);
    int port = net_bound_port(fd);
    int again = net_listen("127.0.0.1", port, err, sizeof err);
    assert_int_equal(again, -1);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    assert_non_null(strstr(err, "in use"));
    close(fd);
}

static void test_listen_reports_an_unresolvable_host(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(net_listen("no-such-host.invalid", 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot resolve listen address 'no-such-host.invalid'"));
}

static void test_free_port_is_free_and_on_loopback(void **state)
{
    (void)state;
    int port = net_free_port();
    assert_true(port > 0 && port < 65536);
    assert_false(net_port_answers(port, 0.5));
    char err[256];
    int fd = net_listen("127.0.0.1", port, err, sizeof err);
    assert_true(fd >= 0);
    close(fd);
}

static void test_loopback_addresses_are_recognised(void **state)
{
    (void)state;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.3.4.5", &v4.sin_addr);
    assert_true(net_sockaddr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "10.0.0.1", &v4.sin_addr);
    assert_false(net_sockaddr_is_loopback((struct sockaddr *)&v4));
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    assert_true(net_sockaddr_is_loopback((struct sockaddr *)&v6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
    assert_true(net_sockaddr_is_loopback((struct sockaddr *)&v6));
    inet_pton(AF_INET6, "fe80::1", &v6.sin6_addr);
    assert_false(net_sockaddr_is_loopback((struct sockaddr *)&v6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_on_an_ephemeral_loopback_port),
        cmocka_unit_test(test_listen_reports_a_taken_port),
        cmocka_unit_test(test_listen_reports_an_unresolvable_host),
        cmocka_unit_test(test_free_port_is_free_and_on_loopback),
        cmocka_unit_test(test_loopback_addresses_are_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
