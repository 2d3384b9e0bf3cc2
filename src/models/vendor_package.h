/* vendor_package: what `axllama import` reads in a model folder as AXERA ships it on Hugging Face
 * (e.g. AXERA-TECH/Qwen3-4B), and the manifest it makes of it (models/manifest.h, docs/models.md).
 * Nothing here writes files or runs programs: the CLI (cli/cmd_import.c) learns the machine, decides
 * where the manifest goes and writes it.
 *
 * A package holds the runtime's API server for each platform (main_api_ax650, main_api_axcl_aarch64,
 * main_api_axcl_x86), run scripts with the runtime's flags (run_*_ax650.sh, run_*_axcl_aarch64.sh,
 * run_*_axcl_x86*.sh; they start the interactive main_* binary, whose flags the API server shares
 * except --live_print), post_config.json, the tokenizer folder(s) (*_tokenizer/ with tokenizer.json and
 * tokenizer_config.json), the layer models (a printf pattern with %d, 0..axmodel_num-1), the post
 * model and the embedding table (.bin). The import:
 *   - picks the binary this machine runs (x86_64: axcl_x86; aarch64: axcl_aarch64 when the AXCL
 *     driver is installed, else ax650), or the one asked for;
 *   - takes the flags of that platform's run script (the first command that runs a main_* binary,
 *     read with the shell's quoting rules), without the ones axllama adds (--url_tokenizer_model,
 *     --devices) and the ones main_api_* refuses (--live_print, --port, any flag it does not know);
 *   - checks every file the runtime needs: present, not a Git LFS pointer (a ~130-byte text
 *     "version https://git-lfs.github.com/spec/v1 ..." left by a clone without git-lfs), the binary
 *     executable and built for this machine;
 *   - loads the tokenizer and recognises its chat template (the Qwen3 or the Qwen2.5 one);
 *   - reads the context geometry from the README's runtime log (max_token_len,
 *     prefill_max_token_num), else the manifest defaults (2048 / 2559);
 *   - names the model from the folder (Qwen3-4B -> qwen3:4b) unless a name is given.
 * Every refusal is one message saying what is wrong and how to fix it. */
#ifndef AXLLAMA_MODELS_VENDOR_PACKAGE_H
#define AXLLAMA_MODELS_VENDOR_PACKAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "models/run_script.h"
#include "tokenizer/chat_template.h"

typedef enum {
    VP_RUNTIME_AX650,        /* main_api_ax650: AX650 boards (M4N-Dock), native NPU, no --devices */
    VP_RUNTIME_AXCL_AARCH64, /* main_api_axcl_aarch64: an AXCL card (M.2, PCIe) on an arm64 host (Pi 5) */
    VP_RUNTIME_AXCL_X86,     /* main_api_axcl_x86: an AXCL card on an x86_64 host */
} vp_runtime;

#define VP_RUNTIME_COUNT 3

/* "ax650", "axcl_aarch64", "axcl_x86" (what --runtime takes). */
const char *vp_runtime_name(vp_runtime r);
/* "main_api_ax650", ... */
const char *vp_runtime_binary(vp_runtime r);
/* The runtime named s (as vp_runtime_name spells it, or the binary's name); false if none. */
bool vp_runtime_parse(const char *s, vp_runtime *out);
/* The runtime for a machine (uname's machine: "x86_64", "aarch64"/"arm64") with or without the AXCL
 * driver; false when no build runs there. */
bool vp_runtime_for_machine(const char *machine, bool axcl_driver, vp_runtime *out);

/* ---- tokenizer folder, template, geometry, name */

/* The chat template family a template text (tokenizer_config.json's chat_template) is, recognised by
 * what each one's text must and must not contain (ChatML markers; Qwen3: enable_thinking,
 * reasoning_content, <think>; Qwen2.5: its default system prompt and <tool_call>, no thinking).
 * False for any other template. */
bool vp_template_family(const char *chat_template, chat_template_family *out);
/* "qwen3" / "qwen2.5" as the manifest's "template" key spells it. */
const char *vp_template_name(chat_template_family f);

/* The context geometry in a README's runtime log: "max_token_len : N" (the KV positions) and the
 * largest "prefill_max_token_num : M". Each is 0 when absent. */
void vp_readme_geometry(const char *text, int *max_positions, int *max_prefill);

/* The model name for a package folder's base name: lower case, the first "-<size>b" part starting
 * the tag ("Qwen3-4B" -> "qwen3:4b", "Qwen2.5-1.5B-Instruct" -> "qwen2.5:1.5b-instruct", "SmolLM"
 * -> "smollm:latest"); characters a name cannot hold become '-'. False when nothing valid remains. */
bool vp_default_name(const char *base, char *out, size_t outlen);

/* ---- the whole package */

typedef struct {
    const char *dir;     /* the package folder */
    const char *machine; /* uname's machine, e.g. "x86_64" */
    bool axcl_driver;    /* axcl-smi or /usr/lib/axcl exists */
    bool has_runtime;    /* runtime given (--runtime), else the machine's */
    vp_runtime runtime;
    const char *name;               /* NULL: from the folder's name */
    const char *tokenizer_dir;      /* NULL: the package's *_tokenizer folder */
    const char *template_name;      /* NULL: recognised; "qwen3" / "qwen2.5" forces the family */
    int max_prefill, max_positions; /* 0: the README's, else the defaults */
    int port;                       /* the runtime's port; 0: 8000 (the vendor binary's only port) */
    bool compat;                    /* compatibility mode with the package's *_tokenizer_uid.py */
} vp_options;

typedef struct {
    char *dir; /* absolute */
    vp_runtime runtime;
    char *binary;      /* absolute */
    char *script;      /* the run script's file name */
    bool script_other; /* no script for this runtime: another platform's was used */
    rs_flags flags;
    char *tokenizer_dir; /* absolute */
    chat_template_family family;
    bool family_forced; /* --template */
    bool thinking;
    int max_prefill, max_positions;
    bool geometry_from_readme;
    int port;
    uint64_t size; /* the model files' bytes: layers, post model, embeddings */
    size_t n_model_files;
    char *name;                          /* display form */
    char *parameter_size, *quantization; /* "4.0B" / "W8A16", or "" */
    char *upstream_script;               /* compat: the *_tokenizer_uid.py file name, else NULL */
} vp_import;

/* Reads and checks the package; false with the reason in err (which may hold several lines, no
 * trailing newline). */
bool vendor_package_inspect(const vp_options *opt, vp_import *out, strbuf *err);
void vp_import_free(vp_import *imp);

/* The manifest for an inspected package (a new JSON object, keys in the documented order):
 * absolute paths, workdir = the package, devices "auto", load_timeout 300 and
 * LD_LIBRARY_PATH=/usr/lib/axcl for the AXCL builds, tokenizer_port 0 (a free port each start). */
json_t *vendor_package_manifest(const vp_import *imp);

/* The manifest's file name for a model name: '/' and ':' become '-', then ".json"
 * ("qwen3:4b" -> "qwen3-4b.json"). */
void vp_manifest_file_name(const char *name, char *out, size_t outlen);

#endif
