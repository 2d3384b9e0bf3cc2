/* vendor_fixture: fake AXERA model packages for the tests of `axllama import` (test_vendor_package.c,
 * test_cli.c): a folder laid out like AXERA-TECH/Qwen3-4B on Hugging Face, with run scripts as the
 * vendor writes them (interactive main_* binaries, --live_print, --devices, commented-out lines),
 * small layer/post/embedding files, the real Qwen3 tokenizer data ($AXLLAMA_TOKENIZER_DIR, linked),
 * a README with the runtime's load log, and binaries: main_api_axcl_x86 is a symbolic link to
 * $AXLLAMA_BUILD/axllama-emu (which accepts every vendor flag), the two arm64 builds are executable
 * shell scripts. Helpers turn files into Git LFS pointers, remove them, and so on. Header-only. */
#ifndef AXLLAMA_TESTS_VENDOR_FIXTURE_H
#define AXLLAMA_TESTS_VENDOR_FIXTURE_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"

#define VF_LAYERS 4
#define VF_LAYER_BYTES 1000
#define VF_POST_BYTES 3000
#define VF_EMBED_BYTES 5000
/* What the model files of a fixture add up to. */
#define VF_MODEL_BYTES (VF_LAYERS * VF_LAYER_BYTES + VF_POST_BYTES + VF_EMBED_BYTES)
#define VF_SYSTEM_PROMPT "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
#define VF_LFS_POINTER                                                              \
    "version https://git-lfs.github.com/spec/v1\n"                                  \
    "oid sha256:e800cd6e00dd2ad7303cb6fb6b867a33704665bded213fe4bd3be3df025c0821\n" \
    "size 1064760\n"

typedef struct {
    char root[64];      /* the temporary directory */
    char dir[PATH_MAX]; /* the package: root/NAME */
} vfix;

/* dir/rel in a rotating static buffer. */
static inline const char *vf_path(const vfix *f, const char *rel)
{
    static char bufs[8][PATH_MAX + 64];
    static int next;
    char *b = bufs[next++ % 8];
    if (snprintf(b, PATH_MAX + 64, "%s/%s", f->dir, rel) >= PATH_MAX + 64)
        b[0] = '\0';
    return b;
}

static inline void vf_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

/* Writes dir/rel (creating its folders) with the given bytes and mode. */
static inline void vf_write_bytes(const vfix *f, const char *rel, const void *data, size_t len, mode_t mode)
{
    const char *path = vf_path(f, rel);
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    *strrchr(parent, '/') = '\0';
    vf_mkdirs(parent);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return;
    if (len && write(fd, data, len) != (ssize_t)len)
        perror(path);
    close(fd);
    chmod(path, mode);
}

static inline void vf_write(const vfix *f, const char *rel, const char *text)
{
    vf_write_bytes(f, rel, text, strlen(text), 0644);
}

/* A file of n bytes (not a pointer, not text). */
static inline void vf_write_sized(const vfix *f, const char *rel, size_t n)
{
    char *data = calloc(1, n ? n : 1);
    memcpy(data, "AXMODEL", n < 7 ? n : 7);
    vf_write_bytes(f, rel, data, n, 0644);
    free(data);
}

static inline void vf_link(const vfix *f, const char *target, const char *rel)
{
    const char *path = vf_path(f, rel);
    unlink(path);
    if (symlink(target, path) != 0)
        perror(path);
}

/* What a Git clone without git-lfs leaves in place of rel. */
static inline void vf_make_lfs_pointer(const vfix *f, const char *rel)
{
    vf_write(f, rel, VF_LFS_POINTER);
}

/* The vendor's run script for a platform: binary main_axcl_x86 etc., devices "" for none. */
static inline void vf_write_script(const vfix *f, const char *rel, const char *binary, const char *devices)
{
    strbuf sb = {0};
    sb_printf(&sb,
              "./%s \\\n"
              "--system_prompt \"" VF_SYSTEM_PROMPT "\" \\\n"
              "--template_filename_axmodel \"qwen3-4b-ax650/qwen3_p128_l%%d_together.axmodel\" \\\n"
              "--axmodel_num %d \\\n"
              "--url_tokenizer_model \"http://127.0.0.1:12345\" \\\n"
              "--filename_post_axmodel qwen3-4b-ax650/qwen3_post.axmodel \\\n"
              "--filename_tokens_embed qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin \\\n"
              "--tokens_embed_num 151936 \\\n"
              "--tokens_embed_size 2560 \\\n"
              "--use_mmap_load_embed 1 \\\n"
              "--live_print 1%s%s\n"
              "\n"
              "# --system_prompt \"Your name is LISA; you're a \\\"harmless\\\" assistant.\" \\\n"
              "# --kvcache_path /home/axera/ax-llm/build/kvcache_yuanqi \\\n",
              binary, VF_LAYERS, devices[0] ? " \\\n--devices " : "", devices);
    vf_write_bytes(f, rel, sb.data, sb.len, 0755);
    sb_free(&sb);
}

/* A tokenizer_config.json: the real Qwen3 one with its chat_template replaced (NULL: removed). */
static inline void vf_write_tokenizer_config(const vfix *f, const char *rel, const char *chat_template)
{
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/tokenizer_config.json", getenv("AXLLAMA_TOKENIZER_DIR"));
    json_t *config = json_load_file(src, 0, NULL);
    if (!config)
        config = json_object();
    if (chat_template)
        json_object_set_new(config, "chat_template", json_string(chat_template));
    else
        json_object_del(config, "chat_template");
    char *text = json_dumps(config, JSON_INDENT(2));
    vf_write(f, rel, text);
    free(text);
    json_decref(config);
}

/* The Qwen2.5 chat template of AXERA's packages (tests/template/, read from the source tree). */
static inline char *vf_qwen25_template(void)
{
    FILE *fp = fopen("tests/template/qwen2.5_chat_template.jinja", "rb");
    if (!fp)
        return NULL;
    strbuf sb = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        sb_append(&sb, buf, n);
    fclose(fp);
    return sb_steal(&sb);
}

/* A chat template axllama does not render (Llama 3's shape). */
#define VF_LLAMA_TEMPLATE                                                                                    \
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + " \
    "message['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"                         \
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"

static inline const char *vf_build_dir(void)
{
    const char *b = getenv("AXLLAMA_BUILD");
    return b ? b : "build";
}

/* A complete package root/name (e.g. "Qwen3-4B") as AXERA ships Qwen3-4B, real files everywhere. */
static inline bool vfix_make(vfix *f, const char *name)
{
    memset(f, 0, sizeof *f);
    strcpy(f->root, "/tmp/axllama-vendor-XXXXXX");
    if (!mkdtemp(f->root))
        return false;
    snprintf(f->dir, sizeof f->dir, "%s/%s", f->root, name);
    vf_mkdirs(f->dir);
    for (int i = 0; i < VF_LAYERS; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel", i);
        vf_write_sized(f, rel, VF_LAYER_BYTES);
    }
    vf_write_sized(f, "qwen3-4b-ax650/qwen3_post.axmodel", VF_POST_BYTES);
    vf_write_sized(f, "qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin", VF_EMBED_BYTES);

    const char *tok = getenv("AXLLAMA_TOKENIZER_DIR");
    char target[PATH_MAX], emu[PATH_MAX];
    vf_mkdirs(vf_path(f, "qwen3_tokenizer"));
    snprintf(target, sizeof target, "%s/tokenizer.json", tok);
    vf_link(f, target, "qwen3_tokenizer/tokenizer.json");
    snprintf(target, sizeof target, "%s/tokenizer_config.json", tok);
    vf_link(f, target, "qwen3_tokenizer/tokenizer_config.json");
    /* the package also ships the Qwen2.5 tokenizer its Python service renders with */
    vf_mkdirs(vf_path(f, "qwen2.5_tokenizer"));
    snprintf(target, sizeof target, "%s/tokenizer.json", tok);
    vf_link(f, target, "qwen2.5_tokenizer/tokenizer.json");
    char *t25 = vf_qwen25_template();
    vf_write_tokenizer_config(f, "qwen2.5_tokenizer/tokenizer_config.json", t25);
    free(t25);

    snprintf(emu, sizeof emu, "%s/axllama-emu", vf_build_dir());
    char *emu_abs = realpath(emu, NULL);
    vf_link(f, emu_abs ? emu_abs : emu, "main_api_axcl_x86");
    free(emu_abs);
    vf_write_bytes(f, "main_api_axcl_aarch64", "#!/bin/sh\nexit 1\n", 17, 0755);
    vf_write_bytes(f, "main_api_ax650", "#!/bin/sh\nexit 1\n", 17, 0755);
    vf_write_bytes(f, "main_ax650", "#!/bin/sh\nexit 1\n", 17, 0755);
    vf_write_script(f, "run_qwen3_4b_int8_ctx_ax650.sh", "main_ax650", "");
    vf_write_script(f, "run_qwen3_4b_int8_ctx_axcl_aarch64.sh", "main_axcl_aarch64", "0");
    vf_write_script(f, "run_qwen3_4b_int8_ctx_axcl_x86.sh", "main_axcl_x86", "0,1");
    vf_write(f, "post_config.json", "{\"enable_top_k_sampling\": true, \"top_k\": 1}\n");
    vf_write(f, "qwen3_tokenizer_uid.py", "print('the vendor tokenizer service')\n");
    vf_write(f, "README.md",
             "# Qwen3-4B-Int8\n\nconverted with **w8a16** quantization.\n\n```\n"
             "[I][                            Init][ 188]: max_token_len : 2559\n"
             "[I][                            Init][ 193]: kv_cache_size : 1024, kv_cache_num: 2559\n"
             "[I][                            Init][ 205]: grp: 1, prefill_max_token_num : 1\n"
             "[I][                            Init][ 205]: grp: 6, prefill_max_token_num : 2048\n"
             "[I][                            Init][ 209]: prefill_max_token_num : 2048\n```\n");
    return true;
}

static inline int vf_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void vfix_remove(vfix *f)
{
    if (f->root[0])
        nftw(f->root, vf_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    f->root[0] = '\0';
}

#endif
