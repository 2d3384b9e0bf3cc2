/* vendor_package_model: what an AXERA model package says about its model, for `axllama import` (see
 * vendor_package.h): the tokenizer and its chat template (recognised as the Qwen3 or the Qwen2.5
 * one, or compatibility mode), the context geometry from the README's runtime log, the quantization
 * from the README, the name and the parameter size from the folder's name. */
#include "models/vendor_package.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/manifest.h"
#include "models/vendor_package_internal.h"
#include "tokenizer/tokenizer.h"

#define VP_DEFAULT_MAX_PREFILL 2048
#define VP_DEFAULT_MAX_POSITIONS 2559
#define VP_CONFIG_MAX_BYTES (8u << 20)

/* ------------------------------------------------------------------------------- template, geometry, name, size */

static bool contains_all(const char *s, const char *const *needles)
{
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(s, needles[i]))
            return false;
    return true;
}

static bool contains_any(const char *s, const char *const *needles)
{
    for (size_t i = 0; needles[i]; i++)
        if (strstr(s, needles[i]))
            return true;
    return false;
}

bool vp_template_family(const char *t, chat_template_family *out)
{
    static const char *const chatml[] = {"<|im_start|>", "<|im_end|>", NULL};
    static const char *const qwen3[] = {"enable_thinking", "reasoning_content", "<think>", "<tool_call>", NULL};
    static const char *const qwen25[] = {CHAT_DEFAULT_SYSTEM_PROMPT, "<tool_call>", NULL};
    static const char *const thinking[] = {"enable_thinking", "<think>", "reasoning_content", NULL};
    if (!t || !contains_all(t, chatml))
        return false;
    if (contains_all(t, qwen3)) {
        *out = CHAT_TEMPLATE_QWEN3;
        return true;
    }
    if (contains_all(t, qwen25) && !contains_any(t, thinking)) {
        *out = CHAT_TEMPLATE_QWEN25;
        return true;
    }
    return false;
}

const char *vp_template_name(chat_template_family f)
{
    return f == CHAT_TEMPLATE_QWEN25 ? "qwen2.5" : "qwen3";
}

/* The number after "key" and spaces, ':' and spaces, at each occurrence; the largest (0: none). */
static int largest_value_after(const char *text, const char *key)
{
    int best = 0;
    size_t klen = strlen(key);
    for (const char *p = strstr(text, key); p; p = strstr(p + klen, key)) {
        const char *q = p + klen;
        while (*q == ' ')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ')
            q++;
        long v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*q) && digits < 9) {
            v = v * 10 + (*q++ - '0');
            digits++;
        }
        if (digits && v > best)
            best = (int)v;
    }
    return best;
}

void vp_readme_geometry(const char *text, int *max_positions, int *max_prefill)
{
    *max_positions = largest_value_after(text, "max_token_len");
    *max_prefill = largest_value_after(text, "prefill_max_token_num");
}

static bool name_char_ok(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* Where a "-<number>b" part starts in s (the size), or NULL. */
static const char *size_part(const char *s)
{
    for (const char *p = strchr(s, '-'); p; p = strchr(p + 1, '-')) {
        const char *q = p + 1;
        if (!isdigit((unsigned char)*q))
            continue;
        while (isdigit((unsigned char)*q) || *q == '.')
            q++;
        if ((*q == 'b' || *q == 'B' || *q == 'm' || *q == 'M') && (q[1] == '\0' || q[1] == '-' || q[1] == '_'))
            return p;
    }
    return NULL;
}

bool vp_default_name(const char *base, char *out, size_t outlen)
{
    strbuf s = {0};
    for (const char *p = base; *p; p++) {
        unsigned char c = (unsigned char)*p;
        sb_putc(&s, name_char_ok(c) ? (char)tolower(c) : '-');
    }
    if (!s.data) {
        sb_free(&s);
        return false;
    }
    const char *size = size_part(s.data);
    strbuf name = {0};
    if (size && size > s.data) {
        sb_append(&name, s.data, (size_t)(size - s.data));
        sb_printf(&name, ":%s", size + 1);
    } else {
        sb_puts(&name, s.data);
    }
    bool ok = model_name_normalize(name.data, out, outlen);
    sb_free(&s);
    sb_free(&name);
    return ok;
}

/* "4.0B" from a folder name with a "-4B" part; "" without one. */
char *vp_parameter_size_of(const char *base)
{
    const char *p = size_part(base);
    if (!p || !strchr("bB", p[1 + strspn(p + 1, "0123456789.")]))
        return xstrdup("");
    double v = strtod(p + 1, NULL);
    strbuf sb = {0};
    sb_printf(&sb, "%.1fB", v);
    return sb_steal(&sb);
}

/* "W8A16" from the first "w8a16"-like word of a README; "" without one. */
char *vp_quantization_of(const char *text)
{
    for (const char *p = text; p && *p; p++) {
        if ((*p != 'w' && *p != 'W') || (p > text && isalnum((unsigned char)p[-1])))
            continue;
        const char *q = p + 1;
        size_t d1 = strspn(q, "0123456789");
        if (!d1 || d1 > 2 || (q[d1] != 'a' && q[d1] != 'A'))
            continue;
        size_t d2 = strspn(q + d1 + 1, "0123456789");
        if (!d2 || d2 > 2 || isalnum((unsigned char)q[d1 + 1 + d2]))
            continue;
        strbuf sb = {0};
        sb_printf(&sb, "W%.*sA%.*s", (int)d1, q, (int)d2, q + d1 + 1);
        return sb_steal(&sb);
    }
    return xstrdup("");
}

/* ------------------------------------------------------------------------------------ tokenizer and template */

/* tokenizer_config.json's chat_template (a string, or the "default" of a list of named ones), else
 * the folder's chat_template.jinja; NULL when there is none. */
static char *read_chat_template(const char *tokenizer_dir)
{
    char *path = vp_path_join(tokenizer_dir, "tokenizer_config.json");
    char *text = vp_read_small_file(path, VP_CONFIG_MAX_BYTES, NULL);
    free(path);
    json_t *config = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *t = json_object_get(config, "chat_template");
    char *out = NULL;
    if (json_is_string(t)) {
        out = xstrdup(json_string_value(t));
    } else if (json_is_array(t)) {
        size_t i;
        json_t *entry;
        json_array_foreach(t, i, entry)
        {
            const char *name = json_string_value(json_object_get(entry, "name"));
            const char *tmpl = json_string_value(json_object_get(entry, "template"));
            if (tmpl && name && !strcmp(name, "default"))
                out = xstrdup(tmpl);
        }
    }
    json_decref(config);
    if (!out) {
        char *jinja = vp_path_join(tokenizer_dir, "chat_template.jinja");
        out = vp_read_small_file(jinja, VP_CONFIG_MAX_BYTES, NULL);
        free(jinja);
    }
    return out;
}

static void compat_advice(const vp_import *imp, const char *upstream, strbuf *err)
{
    if (upstream)
        sb_printf(err,
                  "\nCompatibility mode can serve this model: the vendor's tokenizer service (%s in the package) "
                  "renders the template, and axllama forwards the runtime's calls to it. `axllama import %s --compat` "
                  "writes such a manifest (docs/models.md, \"Compatibility mode\"; the script needs python3 with "
                  "transformers).",
                  upstream, imp->dir);
    else
        sb_puts(err, "\nCompatibility mode can serve this model with a tokenizer service that renders the template "
                     "(the package has no *_tokenizer_uid.py): add a \"tokenizer_upstream\" key to the manifest "
                     "(docs/models.md, \"Compatibility mode\").");
    sb_puts(err, "\nIf the template is a variant of the Qwen3 or the Qwen2.5 one, --template qwen3|qwen2.5 imports it "
                 "with axllama's own rendering of that template.");
}

bool vp_check_tokenizer_and_template(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err)
{
    char msg[512] = "";
    tokenizer *tok = tokenizer_load(imp->tokenizer_dir, msg, sizeof msg);
    if (!tok) {
        sb_printf(err,
                  "the tokenizer in %s is not one axllama can read: %s\naxllama reads Hugging Face byte-level BPE "
                  "tokenizers (the Qwen2, Qwen2.5 and Qwen3 kind). Compatibility mode cannot serve this model "
                  "either: there the vendor's tokenizer service prepares the prompts, but axllama still decodes the "
                  "generated tokens with this tokenizer (docs/models.md, \"Compatibility mode\").",
                  imp->tokenizer_dir, msg);
        return false;
    }
    tokenizer_free(tok);

    const char *upstream = vp_find_upstream_script(l);
    if (opt->compat) {
        if (!upstream) {
            sb_printf(err,
                      "--compat needs the vendor's tokenizer service (a *_tokenizer_uid.py script) in %s, and "
                      "there is none",
                      imp->dir);
            return false;
        }
        imp->upstream_script = xstrdup(upstream);
    }
    if (opt->template_name) {
        if (!strcmp(opt->template_name, "qwen3")) {
            imp->family = CHAT_TEMPLATE_QWEN3;
        } else if (!strcmp(opt->template_name, "qwen2.5")) {
            imp->family = CHAT_TEMPLATE_QWEN25;
        } else {
            sb_printf(err, "--template %s: axllama knows the templates qwen3 and qwen2.5", opt->template_name);
            return false;
        }
        imp->family_forced = true;
    } else {
        char *tmpl = read_chat_template(imp->tokenizer_dir);
        bool known = vp_template_family(tmpl, &imp->family);
        if (!known && !opt->compat) {
            if (tmpl)
                sb_printf(err,
                          "the chat template in %s/tokenizer_config.json is not one axllama renders (it renders "
                          "the Qwen3 and the Qwen2.5 templates, byte for byte).",
                          imp->tokenizer_dir);
            else
                sb_printf(err,
                          "the tokenizer in %s has no chat template (no chat_template in tokenizer_config.json, "
                          "no chat_template.jinja), so axllama cannot tell how to write the prompts.",
                          imp->tokenizer_dir);
            compat_advice(imp, upstream, err);
        }
        free(tmpl);
        if (!known && !opt->compat)
            return false;
        if (!known)
            imp->family = CHAT_TEMPLATE_QWEN3; /* compatibility mode: the upstream renders */
    }
    imp->thinking = imp->family == CHAT_TEMPLATE_QWEN3;
    return true;
}

bool vp_settle_geometry(const vp_options *opt, vp_import *imp, const char *readme, strbuf *err)
{
    int positions = 0, prefill = 0;
    if (readme)
        vp_readme_geometry(readme, &positions, &prefill);
    imp->geometry_from_readme = positions > 0 || prefill > 0;
    if (!positions)
        positions = prefill > VP_DEFAULT_MAX_POSITIONS ? prefill : VP_DEFAULT_MAX_POSITIONS;
    if (!prefill)
        prefill = positions < VP_DEFAULT_MAX_PREFILL ? positions : VP_DEFAULT_MAX_PREFILL;
    if (opt->max_positions > 0)
        positions = opt->max_positions;
    if (opt->max_prefill > 0)
        prefill = opt->max_prefill;
    if (prefill > positions) {
        if (opt->max_prefill > 0 || opt->max_positions > 0)
            sb_printf(err,
                      "the largest prefill (%d) is more than the context's positions (%d); check --max-prefill "
                      "and --max-positions",
                      prefill, positions);
        else
            sb_printf(err,
                      "the README's geometry makes no sense: prefill_max_token_num %d is more than "
                      "max_token_len %d; give --max-prefill and --max-positions",
                      prefill, positions);
        return false;
    }
    imp->max_positions = positions;
    imp->max_prefill = prefill;
    return true;
}

bool vp_settle_name(const vp_options *opt, vp_import *imp, strbuf *err)
{
    char name[MODEL_NAME_DISPLAY_MAX];
    if (opt->name) {
        if (!model_name_normalize(opt->name, name, sizeof name)) {
            sb_printf(err,
                      "\"%s\" is not a valid model name (Ollama's rules: [namespace/]model[:tag], letters, "
                      "digits, '_', '-' and '.'; docs/models.md)",
                      opt->name);
            return false;
        }
    } else if (!vp_default_name(vp_base_name(imp->dir), name, sizeof name)) {
        sb_printf(err, "no model name can be made of the folder's name \"%s\"; give one: axllama import %s NAME",
                  vp_base_name(imp->dir), imp->dir);
        return false;
    }
    imp->name = xstrdup(name);
    return true;
}
