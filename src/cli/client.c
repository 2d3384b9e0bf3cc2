/* client: the CLI's HTTP client (see client.h) on the shared net/http_client: OLLAMA_HOST read
 * through config (the server's trimming and parsing) then made connectable, one http_client call
 * per request with the answer's bytes taken as they come (NDJSON split into lines, the server's
 * {"error": ...} convention), and the abort flag, the idle timeout and the tick checked every
 * ~100 ms by the call's keep_going. */
#include "cli/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/buf.h"
#include "common/clock.h"
#include "config/config.h"
#include "net/http_client.h"

#define CONNECT_TIMEOUT_S 10.0
/* A request without a timeout of its own: bounded all the same (its idle timeout ends it sooner). */
#define LONGEST_REQUEST_S (7.0 * 24 * 3600)
#define MAX_BODY ((size_t)64 << 20)        /* a whole (not streamed) answer */
#define MAX_LINE ((size_t)8 << 20)         /* the Go client's NDJSON line limit */
#define ERROR_BODY_KEPT ((size_t)64 << 10) /* of a stream: its start, for a non-2xx status's message */

double client_now(void)
{
    return clock_mono();
}

void client_init(client *c)
{
    char *v = config_env_value("OLLAMA_HOST");
    const char *value = v ? v : "";
    char host[256];
    int port = 11434;
    parse_ollama_host(value, host, sizeof host, &port);
    const char *scheme = "http";
    const char *hostport = value;
    const char *sep = strstr(value, "://");
    if (sep) {
        if (sep - value == 5 && !strncmp(value, "https", 5))
            scheme = "https";
        hostport = sep + 3;
    } else if (!strcmp(value, "ollama.com")) {
        scheme = "https";
    }
    /* a path is kept for clients (a reverse proxy's prefix), without trailing slashes */
    strbuf path = {0};
    const char *slash = strchr(hostport, '/');
    if (slash)
        sb_puts(&path, slash);
    while (path.len && path.data[path.len - 1] == '/')
        path.data[--path.len] = '\0';
    /* ConnectableHost: an unspecified address means this machine */
    if (!host[0] || !strcmp(host, "0.0.0.0"))
        strcpy(host, "127.0.0.1");
    else if (!strcmp(host, "::"))
        strcpy(host, "::1");
    bool v6 = strchr(host, ':') != NULL;
    snprintf(c->address, sizeof c->address, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    snprintf(c->base, sizeof c->base, "%s://%s%s", scheme, c->address, path.data ? path.data : "");
    sb_free(&path);
    free(v);
}

void client_free(client *c)
{
    (void)c; /* nothing held between requests */
}

/* One request's state, shared by the call's callbacks. */
typedef struct {
    const client_req *req;
    strbuf body;        /* a whole answer; of a stream, its first ERROR_BODY_KEPT bytes */
    strbuf line;        /* a stream's unfinished NDJSON line */
    bool lines_started; /* a stream's first line was good JSON: later bad lines end it at once */
    bool stop;          /* a callback ended the call; result and error say why */
    client_result result;
    char error[1024];
    /* a stream's first line was not JSON: maybe an error status's body (the status is only known
     * once the call is over), so the body is collected and this is the error for a 2xx status */
    bool not_ndjson;
    char not_ndjson_error[400];
    double last_byte, last_tick;
} xfer;

static void set_error(xfer *x, client_result r, const char *msg)
{
    x->stop = true;
    x->result = r;
    snprintf(x->error, sizeof x->error, "%s", msg);
}

/* One complete NDJSON line. False ends the call. */
static bool handle_line(xfer *x, const char *text, size_t len)
{
    while (len && (text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (!len)
        return true;
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, 0, &jerr);
    if (!obj) {
        char msg[400];
        snprintf(msg, sizeof msg, "invalid JSON line from the server: %s", jerr.text);
        if (x->lines_started) {
            set_error(x, CLIENT_TRANSPORT, msg);
            return false;
        }
        x->not_ndjson = true;
        snprintf(x->not_ndjson_error, sizeof x->not_ndjson_error, "%s", msg);
        return true;
    }
    x->lines_started = true;
    const char *err = json_string_value(json_object_get(obj, "error"));
    if (err) {
        set_error(x, CLIENT_SERVER_ERROR, err);
        json_decref(obj);
        return false;
    }
    bool go_on = x->req->on_line(x->req->user, obj);
    json_decref(obj);
    if (!go_on) {
        set_error(x, CLIENT_ABORTED, "stopped");
        return false;
    }
    return true;
}

/* A stream's bytes: split into lines, each handled as it completes. */
static bool take_stream_bytes(xfer *x, const char *data, size_t n)
{
    if (x->body.len < ERROR_BODY_KEPT)
        sb_append(&x->body, data, n < ERROR_BODY_KEPT - x->body.len ? n : ERROR_BODY_KEPT - x->body.len);
    if (x->not_ndjson) /* only the body is wanted now */
        return x->body.len < ERROR_BODY_KEPT;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] != '\n')
            continue;
        bool ok;
        if (x->line.len) {
            sb_append(&x->line, data + start, i - start);
            ok = handle_line(x, x->line.data, x->line.len);
            sb_clear(&x->line);
        } else {
            ok = handle_line(x, data + start, i - start);
        }
        start = i + 1;
        if (!ok)
            return false;
        if (x->not_ndjson)
            return x->body.len < ERROR_BODY_KEPT;
    }
    sb_append(&x->line, data + start, n - start);
    if (x->line.len > MAX_LINE) {
        set_error(x, CLIENT_TRANSPORT, "NDJSON line from the server too long");
        return false;
    }
    return true;
}

/* http_call.on_data: the answer's bytes as they arrive. */
static bool client_on_data(void *user, const char *data, size_t n)
{
    xfer *x = user;
    x->last_byte = clock_mono();
    if (x->req->on_line)
        return take_stream_bytes(x, data, n);
    if (x->body.len + n > MAX_BODY) {
        set_error(x, CLIENT_TRANSPORT, "answer too large");
        return false;
    }
    sb_append(&x->body, data, n);
    return true;
}

/* http_call.keep_going, about every 100 ms: the abort flag, the idle timeout, the tick. */
static bool client_keep_going(void *user)
{
    xfer *x = user;
    const client_req *req = x->req;
    if (req->abort && *req->abort) {
        set_error(x, CLIENT_ABORTED, "aborted");
        return false;
    }
    double now = clock_mono();
    if (req->idle_timeout_s > 0 && now - x->last_byte > req->idle_timeout_s) {
        char text[200];
        snprintf(text, sizeof text, "no answer from the server for %.0f s", req->idle_timeout_s);
        set_error(x, CLIENT_TRANSPORT, text);
        return false;
    }
    if (req->on_tick && now - x->last_tick >= 0.1) {
        x->last_tick = now;
        req->on_tick(req->user);
    }
    return true;
}

/* The "error" of a JSON body, else the body's text, else "HTTP <status>". */
static void status_error(xfer *x, long status)
{
    json_t *obj = x->body.len ? json_loadb(x->body.data, x->body.len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(obj, "error"));
    char text[1024];
    if (msg) {
        snprintf(text, sizeof text, "%s", msg);
    } else if (x->body.len) {
        size_t len = x->body.len;
        while (len && (x->body.data[len - 1] == '\n' || x->body.data[len - 1] == ' '))
            len--;
        snprintf(text, sizeof text, "%.*s", (int)(len < 900 ? len : 900), x->body.data);
    } else {
        snprintf(text, sizeof text, "HTTP %ld", status);
    }
    json_decref(obj);
    set_error(x, CLIENT_SERVER_ERROR, text);
}

/* What the call's outcome means for the request, once it is over. */
static void client_finish(xfer *x, const http_reply *reply, client_resp *resp)
{
    if (x->stop) {
        /* a callback's verdict stands, but an error status says more than a broken stream */
        if (x->result == CLIENT_TRANSPORT && reply->status >= 400)
            status_error(x, reply->status);
        return;
    }
    bool body_full = x->not_ndjson && reply->result == HTTPC_ABORTED; /* collected enough of it */
    if (reply->result == HTTPC_UNREACHABLE)
        set_error(x, CLIENT_UNREACHABLE, reply->error);
    else if (reply->result != HTTPC_OK && !body_full)
        set_error(x, CLIENT_TRANSPORT, reply->error);
    else if (reply->status >= 400 || reply->status < 200)
        status_error(x, reply->status);
    else if (x->not_ndjson)
        set_error(x, CLIENT_TRANSPORT, x->not_ndjson_error);
    else if (x->req->on_line && x->line.len)
        handle_line(x, x->line.data, x->line.len); /* the last line may lack its newline */
    else if (!x->req->on_line && x->body.len) {
        json_error_t jerr;
        resp->json = json_loadb(x->body.data, x->body.len, 0, &jerr);
        if (!resp->json) {
            char text[400];
            snprintf(text, sizeof text, "invalid JSON from the server: %s", jerr.text);
            set_error(x, CLIENT_TRANSPORT, text);
        }
    }
}

client_result client_do(const client *c, const client_req *req, client_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    double now = clock_mono();
    xfer x = {.req = req, .result = CLIENT_OK, .last_byte = now, .last_tick = now};
    http_client_config cfg = {
        .base_url = c->base,
        .connect_timeout_s = CONNECT_TIMEOUT_S,
        .timeout_s = req->timeout_s > 0 ? req->timeout_s : LONGEST_REQUEST_S,
        .max_body = MAX_BODY,
        .user_agent = "axllama/" AXLLAMA_VERSION,
    };
    http_client *http = http_client_new(&cfg);
    if (!http) {
        resp->result = CLIENT_TRANSPORT;
        snprintf(resp->error, sizeof resp->error, "libcurl could not make a handle");
        return resp->result;
    }
    char *payload = req->body ? json_dumps(req->body, JSON_COMPACT) : NULL;
    const char *headers[] = {req->on_line ? "Accept: application/x-ndjson" : "Accept: application/json", NULL};
    http_call call = {
        .method = req->method,
        .path = req->path,
        .body = payload,
        .body_len = payload ? strlen(payload) : 0,
        .headers = headers,
        .on_data = client_on_data,
        .keep_going = client_keep_going,
        .user = &x,
    };
    http_reply reply;
    http_client_call(http, &call, &reply);
    resp->status = reply.status;
    client_finish(&x, &reply, resp);
    resp->result = x.result;
    snprintf(resp->error, sizeof resp->error, "%s", x.error);

    http_reply_free(&reply);
    http_client_free(http);
    free(payload);
    sb_free(&x.body);
    sb_free(&x.line);
    return resp->result;
}

void client_resp_free(client_resp *resp)
{
    json_decref(resp->json);
    resp->json = NULL;
}

void client_error_text(const client *c, const client_resp *resp, char *out, size_t outlen)
{
    if (resp->result == CLIENT_UNREACHABLE)
        snprintf(out, outlen,
                 "could not connect to axllama server at %s, is it running? (start it with 'axllama serve')",
                 c->address);
    else
        snprintf(out, outlen, "%s", resp->error[0] ? resp->error : "request failed");
}

int client_fail(const client *c, client_resp *resp)
{
    char text[1200];
    client_error_text(c, resp, text, sizeof text);
    fprintf(stderr, "Error: %s\n", text);
    client_resp_free(resp);
    return 1;
}
