/* api_common: pieces shared by the Ollama and OpenAI APIs (see api_common.h). */
#include "api/api_common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"

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

json_t *api_read_body(const http_request *req, size_t flags, api_body_status *status, json_error_t *err)
{
    size_t start = 0, len = req->body_len;
    while (start < len && isspace((unsigned char)req->body[start]))
        start++;
    if (start == len) {
        *status = API_BODY_BLANK;
        return NULL;
    }
    const char *text = req->body + start;
    size_t text_len = len - start;
    json_t *v;
    if (utf8_is_valid(text, text_len)) {
        v = json_loadb(text, text_len, flags, err);
    } else {
        strbuf clean = {0};
        utf8_append_lossy(&clean, text, text_len);
        v = json_loadb(clean.data ? clean.data : "", clean.len, flags, err);
        sb_free(&clean);
    }
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
