/* driver: libcurl calls to the runtime's /api endpoints. See driver.h. */
#include "engine/driver.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
    sb_append(user, data, size * n);
    return size * n;
}

/* One call; body NULL = GET. The answer's body goes to resp. */
static drv_status call(const rt_driver *d, const char *path, const char *body, strbuf *resp)
{
    pthread_once(&curl_once, init_curl);
    CURL *c = curl_easy_init();
    if (!c)
        return DRV_DOWN;
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", d->port, path);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    long ms = (long)(d->timeout_s * 1000);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 5000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms > 0 ? ms : 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    if (body) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    drv_status st = DRV_DOWN;
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK) {
        if (code == 200)
            st = DRV_OK;
        else if (code == 400 && resp->data && strstr(resp->data, "llm is running"))
            st = DRV_BUSY;
        else
            st = DRV_REJECTED;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return st;
}

drv_status driver_reset(const rt_driver *d, const char *system_prompt)
{
    json_t *body = json_object();
    if (system_prompt)
        json_object_set_new(body, "system_prompt", json_string(system_prompt));
    char *text = json_dumps(body, JSON_COMPACT);
    strbuf resp = {0};
    drv_status st = call(d, "/api/reset", text, &resp);
    free(text);
    json_decref(body);
    sb_free(&resp);
    return st;
}

drv_status driver_generate(const rt_driver *d, const char *prompt, const drv_sampling *s)
{
    json_t *body = json_pack("{s:s}", "prompt", prompt);
    /* the runtime applies them in this order: temperature, repetition_penalty, top-p, top-k */
    if (s && s->has_temperature)
        json_object_set_new(body, "temperature", json_real(s->temperature));
    if (s && s->has_repetition_penalty)
        json_object_set_new(body, "repetition_penalty", json_real(s->repetition_penalty));
    if (s && s->has_top_p)
        json_object_set_new(body, "top-p", json_real(s->top_p));
    if (s && s->has_top_k)
        json_object_set_new(body, "top-k", json_integer(s->top_k));
    char *text = json_dumps(body, JSON_COMPACT);
    strbuf resp = {0};
    drv_status st = call(d, "/api/generate", text, &resp);
    free(text);
    json_decref(body);
    sb_free(&resp);
    return st;
}

drv_status driver_poll(const rt_driver *d, strbuf *text, bool *done)
{
    strbuf resp = {0};
    drv_status st = call(d, "/api/generate_provider", NULL, &resp);
    if (st == DRV_OK) {
        json_t *ans = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
        json_t *r = json_object_get(ans, "response"), *dn = json_object_get(ans, "done");
        if (json_is_string(r) && json_is_boolean(dn)) {
            sb_append(text, json_string_value(r), json_string_length(r));
            *done = json_is_true(dn);
        } else {
            st = DRV_REJECTED;
        }
        json_decref(ans);
    }
    sb_free(&resp);
    return st;
}

drv_status driver_stop(const rt_driver *d)
{
    strbuf resp = {0};
    drv_status st = call(d, "/api/stop", NULL, &resp);
    sb_free(&resp);
    return st;
}
