/* emu_tokclient: the client of the tokenizer service, as the vendor runtime calls it, on
 * net/http_client (never through a proxy for a loopback service). */
#include "emu/emu_tokclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http_client.h"

/* The vendor's client reads any answer whole; this bounds it far above the largest the service
 * gives (the ids of a body at its 8 MiB limit). */
#define TOKC_MAX_ANSWER ((size_t)256 << 20)

struct emu_tokclient {
    char base[128]; /* http://A.B.C.D:PORT */
    struct sockaddr_in addr;
    double timeout_s;
    char uid[64];
};

emu_tokclient *emu_tokclient_new(const char *url, double timeout_s, char *err, size_t errlen)
{
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    const char *colon = strrchr(p, ':');
    const char *slash = strchr(p, '/');
    if (!colon || (slash && colon > slash) || colon == p) {
        snprintf(err, errlen, "tokenizer url %s has no port", url);
        return NULL;
    }
    char host[64];
    size_t hl = (size_t)(colon - p);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "tokenizer url %s: host too long", url);
        return NULL;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    emu_tokclient *tc = xcalloc(1, sizeof *tc);
    tc->addr.sin_family = AF_INET;
    tc->addr.sin_port = htons((uint16_t)port);
    if (end == colon + 1 || (*end && *end != '/') || port <= 0 || port > 65535 ||
        inet_pton(AF_INET, host, &tc->addr.sin_addr) != 1) {
        snprintf(err, errlen, "tokenizer url %s is not http://IPV4:PORT", url);
        free(tc);
        return NULL;
    }
    snprintf(tc->base, sizeof tc->base, "http://%s:%ld", host, port);
    tc->timeout_s = timeout_s;
    return tc;
}

void emu_tokclient_free(emu_tokclient *tc)
{
    free(tc);
}

const char *emu_tokclient_url(const emu_tokclient *tc)
{
    return tc->base;
}

const char *emu_tokclient_uid(const emu_tokclient *tc)
{
    return tc->uid;
}

bool emu_tokclient_probe(emu_tokclient *tc)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&tc->addr, sizeof tc->addr) == 0) {
        ok = true;
    } else if (errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t len = sizeof soerr;
        ok = poll(&pfd, 1, (int)(tc->timeout_s * 1000)) == 1 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0;
    }
    close(fd);
    return ok;
}

/* One request; body NULL = GET. The answer (status 200 only) is parsed into *answer. A fresh client
 * per call, like the vendor's httplib client (a new connection each time, safe from any thread). */
static tokc_status tokc_request(emu_tokclient *tc, const char *path, json_t *body, json_t **answer)
{
    *answer = NULL;
    http_client_config cfg = {
        .base_url = tc->base,
        .connect_timeout_s = tc->timeout_s,
        .timeout_s = tc->timeout_s,
        .max_body = TOKC_MAX_ANSWER,
    };
    http_client *client = http_client_new(&cfg);
    if (!client)
        return TOKC_FAILED;
    char *payload = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    http_call call = {
        .method = payload ? "POST" : "GET",
        .path = path,
        .body = payload,
        .body_len = payload ? strlen(payload) : 0,
        .content_type = "application/json",
    };
    http_reply reply;
    tokc_status st = TOKC_FAILED;
    if (http_client_call(client, &call, &reply) == HTTPC_OK && reply.status == 200) {
        *answer = json_loadb(reply.body.data ? reply.body.data : "", reply.body.len, 0, NULL);
        st = *answer && json_is_object(*answer) && !json_object_get(*answer, "error") ? TOKC_OK : TOKC_BAD_ANSWER;
    }
    http_reply_free(&reply);
    free(payload);
    http_client_free(client);
    return st;
}

static bool read_ids(json_t *list, idvec *out)
{
    if (!json_is_array(list))
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (!json_is_integer(v))
            return false;
        iv_push(out, (int32_t)json_integer_value(v));
    }
    return true;
}

static json_t *ids_array(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

tokc_status emu_tokclient_get_uid(emu_tokclient *tc)
{
    json_t *ans;
    tokc_status st = tokc_request(tc, "/get_uid", NULL, &ans);
    const char *uid = json_string_value(json_object_get(ans, "uid"));
    if (st == TOKC_OK && (!uid || strlen(uid) >= sizeof tc->uid))
        st = TOKC_BAD_ANSWER;
    if (st == TOKC_OK)
        strcpy(tc->uid, uid);
    json_decref(ans);
    return st;
}

tokc_status emu_tokclient_get_id(emu_tokclient *tc, const char *which, int *id)
{
    char path[128];
    snprintf(path, sizeof path, "/%s?uid=%s", which, tc->uid);
    json_t *ans;
    tokc_status st = tokc_request(tc, path, NULL, &ans);
    json_t *v = json_object_get(ans, which);
    if (st == TOKC_OK && !json_is_integer(v))
        st = TOKC_BAD_ANSWER;
    if (st == TOKC_OK)
        *id = (int)json_integer_value(v);
    json_decref(ans);
    return st;
}

tokc_status emu_tokclient_reset(emu_tokclient *tc, const char *system_prompt, idvec *ids)
{
    json_t *body = json_pack("{s:s}", "uid", tc->uid);
    if (system_prompt && *system_prompt)
        json_object_set_new(body, "system_prompt", json_string(system_prompt));
    json_t *ans;
    tokc_status st = tokc_request(tc, "/reset", body, &ans);
    if (st == TOKC_OK && !read_ids(json_object_get(ans, "token_ids"), ids))
        st = TOKC_BAD_ANSWER;
    json_decref(body);
    json_decref(ans);
    return st;
}

tokc_status emu_tokclient_encode(emu_tokclient *tc, const char *text, const char *last_reply, idvec *ids, idvec *diff)
{
    json_t *body = json_pack("{s:b,s:s,s:s}", "img_prompt", 0, "text", text, "uid", tc->uid);
    if (last_reply && *last_reply)
        json_object_set_new(body, "last_reply", json_string(last_reply));
    json_t *ans;
    tokc_status st = tokc_request(tc, "/encode", body, &ans);
    if (st == TOKC_OK &&
        (!read_ids(json_object_get(ans, "token_ids"), ids) || !read_ids(json_object_get(ans, "diff"), diff)))
        st = TOKC_BAD_ANSWER;
    json_decref(body);
    json_decref(ans);
    return st;
}

tokc_status emu_tokclient_decode(emu_tokclient *tc, const int32_t *ids, size_t n, strbuf *text)
{
    json_t *body = json_pack("{s:o,s:s}", "token_ids", ids_array(ids, n), "uid", tc->uid);
    json_t *ans;
    tokc_status st = tokc_request(tc, "/decode", body, &ans);
    json_t *t = json_object_get(ans, "text");
    if (st == TOKC_OK && !json_is_string(t))
        st = TOKC_BAD_ANSWER;
    if (st == TOKC_OK)
        sb_append(text, json_string_value(t), json_string_length(t));
    json_decref(body);
    json_decref(ans);
    return st;
}
