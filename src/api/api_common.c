/* api_common: pieces shared by the Ollama and OpenAI APIs (see api_common.h): waiting for events,
 * reading request bodies (the JSON repairs Go's decoder makes unnecessary), the per-request limits,
 * field lookup, the model listing and route tables. */
#include "api/api_common.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "config/config.h"

static _Atomic size_t limit_max_stop = CONFIG_DEFAULT_MAX_STOP;
static _Atomic size_t limit_max_tools = CONFIG_DEFAULT_MAX_TOOLS;

void api_set_limits(const api_limits *limits)
{
    atomic_store(&limit_max_stop, limits->max_stop ? limits->max_stop : CONFIG_DEFAULT_MAX_STOP);
    atomic_store(&limit_max_tools, limits->max_tools ? limits->max_tools : CONFIG_DEFAULT_MAX_TOOLS);
}

api_limits api_get_limits(void)
{
    return (api_limits){.max_stop = atomic_load(&limit_max_stop), .max_tools = atomic_load(&limit_max_tools)};
}

bool api_wait_event(const http_request *req, job *j, job_event *ev)
{
    for (;;) {
        if (job_next(j, ev, HTTP_STREAM_POLL_S)) {
            if (http_request_abandoned(req)) {
                job_event_free(ev);
                job_cancel(j);
                return false;
            }
            return true;
        }
        if (http_request_abandoned(req)) {
            job_cancel(j);
            return false;
        }
    }
}

/* The value of 4 hex digits at p (which has at least 4 bytes), or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

bool api_json_repair_escapes(const char *text, size_t len, strbuf *out)
{
    const char *end = text + len, *p = text;
    size_t copied = 0;
    bool changed = false;
    while (p < end && (p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p < 6 || p[1] != 'u') {
            p += 2; /* another escape (\\ included), or the text ends: the parser judges it */
            continue;
        }
        long cp = hex4(p + 2);
        size_t span = 6;
        bool replace = cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF); /* NUL, or a low surrogate alone */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long low = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
            if (low >= 0xDC00 && low <= 0xDFFF)
                span = 12; /* a pair: one character */
            else
                replace = true; /* a high surrogate alone; what follows is read on its own */
        }
        if (replace) {
            if (!changed)
                sb_reserve(out, len);
            changed = true;
            sb_append(out, text + copied, (size_t)(p - text) - copied);
            sb_append(out, "\\uFFFD", 6);
            copied = (size_t)(p - text) + 6;
        }
        p += cp < 0 ? 2 : span;
    }
    if (changed)
        sb_append(out, text + copied, len - copied);
    return changed;
}

json_t *api_load_json_text(const char *text, size_t len, size_t flags, json_error_t *err)
{
    strbuf escaped = {0}, clean = {0};
    if (api_json_repair_escapes(text, len, &escaped)) {
        text = escaped.data;
        len = escaped.len;
    }
    if (!utf8_is_valid(text, len)) {
        utf8_append_lossy(&clean, text, len);
        text = clean.data ? clean.data : "";
        len = clean.len;
    }
    json_t *v = json_loadb(text, len, flags, err);
    sb_free(&escaped);
    sb_free(&clean);
    return v;
}

json_t *api_read_body(const http_request *req, size_t flags, api_body_status *status, json_error_t *err)
{
    size_t start = 0, len = req->body_len;
    while (start < len && isspace((unsigned char)req->body[start]))
        start++;
    if (start == len) {
        *status = API_BODY_BLANK;
        return NULL;
    }
    size_t text_len = len - start;
    json_t *v = api_load_json_text(req->body + start, text_len, flags, err);
    if (v)
        *status = API_BODY_OK;
    else
        *status = (size_t)err->position >= text_len ? API_BODY_TRUNCATED : API_BODY_INVALID;
    return v;
}

json_t *api_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

void api_gen_options_free(gen_options *o)
{
    for (size_t i = 0; i < o->n_stop; i++)
        free(o->stop[i]);
    free(o->stop);
    o->stop = NULL;
    o->n_stop = 0;
}

/* qsort: newest modified first. */
static int api_by_modified_desc(const void *a, const void *b)
{
    const model_manifest *x = *(const model_manifest *const *)a, *y = *(const model_manifest *const *)b;
    return (x->modified < y->modified) - (x->modified > y->modified);
}

json_t *api_model_list(const model_registry *models, json_t *(*entry)(const model_manifest *m))
{
    model_registry_refresh(models); /* a manifest written since the last look joins now */
    size_t n = models ? models->n : 0;
    const model_manifest **sorted = xcalloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &models->models[i];
    qsort(sorted, n, sizeof *sorted, api_by_modified_desc);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, entry(sorted[i]));
    free(sorted);
    return list;
}

size_t api_copy_routes(const http_route *table, size_t n, http_route *routes, size_t max)
{
    if (n > max)
        n = max;
    memcpy(routes, table, n * sizeof *table);
    return n;
}
