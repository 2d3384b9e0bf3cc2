/* tiny_http: a minimal HTTP/1.1 server for client tests, on raw sockets (independent of the code
 * under test): one thread, one connection at a time, keep-alive, and a count of accepted
 * connections. Each request's line is recorded; the answer comes from the test's handler. */
#ifndef AXLLAMA_TESTS_TINY_HTTP_H
#define AXLLAMA_TESTS_TINY_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct tiny_http tiny_http;
/* Writes the whole answer (status line, headers, body) for one request into out (outlen bytes);
 * returns its length, or 0 to close the connection without answering. May sleep. */
typedef size_t (*tiny_handler)(tiny_http *t, const char *request_line, const char *body, char *out, size_t outlen);

struct tiny_http {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int accepts;
    atomic_int requests;
    char last_line[512];
    tiny_handler handler;
};

static int tiny_read_request(int c, char *buf, size_t cap, size_t *body_off, size_t *body_len)
{
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            return got ? -1 : 0; /* idle: let the loop check stop */
        ssize_t n = read(c, buf + got, cap - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        size_t head = (size_t)(end - buf) + 4;
        size_t len = 0;
        const char *cl = strcasestr(buf, "content-length:");
        if (cl && cl < end)
            len = strtoul(cl + 15, NULL, 10);
        while (got < head + len) {
            n = read(c, buf + got, cap - 1 - got);
            if (n <= 0)
                return -1;
            got += (size_t)n;
        }
        buf[got] = '\0';
        *body_off = head;
        *body_len = len;
        return 1;
    }
}

static void *tiny_main(void *arg)
{
    tiny_http *t = arg;
    static char buf[1 << 16], out[1 << 16];
    while (!atomic_load(&t->stop)) {
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(t->fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&t->accepts, 1);
        while (!atomic_load(&t->stop)) {
            size_t off = 0, len = 0;
            int r = tiny_read_request(c, buf, sizeof buf, &off, &len);
            if (r < 0)
                break;
            if (r == 0)
                continue;
            atomic_fetch_add(&t->requests, 1);
            size_t l = strcspn(buf, "\r\n");
            snprintf(t->last_line, sizeof t->last_line, "%.*s", (int)l, buf);
            size_t n = t->handler(t, t->last_line, buf + off, out, sizeof out);
            if (n == 0 || write(c, out, n) != (ssize_t)n)
                break;
        }
        close(c);
    }
    return NULL;
}

static void tiny_start(tiny_http *t, tiny_handler h)
{
    memset(t, 0, sizeof *t);
    t->handler = h;
    t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(t->fd, (struct sockaddr *)&a, sizeof a);
    listen(t->fd, 16);
    socklen_t len = sizeof a;
    getsockname(t->fd, (struct sockaddr *)&a, &len);
    t->port = ntohs(a.sin_port);
    pthread_create(&t->thread, NULL, tiny_main, t);
}

static void tiny_stop(tiny_http *t)
{
    atomic_store(&t->stop, true);
    pthread_join(t->thread, NULL);
    close(t->fd);
}

/* "HTTP/1.1 <status> X\r\nContent-Length: n\r\nContent-Type: application/json\r\n\r\n<body>" */
static size_t tiny_answer(char *out, size_t outlen, int status, const char *body)
{
    int n = snprintf(out, outlen, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     status, strlen(body), body);
    return n > 0 ? (size_t)n : 0;
}

#endif
