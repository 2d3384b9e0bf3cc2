/* http_probe: a libcurl client for tests of an in-process HTTP server (src/net/http_server.h), and
 * the assertions they make on its answers: requests with any method, extra headers, a body, a
 * reused handle (keep-alive) or a hook on the bytes as they arrive; the status, headers, body and
 * the body parsed as JSON; {"error"} bodies, header values, NDJSON lines, JSON members by dotted
 * path. Also starts a server on an ephemeral port with a route table (quiet log). */
#ifndef AXLLAMA_TESTS_HTTP_PROBE_H
#define AXLLAMA_TESTS_HTTP_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/buf.h"
#include "net/http_server.h"

typedef struct {
    long status;
    strbuf body;
    strbuf headers;
    long connects;
    CURLcode rc;
    json_t *json; /* the body parsed, when it is JSON */
} probe_result;

typedef struct {
    const char *method;
    const char *path;
    const char *body; /* NULL: none (sent like `curl -d`: application/x-www-form-urlencoded) */
    const char *headers[6];
    const char *base; /* NULL: the default base (probe_set_base) */
    long timeout_ms;  /* 0: 10 s */
    CURL *curl;       /* NULL: a fresh handle */
    /* Optional: called with the body received so far each time bytes arrive (on the calling
     * thread); returning false aborts the transfer (rc CURLE_WRITE_ERROR). */
    bool (*on_body)(void *user, const strbuf *body);
    void *on_body_user;
} probe_request;

/* "http://127.0.0.1:<port>" of srv into out. */
void probe_base_url(const http_server *srv, char *out, size_t n);
/* The base of requests whose base is NULL (copied). */
void probe_set_base(const char *base);

/* A server on 127.0.0.1 (or host) and an ephemeral port with these routes, CORS origins (may be
 * NULL) and body limit (0: the default); fails the test when it cannot start. */
http_server *probe_start_server(const http_route *routes, size_t n_routes, const char *host, const char *const *origins,
                                size_t max_body);

/* Performs the request whatever happens (see rc). */
probe_result probe_perform(const probe_request *rq);
/* Performs the request; fails the test when the transfer fails. */
probe_result probe_must(const probe_request *rq);
probe_result probe_get(const char *path);
probe_result probe_post(const char *path, const char *body);
void probe_result_free(probe_result *r);

/* The last value of a response header into out, "" when absent; returns out. */
const char *probe_header(const probe_result *r, const char *name, char *out, size_t n);
void probe_assert_header(const probe_result *r, const char *name, const char *expected);
/* Status and {"error": message} (nothing else) with a JSON content type. */
void probe_assert_error(probe_result *r, long status, const char *message);
/* POSTs body to path and asserts that error. */
void probe_expect_error(const char *path, const char *body, long status, const char *message);

/* Splits an NDJSON body: every line must be non-empty and parse; the body ends with "\n". The
 * first max lines go into lines (free with probe_free_lines); returns the count of all. */
size_t probe_ndjson_lines(const probe_result *r, json_t **lines, size_t max);
void probe_free_lines(json_t **lines, size_t n);

/* The string at a dotted path of objects ("message.content"), NULL when there is none. */
const char *probe_str(const json_t *o, const char *path);

#endif
