/* ollama_models: the native endpoints about models (see ollama.h): /api/tags (the registry, newest
 * first), /api/show (details, model_info, capabilities, parameters, template, system) and /api/ps
 * (what the engine has loaded, with axllama's own state/progress object). */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_common.h"
#include "api/ollama_internal.h"
#include "common/buf.h"
#include "common/clock.h"

/* /api/ps lists at most this many models (the engine holds one at a time). */
#define OLLAMA_PS_MAX 16

/* Go's time.Duration max (math.MaxInt64 ns) in seconds: Ollama's "forever" keep_alive. */
#define OLLAMA_FOREVER_S 9223372036LL

/* What /api/show reports as the template: an informational Go-template rendition of the ChatML
 * layout. axllama renders prompts with the model family's real chat template in C
 * (tokenizer/chat_template.c); a request's `template` override is not supported. */
static const char OLLAMA_SHOW_TEMPLATE[] = "{{- if .System }}<|im_start|>system\n"
                                           "{{ .System }}<|im_end|>\n"
                                           "{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}\n"
                                           "{{ .Content }}<|im_end|>\n"
                                           "{{ end }}<|im_start|>assistant\n";

/* The `tools` capability: the model's chat template renders tool definitions and the model was
 * trained to answer with <tool_call> blocks. Decided from the manifest's template family: Qwen3
 * (its template is the one the tool-call format and tests are built on). */
bool ollama_model_supports_tools(const model_manifest *m)
{
    return m->template_family == CHAT_TEMPLATE_QWEN3;
}

/* "2024-06-04T14:38:31+02:00": local time with its numeric offset (modified_at, expires_at). */
static void ollama_rfc3339_local(time_t t, char *out, size_t n)
{
    struct tm tm;
    if (!localtime_r(&t, &tm)) { /* out of the calendar's range: the epoch rather than garbage */
        time_t zero = 0;
        gmtime_r(&zero, &tm);
    }
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out + k, n - k, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
}

static const char *ollama_architecture(const model_manifest *m)
{
    if (m->family && *m->family)
        return m->family;
    return m->template_family == CHAT_TEMPLATE_QWEN25 ? "qwen2" : "qwen3";
}

static const char *ollama_or_empty(const char *s)
{
    return s ? s : "";
}

static json_t *ollama_model_details(const model_manifest *m)
{
    json_t *d = json_object();
    json_object_set_new(d, "parent_model", json_string(""));
    json_object_set_new(d, "format", http_json_string(m->format && *m->format ? m->format : "axmodel"));
    json_object_set_new(d, "family", http_json_string(ollama_architecture(m)));
    json_t *families = json_array();
    json_array_append_new(families, http_json_string(ollama_architecture(m)));
    json_object_set_new(d, "families", families);
    json_object_set_new(d, "parameter_size", http_json_string(ollama_or_empty(m->parameter_size)));
    json_object_set_new(d, "quantization_level", http_json_string(ollama_or_empty(m->quantization_level)));
    return d;
}

static json_int_t ollama_size_value(uint64_t size)
{
    return size > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)size;
}

/* {"models": models} with 200. */
static http_response *ollama_models_reply(json_t *models)
{
    json_t *root = json_object();
    json_object_set_new(root, "models", models);
    http_response *resp = http_response_json(OLLAMA_STATUS_OK, root);
    json_decref(root);
    return resp;
}

/* ------------------------------------------------------------------------------------ tags */

static json_t *ollama_tags_entry(const model_manifest *m)
{
    char modified[64];
    ollama_rfc3339_local(m->modified, modified, sizeof modified);
    json_t *o = json_object();
    json_object_set_new(o, "name", http_json_string(m->name));
    json_object_set_new(o, "model", http_json_string(m->name));
    json_object_set_new(o, "modified_at", json_string(modified));
    json_object_set_new(o, "size", json_integer(ollama_size_value(m->size)));
    json_object_set_new(o, "digest", json_string(m->digest));
    json_object_set_new(o, "details", ollama_model_details(m));
    return o;
}

http_response *ollama_handle_tags(const http_request *req, void *user)
{
    (void)req;
    const ollama_api *api = user;
    return ollama_models_reply(api_model_list(api->models, ollama_tags_entry));
}

/* ------------------------------------------------------------------------------------ show */

/* "4.0B" -> 4000000000; 0 when it does not parse. */
static long long ollama_parameter_count(const char *size)
{
    if (!size || !*size)
        return 0;
    char *end;
    double v = strtod(size, &end);
    if (end == size || v <= 0)
        return 0;
    double scale = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': scale = 1e3; break;
    case 'M': scale = 1e6; break;
    case 'B': scale = 1e9; break;
    case 'T': scale = 1e12; break;
    case '\0': break;
    default: return 0;
    }
    return llround(v * scale);
}

static void ollama_append_parameter(strbuf *params, strbuf *modelfile, const char *key, const char *value)
{
    if (params->len)
        sb_putc(params, '\n');
    sb_printf(params, "%-30s %s", key, value); /* Ollama's "%-*s %#v" with width 30 */
    sb_printf(modelfile, "PARAMETER %s %s\n", key, value);
}

/* The informational Modelfile and the "parameters" text: the manifest's sampler defaults. */
static void ollama_show_modelfile(const model_manifest *m, strbuf *modelfile, strbuf *params)
{
    sb_printf(modelfile, "# Modelfile generated by axllama (informational: models are defined by manifests)\n");
    if (m->path)
        sb_printf(modelfile, "# manifest: %s\n", m->path);
    sb_printf(modelfile, "FROM %s\nTEMPLATE \"\"\"%s\"\"\"\n", m->name, OLLAMA_SHOW_TEMPLATE);
    if (m->system_prompt && *m->system_prompt)
        sb_printf(modelfile, "SYSTEM \"\"\"%s\"\"\"\n", m->system_prompt);
    char num[64];
    if (m->has_temperature) {
        snprintf(num, sizeof num, "%g", m->temperature);
        ollama_append_parameter(params, modelfile, "temperature", num);
    }
    if (m->has_top_k) {
        snprintf(num, sizeof num, "%d", m->top_k);
        ollama_append_parameter(params, modelfile, "top_k", num);
    }
    if (m->has_top_p) {
        snprintf(num, sizeof num, "%g", m->top_p);
        ollama_append_parameter(params, modelfile, "top_p", num);
    }
    if (m->has_repeat_penalty) {
        snprintf(num, sizeof num, "%g", m->repeat_penalty);
        ollama_append_parameter(params, modelfile, "repeat_penalty", num);
    }
}

/* model_info: always present (several clients crash without it); Copilot reads the context
 * window as model_info[architecture + ".context_length"] and the display name from
 * general.basename. */
static json_t *ollama_show_model_info(const model_manifest *m)
{
    const char *arch = ollama_architecture(m);
    json_t *info = json_object();
    json_object_set_new(info, "general.architecture", http_json_string(arch));
    const char *base = strrchr(m->name, '/');
    base = base ? base + 1 : m->name;
    const char *colon = strchr(base, ':');
    json_object_set_new(info, "general.basename", json_stringn(base, colon ? (size_t)(colon - base) : strlen(base)));
    long long count = ollama_parameter_count(m->parameter_size);
    if (count > 0)
        json_object_set_new(info, "general.parameter_count", json_integer(count));
    char key[256];
    snprintf(key, sizeof key, "%s.context_length", arch);
    json_object_set_new(info, key, json_integer(m->max_positions));
    json_object_set_new(info, "axllama.max_prefill", json_integer(m->max_prefill));
    return info;
}

/* Ollama's order: completion, tools, ..., thinking. */
static json_t *ollama_show_capabilities(const model_manifest *m)
{
    json_t *caps = json_array();
    json_array_append_new(caps, json_string("completion"));
    if (ollama_model_supports_tools(m))
        json_array_append_new(caps, json_string("tools"));
    if (m->thinking)
        json_array_append_new(caps, json_string("thinking"));
    return caps;
}

http_response *ollama_handle_show(const http_request *req, void *user)
{
    const ollama_api *api = user;
    const model_manifest *m;
    http_response *resp = ollama_decode_show_request(api, req, &m);
    if (resp)
        return resp;
    strbuf params = {0}, modelfile = {0};
    ollama_show_modelfile(m, &modelfile, &params);
    json_t *o = json_object();
    json_object_set_new(o, "modelfile", http_json_string(modelfile.data));
    if (params.len)
        json_object_set_new(o, "parameters", http_json_string(params.data));
    json_object_set_new(o, "template", json_string(OLLAMA_SHOW_TEMPLATE));
    if (m->system_prompt && *m->system_prompt)
        json_object_set_new(o, "system", http_json_string(m->system_prompt));
    json_object_set_new(o, "details", ollama_model_details(m));
    json_object_set_new(o, "model_info", ollama_show_model_info(m));
    json_object_set_new(o, "capabilities", ollama_show_capabilities(m));
    char modified[64];
    ollama_rfc3339_local(m->modified, modified, sizeof modified);
    json_object_set_new(o, "modified_at", json_string(modified));
    resp = http_response_json(OLLAMA_STATUS_OK, o);
    json_decref(o);
    sb_free(&params);
    sb_free(&modelfile);
    return resp;
}

/* ------------------------------------------------------------------------------------ ps */

typedef struct {
    const engine_loaded_model *model;
    time_t expires;
} ollama_ps_entry;

static int ollama_by_expiry_desc(const void *a, const void *b)
{
    const ollama_ps_entry *x = a, *y = b;
    return (x->expires < y->expires) - (x->expires > y->expires);
}

static json_t *ollama_ps_model(const ollama_api *api, const ollama_ps_entry *e)
{
    const engine_loaded_model *lm = e->model;
    const model_manifest *m = lm->manifest ? lm->manifest : model_registry_find(api->models, lm->name);
    char expires[64];
    ollama_rfc3339_local(e->expires, expires, sizeof expires);
    json_t *o = json_object();
    json_object_set_new(o, "name", http_json_string(lm->name));
    json_object_set_new(o, "model", http_json_string(lm->name));
    json_object_set_new(o, "size", json_integer(ollama_size_value(lm->size)));
    json_object_set_new(o, "digest", json_string(m ? m->digest : ""));
    if (m)
        json_object_set_new(o, "details", ollama_model_details(m));
    json_object_set_new(o, "expires_at", json_string(expires));
    json_object_set_new(o, "size_vram", json_integer(ollama_size_value(lm->size)));
    json_object_set_new(o, "context_length", json_integer(lm->context_length));
    /* axllama's own: the runtime's state, "k/N" while it loads, whether a request runs on it and how
     * many wait in the queue */
    json_t *ax = json_object();
    json_object_set_new(ax, "state", json_string(rt_state_name(lm->state)));
    json_object_set_new(ax, "running", json_boolean(lm->running));
    json_object_set_new(ax, "queued", json_integer((json_int_t)lm->queued));
    if (lm->state == RT_LOADING && lm->load_total > 0) {
        char progress[32];
        snprintf(progress, sizeof progress, "%d/%d", lm->load_step, lm->load_total);
        json_object_set_new(ax, "progress", json_string(progress));
    }
    json_object_set_new(o, "axllama", ax);
    return o;
}

http_response *ollama_handle_ps(const http_request *req, void *user)
{
    (void)req;
    const ollama_api *api = user;
    engine_loaded_model loaded[OLLAMA_PS_MAX];
    size_t n = engine_ps(api->engine, loaded, OLLAMA_PS_MAX);
    if (n > OLLAMA_PS_MAX)
        n = OLLAMA_PS_MAX;
    time_t now = (time_t)clock_wall();
    ollama_ps_entry entries[OLLAMA_PS_MAX];
    for (size_t i = 0; i < n; i++) {
        entries[i].model = &loaded[i];
        /* keep_alive < 0: Ollama's MaxInt64 ns, about 292 years ahead (the CLI shows "Forever") */
        entries[i].expires = loaded[i].forever ? now + (time_t)OLLAMA_FOREVER_S : loaded[i].expires_at;
    }
    qsort(entries, n, sizeof entries[0], ollama_by_expiry_desc); /* longest time left first */
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(models, ollama_ps_model(api, &entries[i]));
    return ollama_models_reply(models);
}
