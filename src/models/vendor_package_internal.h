/* vendor_package_internal: what the files of models/vendor_package share (not for use elsewhere:
 * callers use vendor_package.h). vendor_package.c: the runtimes, the inspection in order, the
 * manifest; vendor_package_files.c: the package folder and its files (the binary, the run script,
 * the tokenizer folder, the checks of every file the runtime needs); vendor_package_model.c: what the
 * package says about the model (tokenizer and chat template, geometry, name, size, quantization). */
#ifndef AXLLAMA_MODELS_VENDOR_PACKAGE_INTERNAL_H
#define AXLLAMA_MODELS_VENDOR_PACKAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "models/vendor_package.h"

/* ---- runtimes (vendor_package.c) */

/* What a run script's name holds for runtime r ("ax650", "axcl_aarch64", "axcl_x86"). */
const char *vp_runtime_script_key(vp_runtime r);
/* The build in words, for messages ("the native AX650 build", ...). */
const char *vp_runtime_description(vp_runtime r);
/* uname's machine names: "x86_64" / "amd64", "aarch64" / "arm64". */
bool vp_machine_is_x86_64(const char *m);
bool vp_machine_is_aarch64(const char *m);

/* ---- the folder and its files (vendor_package_files.c) */

typedef struct {
    char **names; /* the package folder's entries, sorted */
    size_t n;
} dir_listing;

/* The last part of a path. */
const char *vp_base_name(const char *path);
/* dir/rel, or rel when it is absolute (a new string). */
char *vp_path_join(const char *dir, const char *rel);
/* The whole file (NUL-terminated, *len_out its length if not NULL); NULL with errno (EFBIG: more than
 * max bytes). */
char *vp_read_small_file(const char *path, size_t max, size_t *len_out);
/* The folder's entries but the hidden ones, sorted by bytes; false with errno. */
bool vp_list_dir(const char *dir, dir_listing *out);
void vp_dir_listing_free(dir_listing *l);

/* The runtime (opt's, else the machine's) and its binary in imp; false with a message. */
bool vp_find_binary(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err);
/* The run script for the runtime (an _api one first), else any run_*.sh (*other set); NULL if there
 * is none. */
const char *vp_find_script(const dir_listing *l, vp_runtime rt, bool *other);
/* The runtime's flags from the run script into imp->flags; false with a message. */
bool vp_read_script_flags(vp_import *imp, const char *script, strbuf *err);
/* The tokenizer folder (--tokenizer, else the package's one that fits the model) into imp; false with
 * a message. */
bool vp_find_tokenizer(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err);
/* The *_tokenizer_uid.py (the vendor's tokenizer service) of the package, or NULL. */
const char *vp_find_upstream_script(const dir_listing *l);
/* Every file the runtime needs: present, not a Git LFS pointer, the binary executable and built for
 * this machine; the model files' size into imp. False with a message. */
bool vp_check_files(const vp_options *opt, vp_import *imp, strbuf *err);

/* ---- the model (vendor_package_model.c) */

/* Loads the tokenizer and settles the chat template family (--template, else recognised; --compat
 * takes the vendor's tokenizer service); false with a message. */
bool vp_check_tokenizer_and_template(const vp_options *opt, const dir_listing *l, vp_import *imp, strbuf *err);
/* The context geometry from the options, the README (may be NULL) or the defaults; false with a
 * message when it makes no sense. */
bool vp_settle_geometry(const vp_options *opt, vp_import *imp, const char *readme, strbuf *err);
/* The model's name (--name or the folder's); false with a message. */
bool vp_settle_name(const vp_options *opt, vp_import *imp, strbuf *err);
/* "4.0B" from a folder name with a "-4B" part; "" without one (a new string). */
char *vp_parameter_size_of(const char *base);
/* "W8A16" from the first "w8a16"-like word of a README; "" without one (a new string). */
char *vp_quantization_of(const char *text);

#endif
