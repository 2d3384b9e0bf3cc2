/* raw_http: a raw-socket HTTP client for the hardening tests: connections from a chosen loopback
 * source address (127.0.0.2 counts as another client than 127.0.0.1 for a per-address limit), whole
 * exchanges, reads until the server closes, and the status and body of an answer. Independent of the
 * server code under test. Header-only. */
#ifndef AXLLAMA_TESTS_RAW_HTTP_H
#define AXLLAMA_TESTS_RAW_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"

/* A connection to 127.0.0.1:port from source address src ("127.0.0.2"; NULL: the default), or -1. */
static inline int raw_connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &b.sin_addr);
        if (bind(fd, (struct sockaddr *)&b, sizeof b) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline bool raw_send(int fd, const char *data, size_t n)
{
    return send(fd, data, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* Reads until the server closes or timeout_s passes; *closed tells which (may be NULL). The bytes
 * read, NUL-terminated; caller frees. */
static inline char *raw_read_until_closed(int fd, double timeout_s, bool *closed)
{
    strbuf in = {0};
    sb_append(&in, "", 0);
    double deadline = deadline_in(timeout_s);
    bool done = false;
    while (!done && !deadline_passed(deadline)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline_left(deadline) * 1000) + 1) <= 0)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            done = true;
        else
            sb_append(&in, buf, (size_t)n);
    }
    if (closed)
        *closed = done;
    return sb_steal(&in);
}

/* Whether the server closed fd within timeout_s (whatever it sent before). */
static inline bool raw_closed_within(int fd, double timeout_s)
{
    bool closed;
    free(raw_read_until_closed(fd, timeout_s, &closed));
    return closed;
}

/* Sends the request (its text whole) from src and reads the answer until the server closes. */
static inline char *raw_exchange_from(const char *src, int port, const char *request)
{
    int fd = raw_connect_from(src, port);
    if (fd < 0)
        return xstrdup("");
    raw_send(fd, request, strlen(request));
    char *answer = raw_read_until_closed(fd, 10.0, NULL);
    close(fd);
    return answer;
}

static inline int raw_status(const char *answer)
{
    int status = 0;
    if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    return status;
}

static inline const char *raw_body(const char *answer)
{
    const char *b = strstr(answer, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* Raises this process's soft limit on open files to want (or the hard limit). */
static inline void raw_allow_fds(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

#endif
