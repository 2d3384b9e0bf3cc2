/* server_fixture: the cmocka fixtures the tests of a running `axllama serve` share: the group
 * setup loads the Qwen3 tokenizer into `tok` (for exact token counts) and initialises libcurl; the
 * per-test teardown stop_current stops the test's server (`current`, a copy the test's start
 * helper keeps) when an assertion failed before the test stopped it. */
#ifndef AXLLAMA_TESTS_SERVER_FIXTURE_H
#define AXLLAMA_TESTS_SERVER_FIXTURE_H

#include <curl/curl.h>

#include "serve_harness.h"
#include "tokenizer/tokenizer.h"

static tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    char err[256];
    tok = tokenizer_load(getenv("AXLLAMA_TOKENIZER_DIR"), err, sizeof err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tokenizer_free(tok);
    return 0;
}

/* A reaped child makes waitpid fail: nothing to do then. */
static h_server current;

static int stop_current(void **state)
{
    (void)state;
    if (current.pid > 0 && waitpid(current.pid, &current.status, WNOHANG) == 0) {
        current.exited = false;
        h_server_stop(&current);
    }
    memset(&current, 0, sizeof current);
    return 0;
}

/* Starts a server with one model "m" (emulator args, extra manifest members, extra env; each may be
 * NULL) and keeps it as `current` for stop_current; fails the test with the server's log if it does
 * not start. */
static inline void start_model_m(h_server *s, const char *const *emu_args, const char *extra, const char *const *env)
{
    h_server_dir(s);
    h_write_manifest(s->dir, "m", emu_args, extra);
    bool started = h_server_start(s, env);
    current = *s;
    if (!started) {
        char *log = h_server_log(s);
        fprintf(stderr, "server did not start:\n%s\n", log);
        free(log);
        fail();
    }
}

#endif
