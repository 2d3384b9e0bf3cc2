/* manifest_fixture: what the models tests share: a temporary directory per test (HOME inside it,
 * XDG_CONFIG_HOME and AXLLAMA_MODELS unset), files and manifests written into it, and the warnings
 * collected. Used by test_manifest.c and test_registry.c. */
#ifndef AXLLAMA_TESTS_MANIFEST_FIXTURE_H
#define AXLLAMA_TESTS_MANIFEST_FIXTURE_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "models/manifest.h"

#define DEFAULT_PROMPT "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

static char *root;       /* the test's temporary directory (absolute, no symlinks) */
static char *saved_home; /* HOME before the test */
static strbuf warnings;  /* every warning of the test, one per line */

static inline void collect_warning(void *user, const char *msg)
{
    strbuf *sb = user;
    assert_non_null(msg);
    assert_null(strchr(msg, '\n'));
    sb_puts(sb, msg);
    sb_putc(sb, '\n');
}

static inline size_t warning_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < warnings.len; i++)
        n += warnings.data[i] == '\n';
    return n;
}

static const char *warning_text(void)
{
    return warnings.data ? warnings.data : "";
}

/* root/rel in a static rotating buffer set. */
static const char *at(const char *rel)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", root, rel);
    return b;
}

static inline void mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

static inline void write_file_mode(const char *rel, const char *content, mode_t mode)
{
    const char *path = at(rel);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t n = strlen(content);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    close(fd);
}

static inline void write_file(const char *rel, const char *content)
{
    write_file_mode(rel, content, 0644);
}

/* An executable runtime and a tokenizer directory under root/models, as a good manifest wants. */
static inline void make_model_files(void)
{
    write_file_mode("models/bin/runtime", "#!/bin/sh\n", 0755);
    write_file("models/tok/tokenizer.json", "{}");
    write_file("models/tok/tokenizer_config.json", "{}");
}

#define MINIMAL "{\"name\": \"qwen3\", \"runtime\": {\"binary\": \"bin/runtime\"}, \"tokenizer\": \"tok\"}\n"
#define MINIMAL_SHA256 "a61869b834db8b7bfce61e65ced2e3370f4f2b77705da3e7defaad39c85900ee"

/* A manifest with name and the given extra top-level members and runtime members. */
static inline void write_manifest(const char *rel, const char *name, const char *runtime_extra, const char *extra)
{
    strbuf sb = {0};
    sb_printf(&sb, "{\"name\": \"%s\", \"runtime\": {\"binary\": \"bin/runtime\"%s%s}, \"tokenizer\": \"tok\"%s%s}",
              name, runtime_extra && runtime_extra[0] ? ", " : "", runtime_extra ? runtime_extra : "",
              extra && extra[0] ? ", " : "", extra ? extra : "");
    write_file(rel, sb.data);
    sb_free(&sb);
}

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int setup(void **state)
{
    (void)state;
    const char *tmpdir = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/axllama-manifest-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    char *made = mkdtemp(tmpl);
    assert_non_null(made);
    root = realpath(made, NULL);
    assert_non_null(root);
    const char *home = getenv("HOME");
    saved_home = home ? strdup(home) : NULL;
    mkdirs(at("home"));
    setenv("HOME", at("home"), 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("AXLLAMA_MODELS");
    sb_clear(&warnings);
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(root);
    root = NULL;
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_home);
    saved_home = NULL;
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("AXLLAMA_MODELS");
    sb_free(&warnings);
    return 0;
}

#endif
