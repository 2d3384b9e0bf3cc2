/* client: the CLI's HTTP client (see client.h): OLLAMA_HOST for a client, one libcurl multi
 * loop per request that polls in 100 ms steps (abort flag, tick callback, idle timeout), NDJSON
 * line splitting and the server's {"error": ...} convention. */
#include "cli/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "cli/commands.h"
#include "common/buf.h"
#include "config/config.h"

#define CONNECT_TIMEOUT_S 10L
#define MAX_LINE (8u << 20) /* the Go client's NDJSON line limit */

double client_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* OLLAMA_HOST trimmed of spaces and quotes, like the server's reading of it. */
static char *trimmed_env(const char *v)
{
    if (!v)
        return xstrdup("");
    const char *b = v, *e = v + strlen(v);
    for (int pass = 0; pass < 3; pass++) {
        const char *set = pass == 1 ? "\"'" : " \t\r\n\v\f";
        while (b < e && strchr(set, *b))
            b++;
        while (e > b && strchr(set, e[-1]))
            e--;
    }
    return xstrndup(b, (size_t)(e - b));
}

void client_init(client *c)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *env = getenv("OLLAMA_HOST");
    char host[256];
    int port = 11434;
    parse_ollama_host(env ? env : "", host, sizeof host, &port);
    char *v = trimmed_env(env);
    const char *scheme = "http";
    const char *hostport = v;
    char *sep = strstr(v, "://");
    if (sep) {
        if (sep - v == 5 && !strncmp(v, "https", 5))
            scheme = "https";
        hostport = sep + 3;
    } else if (!strcmp(v, "ollama.com")) {
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
    (void)c;
    curl_global_cleanup();
}

typedef struct {
    const client_req *req;
    CURL *easy;
    strbuf body;   /* the whole body (not streaming, or an error status) */
    strbuf line;   /* the unfinished NDJSON line */
    bool stop;     /* the write callback ended the transfer; result says why */
    client_result result;
    char error[1024];
    double last_byte;
} xfer;

static void set_error(xfer *x, client_result r, const char *msg)
{
    x->stop = true;
    x->result = r;
    snprintf(x->error, sizeof x->error, "%s", msg);
}

/* One complete NDJSON line. False ends the transfer. */
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
        set_error(x, CLIENT_TRANSPORT, msg);
        return false;
    }
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

static size_t on_write(char *data, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    size_t n = size * nmemb;
    x->last_byte = client_now();
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!x->req->on_line || status < 200 || status >= 300) {
        if (x->body.len + n > (64u << 20)) {
            set_error(x, CLIENT_TRANSPORT, "answer too large");
            return 0;
        }
        sb_append(&x->body, data, n);
        return n;
    }
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
        if (!ok)
            return 0;
        start = i + 1;
    }
    sb_append(&x->line, data + start, n - start);
    if (x->line.len > MAX_LINE) {
        set_error(x, CLIENT_TRANSPORT, "NDJSON line from the server too long");
        return 0;
    }
    return n;
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

client_result client_do(const client *c, const client_req *req, client_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    xfer x = {.req = req, .result = CLIENT_OK};
    char url[1200];
    snprintf(url, sizeof url, "%s%s", c->base, req->path);
    char *payload = req->body ? json_dumps(req->body, JSON_COMPACT) : NULL;
    char errbuf[CURL_ERROR_SIZE] = "";

    CURL *e = curl_easy_init();
    x.easy = e;
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, req->on_line ? "Accept: application/x-ndjson" : "Accept: application/json");
    headers = curl_slist_append(headers, "User-Agent: axllama/" AXLLAMA_VERSION);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    if (req->timeout_s > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(req->timeout_s * 1000));
    if (payload) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    if (req->method && strcmp(req->method, payload ? "POST" : "GET"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);

    CURLM *m = curl_multi_init();
    curl_multi_add_handle(m, e);
    CURLcode code = CURLE_OK;
    bool finished = false;
    x.last_byte = client_now();
    double last_tick = client_now();
    while (!finished) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE) {
                code = msg->data.result;
                finished = true;
            }
        if (finished || x.stop)
            break;
        curl_multi_poll(m, NULL, 0, 100, NULL);
        double now = client_now();
        if (req->abort && *req->abort) {
            set_error(&x, CLIENT_ABORTED, "aborted");
            break;
        }
        if (req->idle_timeout_s > 0 && now - x.last_byte > req->idle_timeout_s) {
            char text[200];
            snprintf(text, sizeof text, "no answer from the server for %.0f s", req->idle_timeout_s);
            set_error(&x, CLIENT_TRANSPORT, text);
            break;
        }
        if (req->on_tick && now - last_tick >= 0.1) {
            last_tick = now;
            req->on_tick(req->user);
        }
    }

    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    if (!x.stop) {
        if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
            (code == CURLE_OPERATION_TIMEDOUT && status == 0)) {
            set_error(&x, CLIENT_UNREACHABLE, errbuf[0] ? errbuf : curl_easy_strerror(code));
        } else if (code != CURLE_OK) {
            char text[600];
            snprintf(text, sizeof text, "%s", errbuf[0] ? errbuf : curl_easy_strerror(code));
            set_error(&x, CLIENT_TRANSPORT, text);
        } else if (status >= 400 || status < 200) {
            status_error(&x, status);
        } else if (req->on_line) {
            if (x.line.len)
                handle_line(&x, x.line.data, x.line.len);
        } else if (x.body.len) {
            json_error_t jerr;
            resp->json = json_loadb(x.body.data, x.body.len, 0, &jerr);
            if (!resp->json) {
                char text[400];
                snprintf(text, sizeof text, "invalid JSON from the server: %s", jerr.text);
                set_error(&x, CLIENT_TRANSPORT, text);
            }
        }
    }
    resp->result = x.result;
    snprintf(resp->error, sizeof resp->error, "%s", x.error);

    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_multi_cleanup(m);
    curl_slist_free_all(headers);
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
        snprintf(out, outlen, "could not connect to axllama server at %s, is it running? (start it with 'axllama serve')",
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
