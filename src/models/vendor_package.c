/* vendor_package: reading an AXERA model package for `axllama import` (see vendor_package.h): the
 * runtimes and the one for the machine, the inspection step by step (the folder and its files are
 * vendor_package_files.c, the tokenizer, template, geometry and name vendor_package_model.c), and the
 * manifest made of it all. */
#include "models/vendor_package.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/vendor_package_internal.h"

#define VP_DEFAULT_PORT 8000
#define VP_AXCL_LOAD_TIMEOUT_S 300
#define VP_AXCL_LIBRARY_PATH "/usr/lib/axcl"
#define VP_README_MAX_BYTES (4u << 20)
#define VP_UPSTREAM_PORT 12345

/* ------------------------------------------------------------------------------------ runtimes */

static const struct {
    const char *name, *binary, *script_key, *what;
} runtimes[VP_RUNTIME_COUNT] = {
    [VP_RUNTIME_AX650] = {"ax650", "main_api_ax650", "ax650", "the native AX650 build"},
    [VP_RUNTIME_AXCL_AARCH64] = {"axcl_aarch64", "main_api_axcl_aarch64", "axcl_aarch64",
                                 "the AXCL build for arm64 hosts"},
    [VP_RUNTIME_AXCL_X86] = {"axcl_x86", "main_api_axcl_x86", "axcl_x86", "the AXCL build for x86_64 hosts"},
};

const char *vp_runtime_name(vp_runtime r)
{
    return runtimes[r].name;
}

const char *vp_runtime_binary(vp_runtime r)
{
    return runtimes[r].binary;
}

bool vp_runtime_parse(const char *s, vp_runtime *out)
{
    for (int i = 0; i < VP_RUNTIME_COUNT; i++)
        if (!strcmp(s, runtimes[i].name) || !strcmp(s, runtimes[i].binary)) {
            *out = (vp_runtime)i;
            return true;
        }
    return false;
}

const char *vp_runtime_script_key(vp_runtime r)
{
    return runtimes[r].script_key;
}

const char *vp_runtime_description(vp_runtime r)
{
    return runtimes[r].what;
}

bool vp_machine_is_x86_64(const char *m)
{
    return !strcmp(m, "x86_64") || !strcmp(m, "amd64");
}

bool vp_machine_is_aarch64(const char *m)
{
    return !strcmp(m, "aarch64") || !strcmp(m, "arm64");
}

bool vp_runtime_for_machine(const char *machine, bool axcl_driver, vp_runtime *out)
{
    if (vp_machine_is_x86_64(machine)) {
        *out = VP_RUNTIME_AXCL_X86;
        return true;
    }
    if (vp_machine_is_aarch64(machine)) {
        *out = axcl_driver ? VP_RUNTIME_AXCL_AARCH64 : VP_RUNTIME_AX650;
        return true;
    }
    return false;
}

static bool runtime_is_axcl(vp_runtime r)
{
    return r != VP_RUNTIME_AX650;
}

/* ------------------------------------------------------------------------------------ inspection */

bool vendor_package_inspect(const vp_options *opt, vp_import *imp, strbuf *err)
{
    memset(imp, 0, sizeof *imp);
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(opt->dir, real) || stat(real, &st) != 0) {
        sb_printf(err, "cannot open %s: %s", opt->dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        sb_printf(err, "%s is not a directory (give the model package's folder)", opt->dir);
        return false;
    }
    imp->dir = xstrdup(real);
    imp->port = opt->port > 0 ? opt->port : VP_DEFAULT_PORT;
    dir_listing l = {0};
    if (!vp_list_dir(imp->dir, &l)) {
        sb_printf(err, "cannot read %s: %s", imp->dir, strerror(errno));
        vp_import_free(imp);
        return false;
    }
    bool ok = vp_find_binary(opt, &l, imp, err);
    if (ok) {
        const char *script = vp_find_script(&l, imp->runtime, &imp->script_other);
        if (!script) {
            sb_printf(err,
                      "%s has no run_*.sh script, so the runtime's flags (the model files, the layer count, the "
                      "embedding size) are unknown",
                      imp->dir);
            ok = false;
        } else {
            imp->script = xstrdup(script);
            ok = vp_read_script_flags(imp, script, err);
        }
    }
    ok = ok && vp_find_tokenizer(opt, &l, imp, err) && vp_check_files(opt, imp, err) &&
         vp_check_tokenizer_and_template(opt, &l, imp, err);
    char *readme = NULL;
    if (ok) {
        char *path = vp_path_join(imp->dir, "README.md");
        readme = vp_read_small_file(path, VP_README_MAX_BYTES, NULL);
        free(path);
        ok = vp_settle_geometry(opt, imp, readme, err) && vp_settle_name(opt, imp, err);
    }
    if (ok) {
        imp->parameter_size = vp_parameter_size_of(vp_base_name(imp->dir));
        imp->quantization = vp_quantization_of(readme ? readme : "");
    }
    free(readme);
    vp_dir_listing_free(&l);
    if (!ok)
        vp_import_free(imp);
    return ok;
}

void vp_import_free(vp_import *imp)
{
    free(imp->dir);
    free(imp->binary);
    free(imp->script);
    rs_flags_free(&imp->flags);
    free(imp->tokenizer_dir);
    free(imp->name);
    free(imp->parameter_size);
    free(imp->quantization);
    free(imp->upstream_script);
    memset(imp, 0, sizeof *imp);
}

/* ------------------------------------------------------------------------------------ the manifest */

static json_t *string_array(const rs_words *w)
{
    json_t *a = json_array();
    for (size_t i = 0; i < w->n; i++)
        json_array_append_new(a, json_string(w->v[i]));
    return a;
}

json_t *vendor_package_manifest(const vp_import *imp)
{
    json_t *m = json_object();
    json_object_set_new(m, "name", json_string(imp->name));

    json_t *rt = json_object();
    json_object_set_new(rt, "binary", json_string(imp->binary));
    json_object_set_new(rt, "args", string_array(&imp->flags.args));
    json_object_set_new(rt, "workdir", json_string(imp->dir));
    json_object_set_new(rt, "port", json_integer(imp->port));
    if (runtime_is_axcl(imp->runtime)) {
        json_object_set_new(rt, "devices", json_string("auto"));
        json_object_set_new(rt, "load_timeout", json_integer(VP_AXCL_LOAD_TIMEOUT_S));
        json_t *env = json_object();
        json_object_set_new(env, "LD_LIBRARY_PATH", json_string(VP_AXCL_LIBRARY_PATH));
        json_object_set_new(rt, "env", env);
    }
    json_object_set_new(m, "runtime", rt);

    json_object_set_new(m, "tokenizer", json_string(imp->tokenizer_dir));
    json_object_set_new(m, "tokenizer_port", json_integer(0));
    json_object_set_new(m, "template", json_string(vp_template_name(imp->family)));
    json_t *ctx = json_object();
    json_object_set_new(ctx, "max_prefill", json_integer(imp->max_prefill));
    json_object_set_new(ctx, "max_positions", json_integer(imp->max_positions));
    json_object_set_new(m, "context", ctx);
    if (imp->flags.system_prompt && imp->flags.system_prompt[0])
        json_object_set_new(m, "system_prompt", json_string(imp->flags.system_prompt));
    json_object_set_new(m, "thinking", json_boolean(imp->thinking));

    json_t *details = json_object();
    json_object_set_new(details, "family", json_string(imp->family == CHAT_TEMPLATE_QWEN25 ? "qwen2" : "qwen3"));
    json_object_set_new(details, "parameter_size", json_string(imp->parameter_size ? imp->parameter_size : ""));
    json_object_set_new(details, "quantization_level", json_string(imp->quantization ? imp->quantization : ""));
    json_object_set_new(details, "format", json_string("axmodel"));
    json_object_set_new(m, "details", details);
    json_object_set_new(m, "size", json_integer((json_int_t)imp->size));

    if (imp->upstream_script) {
        json_t *up = json_object();
        strbuf url = {0};
        sb_printf(&url, "http://127.0.0.1:%d", VP_UPSTREAM_PORT);
        json_object_set_new(up, "url", json_string(url.data));
        sb_free(&url);
        json_t *cmd = json_array();
        char port[16];
        snprintf(port, sizeof port, "%d", VP_UPSTREAM_PORT);
        const char *words[] = {"python3", imp->upstream_script, "--host", "127.0.0.1", "--port", port};
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            json_array_append_new(cmd, json_string(words[i]));
        json_object_set_new(up, "command", cmd);
        json_object_set_new(up, "workdir", json_string(imp->dir));
        json_object_set_new(m, "tokenizer_upstream", up);
    }
    return m;
}

void vp_manifest_file_name(const char *name, char *out, size_t outlen)
{
    strbuf sb = {0};
    for (const char *p = name; *p; p++)
        sb_putc(&sb, *p == '/' || *p == ':' ? '-' : *p);
    sb_puts(&sb, ".json");
    snprintf(out, outlen, "%s", sb.data);
    sb_free(&sb);
}
