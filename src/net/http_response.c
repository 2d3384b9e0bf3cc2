/* http_response: the responses handlers return (bytes, JSON, errors, empty) and the chunked streaming
 * response pulled from a producer on the connection's thread, with the disconnect detection that
 * ends it; plus the JSON encoding every answer uses. See http_server.h. */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "net/http_server_internal.h"

#define STATUS_INTERNAL_ERROR 500u

struct http_stream {
    http_stream_ops ops;
    void *state;
    strbuf pending;
    size_t sent; /* bytes of pending already handed to libmicrohttpd */
    bool finished, cancelled;
    http_server *srv;
    struct MHD_Connection *mhd;
    int fd;
};

/* ------------------------------------------------------------------------------------ JSON */

char *http_json_encode(const json_t *value, size_t *len)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return NULL;
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)s[i + 1];
        if (a == 0xC2 && b == 0x85)
            extra += 4; /* 2 bytes -> "\u0085" */
        else if (a == 0xE2 && b == 0x80 && i + 2 < n &&
                 ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
            extra += 3; /* 3 bytes -> "\u2028" / "\u2029" */
    }
    if (extra == 0) {
        if (len)
            *len = n;
        return s;
    }
    char *out = xmalloc(n + extra + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i];
        if (a == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85) {
            memcpy(out + o, "\\u0085", 6);
            o += 6;
            i += 1;
        } else if (a == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            memcpy(out + o, (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            i += 2;
        } else {
            out[o++] = (char)a;
        }
    }
    out[o] = '\0';
    free(s);
    if (len)
        *len = o;
    return out;
}

json_t *http_json_string(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (utf8_is_valid(s, n))
        return json_stringn(s, n);
    strbuf fixed = {0};
    utf8_append_lossy(&fixed, s, n);
    json_t *v = json_stringn(fixed.data ? fixed.data : "", fixed.len);
    sb_free(&fixed);
    return v;
}

/* ------------------------------------------------------------------------------------ responses */

static http_response *response_wrap(struct MHD_Response *mhd, unsigned status)
{
    if (!mhd)
        abort(); /* only out of memory: see buf.h's policy */
    http_response *r = xmalloc(sizeof *r);
    r->mhd = mhd;
    r->status = status;
    r->stream = NULL;
    return r;
}

static http_response *response_with_type(http_response *r, const char *content_type)
{
    if (content_type)
        MHD_add_response_header(r->mhd, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return r;
}

http_response *http_response_bytes(unsigned status, const char *content_type, const char *body, size_t len)
{
    return response_with_type(
        response_wrap(MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY), status), content_type);
}

http_response *http_response_static(unsigned status, const char *content_type, const char *body)
{
    return response_with_type(
        response_wrap(MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT), status),
        content_type);
}

http_response *http_response_take(unsigned status, const char *content_type, char *body, size_t len)
{
    return response_with_type(response_wrap(MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE), status),
                              content_type);
}

http_response *http_response_empty(unsigned status)
{
    return response_wrap(MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT), status);
}

http_response *http_response_json(unsigned status, const json_t *value)
{
    size_t len;
    char *text = http_json_encode(value, &len);
    if (!text)
        return http_response_static(STATUS_INTERNAL_ERROR, HTTP_CONTENT_TYPE_JSON,
                                    "{\"error\":\"cannot serialise the response\"}");
    return http_response_take(status, HTTP_CONTENT_TYPE_JSON, text, len);
}

http_response *http_response_error(unsigned status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *obj = json_object();
    json_object_set_new(obj, "error", http_json_string(msg));
    http_response *r = http_response_json(status, obj);
    json_decref(obj);
    return r;
}

void http_response_add_header(http_response *resp, const char *name, const char *value)
{
    MHD_add_response_header(resp->mhd, name, value);
}

void http_response_free(http_response *r)
{
    MHD_destroy_response(r->mhd); /* a stream's state goes with it (http_stream_free) */
    free(r);
}

/* ------------------------------------------------------------------------------------ streaming */

bool http_socket_closed(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void http_stream_cancel(http_stream *s)
{
    if (!s->finished && !s->cancelled) {
        s->cancelled = true;
        if (s->ops.cancel)
            s->ops.cancel(s->state);
    }
}

/* The next bytes for libmicrohttpd: pending ones, else the producer's (waited for). */
static ssize_t http_stream_next_bytes(http_stream *s, char *buf, size_t max)
{
    for (;;) {
        if (s->sent < s->pending.len) {
            size_t n = s->pending.len - s->sent;
            if (n > max)
                n = max;
            memcpy(buf, s->pending.data + s->sent, n);
            s->sent += n;
            if (s->sent == s->pending.len) {
                sb_clear(&s->pending);
                s->sent = 0;
            }
            return (ssize_t)n;
        }
        if (s->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->cancelled || atomic_load(&s->srv->stopping) || http_socket_closed(s->fd)) {
            http_stream_cancel(s);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!s->ops.pull(s->state, &s->pending, HTTP_STREAM_POLL_S))
            s->finished = true;
    }
}

/* libmicrohttpd asks for the next bytes of the chunked body. Runs on the connection's thread (so
 * it may wait); waits in HTTP_STREAM_POLL_S steps, checking the client and the server between.
 * Being asked means the client took what was handed over before: no deadline while the producer
 * is waited for; the bytes handed over must be taken within the idle timeout (the watchdog). */
static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_stream *s = cls;
    if (s->mhd)
        http_watchdog_handling(&s->srv->watchdog, s->mhd);
    ssize_t n = http_stream_next_bytes(s, buf, max);
    if (s->mhd && n != MHD_CONTENT_READER_END_WITH_ERROR)
        http_watchdog_sending(&s->srv->watchdog, s->mhd);
    return n;
}

static void http_stream_free(void *cls)
{
    http_stream *s = cls;
    http_stream_cancel(s); /* the connection died before the end (write error, shutdown) */
    if (s->ops.free)
        s->ops.free(s->state);
    sb_free(&s->pending);
    free(s);
}

http_response *http_response_stream(const char *content_type, const http_stream_ops *ops, void *state)
{
    http_stream *s = xcalloc(1, sizeof *s);
    s->ops = *ops;
    s->state = state;
    s->fd = -1;
    /* the block size bounds one read; our lines go out as soon as they exist anyway */
    struct MHD_Response *mhd =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, http_stream_read, s, http_stream_free);
    http_response *r = response_with_type(response_wrap(mhd, 200), content_type);
    r->stream = s;
    return r;
}

void http_stream_attach(http_stream *s, http_server *srv, struct MHD_Connection *mhd, int fd)
{
    s->srv = srv;
    s->mhd = mhd;
    s->fd = fd;
}
