/* manifest: the models axllama serves (the models module: manifest.c is the file format, registry.c
 * the directories and the built-in model, model_name.c Ollama's names). One small JSON file per
 * model (any *.json) in the models directories; the first directory that defines a name wins:
 *   1. the directory the caller names (`axllama serve --models DIR`, else AXLLAMA_MODELS, both read
 *      by the caller: this module reads no setting), if any: only that directory;
 *   2. otherwise the per-user $XDG_CONFIG_HOME/axllama/models (~/.config/axllama/models), then the
 *      system-wide /etc/axllama/models.
 * With no manifest at all, one built-in model is served: "qwen3-emu:latest", backed by axllama-emu
 * (fast profile) and the cached Qwen3 tokenizer data, so a fresh machine answers at once.
 *
 * Validation (model_manifest_load): JSON with duplicate keys, a wrong type or an out-of-range value
 * is an error naming the file and the key ("qwen3.json: \"runtime.port\": expected an integer from
 * 0 to 65535, got string"); an unknown key is a warning; JSON null for an optional key = not set.
 * Relative paths (runtime.binary, runtime.workdir, tokenizer) are resolved against the manifest's
 * directory, a leading "~/" against $HOME. docs/models.md has full examples.
 *
 * A manifest (every key but name/runtime.binary/tokenizer optional; defaults shown):
 * {
 *   "name": "qwen3:4b",                       Ollama-style name[:tag] (tag defaults to latest)
 *   "runtime": {
 *     "binary": "/opt/qwen3-4b/main_api_axcl_aarch64",   absolute, or relative to the manifest's dir
 *     "args": ["--template_filename_axmodel", "qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel", ...],
 *     "workdir": "/opt/qwen3-4b",             the runtime's CWD (post_config.json is read there)
 *     "port": 8000,                           where the runtime serves (the vendor binary: always 8000);
 *                                             0 = a free port picked at each start, written into
 *                                             the args wherever they say "{port}" (axllama-emu's
 *                                             --emu-port)
 *     "devices": "auto",                      AXCL only: "auto" asks axcl-smi; a list like "0" or
 *                                             "0,1"; absent: none (AX650 native binaries)
 *     "load_timeout": 300,                    seconds, 0 = no limit (absent: OLLAMA_LOAD_TIMEOUT)
 *     "env": {"LD_LIBRARY_PATH": "/usr/lib/axcl"}
 *   },
 *   "tokenizer": "/opt/qwen3-4b/qwen3_tokenizer",   dir with tokenizer.json + tokenizer_config.json
 *   "tokenizer_port": 12345,                  where axllama serves the tokenizer protocol to the runtime
 *                                             (0 = a free port; axllama always passes
 *                                             --url_tokenizer_model itself)
 *   "template": "qwen3",                      chat template family: qwen3 | qwen2.5
 *   "context": {"max_prefill": 2048, "max_positions": 2559},
 *   "system_prompt": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
 *   "thinking": true,                         the model can think (Qwen3: true)
 *   "think_default": false,                   think when a request does not say
 *   "parameters": {"temperature": 0.7, "top_k": 20, "top_p": 0.8, "repeat_penalty": 1.0},
 *                                             (absent: not set; temperature >= 0, top_k >= 0,
 *                                             0 <= top_p <= 1, repeat_penalty > 0)
 *   "details": {"family": "qwen3", "parameter_size": "4.0B", "quantization_level": "W8A16", "format": "axmodel"},
 *                                             (absent: family from the template, "" sizes, "axmodel")
 *   "size": 5100000000,                       bytes on the NPU, for /api/tags and /api/ps (absent: 0)
 *   "tokenizer_upstream": {                   absent: axllama's own tokenizer service (the normal mode)
 *     "url": "http://127.0.0.1:12345",        compatibility mode: an external tokenizer service (the
 *                                             vendor's qwen3_tokenizer_uid.py); axllama's service
 *                                             forwards the runtime's calls there and watches them
 *     "command": ["python3", "qwen3_tokenizer_uid.py", "--port", "12345"],
 *                                             optional: axllama starts it before the runtime and stops
 *                                             it with the model (url must then be 127.0.0.1:PORT)
 *     "workdir": "/opt/qwen3-4b",             the command's CWD (absent: the manifest's directory)
 *     "start_timeout": 60                     seconds until the url's port must answer (> 0)
 *   }
 * }
 * runtime.args must not contain --url_tokenizer_model or --devices (axllama adds both); with port 0
 * some argument must contain "{port}". think_default true needs thinking true; max_prefill <=
 * max_positions. */
#ifndef AXLLAMA_MODELS_MANIFEST_H
#define AXLLAMA_MODELS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tokenizer/chat_template.h"

typedef struct {
    char *name;      /* display form "model:tag" (the manifest's spelling) */
    char *path;      /* the manifest file; NULL for the built-in model */
    time_t modified; /* the manifest's mtime (built-in: the binary's) */
    char digest[65]; /* sha256 hex of the manifest text (built-in: of its description) */

    char *runtime_binary;
    char **runtime_args; /* NULL-terminated, never NULL; never contains --url_tokenizer_model or --devices */
    size_t n_runtime_args;
    char *runtime_workdir; /* absolute; a manifest's default is its own directory. NULL only for the
                              built-in model: inherit axllama's working directory */
    int runtime_port;      /* 0: pick a free one per start, substituted for "{port}" in the args */
    char *devices;         /* NULL, "auto" or a list */
    double load_timeout_s; /* 300 unless set; 0 = no limit */
    bool has_load_timeout; /* the manifest set it (then it wins over OLLAMA_LOAD_TIMEOUT) */
    char **env;            /* NULL-terminated "KEY=VALUE" list added to the runtime's environment;
                              never NULL (an empty list is just the terminator) */

    char *tokenizer_dir; /* absolute for manifests */
    int tokenizer_port;  /* 0: ephemeral */
    chat_template_family template_family;
    int max_prefill;
    int max_positions;
    char *system_prompt;
    bool thinking;
    bool think_default;

    /* default sampling; has_* false = not set */
    bool has_temperature, has_top_k, has_top_p, has_repeat_penalty;
    double temperature, top_p, repeat_penalty;
    int top_k;

    char *family, *parameter_size, *quantization_level, *format;
    uint64_t size;

    /* compatibility mode ("tokenizer_upstream"); upstream_url NULL = not set (the normal mode) */
    char *upstream_url;      /* "http://host:port", no trailing slash */
    int upstream_port;       /* the url's port (80 when it has none) */
    char **upstream_command; /* NULL-terminated, or NULL: nothing to start (the service runs already) */
    size_t n_upstream_command;
    char *upstream_workdir;          /* absolute: the command's CWD (default: the manifest's directory) */
    double upstream_start_timeout_s; /* 60 unless set */
} model_manifest;

typedef struct model_registry_watch model_registry_watch;

/* The models, in the order they were read. A loaded registry also watches its directories: a
 * manifest file added while the server runs (`axllama import`, an editor) joins the registry at the
 * next lookup that misses or the next listing (model_registry_refresh), so `axllama list` shows it
 * at once. Models only join: an entry never changes or moves while the registry lives (the engine
 * and the API keep pointers to them), so a changed or removed manifest takes effect at the next
 * start (a changed one is reported once). n is atomic: a refresh on one thread publishes a new entry
 * (written completely first) while others read; readers read n once and then models[0..n-1]. */
typedef struct {
    model_manifest *models; /* room for MODEL_REGISTRY_SPARE more than were loaded: never moves */
    _Atomic size_t n;
    model_registry_watch *watch; /* NULL: a fixed registry (one built by hand) */
} model_registry;

/* How many models may join a loaded registry before a restart. */
#define MODEL_REGISTRY_SPARE 64

/* Loads the registry from the directories above (models_dir: the one directory to read, NULL or ""
 * for the default ones). *.json files (not hidden ones) are read in byte order of their names; a
 * malformed manifest is skipped, a later definition of a name already seen (case-insensitive) is
 * ignored, a missing binary or tokenizer.json is reported but the model is kept; every problem is
 * one message (no trailing newline) to warn (may be NULL; it must stay valid while the registry
 * lives: refreshes report through it too, from any thread). A missing default directory is silent,
 * an unreadable explicit one is reported. The built-in model is added when no manifest was loaded;
 * it needs emu_binary (path of axllama-emu) and default_tokenizer_dir (else it is left out with a
 * message). Returns true when the registry holds at least one model. reg's old content is not
 * freed. */
bool model_registry_load(model_registry *reg, const char *models_dir, const char *emu_binary,
                         const char *default_tokenizer_dir, void (*warn)(void *user, const char *msg), void *user);
/* Adds the manifests that appeared in the registry's directories since it last looked (cheap when
 * nothing changed: one stat per directory). Thread-safe; a no-op for a fixed registry. Returns the
 * number of models added. */
size_t model_registry_refresh(const model_registry *reg);
void model_registry_free(model_registry *reg);

/* Parses one manifest file; false and a message naming the file and the key on error (m is then
 * left empty: model_manifest_free on it is harmless). Warnings are dropped. */
bool model_manifest_load(model_manifest *m, const char *path, char *err, size_t errlen);
/* The same, with each warning (unknown key, missing binary or tokenizer files) passed to warn. */
bool model_manifest_load_with_warnings(model_manifest *m, const char *path, void (*warn)(void *user, const char *msg),
                                       void *user, char *err, size_t errlen);
void model_manifest_free(model_manifest *m);

/* The built-in model "qwen3-emu:latest": emu_binary (axllama-emu, fast profile, a free port) with
 * the tokenizer data of tokenizer_dir, the qwen3 template and the defaults; its digest is stable
 * (the sha256 of its description), its modification time the binary's. Free with
 * model_manifest_free. */
void model_manifest_builtin(model_manifest *m, const char *emu_binary, const char *tokenizer_dir);

/* Ollama's name rules: [host/][namespace/]model[:tag], default tag latest, default host
 * registry.ollama.ai and namespace library left out of the display form; case-insensitive lookup.
 * Each part starts with a letter, digit or '_', then letters, digits, '_', '-', '.' (no '.' in the
 * namespace; the host may also hold ':'), 1..80 bytes (host 1..350); a "scheme://" before the host
 * is dropped; digests ("@sha256:...") are not supported (invalid).
 * Writes the display form ("qwen3:latest", "user/model:tag", "hf.co/org/repo:Q4_K_M"); false if the
 * name is invalid or the display form does not fit in outlen. */
bool model_name_normalize(const char *name, char *out, size_t outlen);
/* The longest display form, NUL included: host/namespace/model:tag. */
#define MODEL_NAME_DISPLAY_MAX (350 + 1 + 80 + 1 + 80 + 1 + 80 + 1)
/* The model for a request's name (any accepted spelling), or NULL. A miss refreshes the registry
 * first (model_registry_refresh), so a model whose manifest was just written is found. */
const model_manifest *model_registry_find(const model_registry *reg, const char *name);

#endif
