/* Process-level tests of axllama-emu (emu_main.c): the real binary is spawned and judged by its exit
 * status, its output and its timing, as a supervisor would see the vendor runtime
 * (docs/spec/runtime-protocol.md §4): command-line errors, the start-up sequence and the tokenizer traffic
 * it makes, readiness, post_config.json, an unreachable tokenizer, a port clash, SIGINT / SIGTERM,
 * and the injected faults (crash, hang, exit during init, slow init, AXLLAMA_EMU_ARGS).
 * One tokenizer service (in-process, recording every request) serves the whole binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sys/stat.h>

#include "emu_harness.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* What the fast profile replies to "Say hi" (greedy): the empty think block, then the echo of the
 * user message as axllama's tokenizer service renders it (with "/no_think" appended). */
#define SAY_HI_REPLY "<think>\n\n</think>\n\nSay hi/no_think"
#define SAY_HI_CHAT_BODY "{\"done\":true,\"message\":\"<think>\\n\\n</think>\\n\\nSay hi/no_think\"}"
#define THINK_PREFIX_JSON "<think>\\n\\n</think>\\n\\n"
#define STATUS_OK "{\"status\": \"ok\"}"

/* Qwen3-4B's post_config.json (Q-POST): only top-k, with k = 1. */
#define POST_CONFIG_TOP_K(k)                                                                                           \
    "{\n    \"enable_temperature\" : false,\n    \"temperature\" : 0.9,\n    \"enable_repetition_penalty\" : false,\n" \
    "    \"repetition_penalty\" : 1.2,\n    \"penalty_window\" : 20,\n    \"enable_top_p_sampling\" : false,\n"        \
    "    \"top_p\" : 0.8,\n    \"enable_top_k_sampling\" : true,\n    \"top_k\" : " #k "\n}\n"

static h_tokenizer g_tok;
static char g_tok_url[64];

/* A fresh working directory (dir_make), removed by the teardown. */
typedef struct {
    char path[64];
} work_dir;

/* The current test's emulators and working directories: the teardown kills and removes them even
 * when an assertion ended the test early. */
static h_emu g_emus[2];
static work_dir g_dirs[2];

/* ---- helpers ---- */

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!h_tokenizer_start(&g_tok))
        return -1;
    snprintf(g_tok_url, sizeof g_tok_url, "http://127.0.0.1:%u", (unsigned)tok_service_port(g_tok.svc));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h_tokenizer_stop(&g_tok);
    curl_global_cleanup();
    return 0;
}

static void dir_remove(work_dir *d);

/* Every test starts with an empty record of the tokenizer's traffic and no emulator. */
static int test_setup(void **state)
{
    (void)state;
    h_tokenizer_forget(&g_tok);
    memset(g_emus, 0, sizeof g_emus);
    memset(g_dirs, 0, sizeof g_dirs);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof g_emus / sizeof g_emus[0]; i++)
        h_emu_kill(&g_emus[i]); /* harmless on an unused or already killed slot */
    for (size_t i = 0; i < sizeof g_dirs / sizeof g_dirs[0]; i++)
        dir_remove(&g_dirs[i]);
    return 0;
}

/* Creates d, with a post_config.json of that content unless NULL. */
static void dir_make(work_dir *d, const char *post_config)
{
    strcpy(d->path, "/tmp/axllama-emu-cwd-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    if (post_config) {
        char file[PATH_MAX];
        snprintf(file, sizeof file, "%s/post_config.json", d->path);
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fputs(post_config, f);
        fclose(f);
    }
}

static void dir_remove(work_dir *d)
{
    if (!d->path[0])
        return;
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/post_config.json", d->path);
    unlink(file);
    rmdir(d->path);
    d->path[0] = '\0';
}

static void assert_starts_with(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

/* Number of non-overlapping occurrences of needle in hay. */
static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    return n;
}

/* Finds each needle after the previous one; fails the test naming the first one out of order. */
static void assert_in_order(const char *log, const char *const *needles)
{
    const char *at = log;
    for (size_t i = 0; needles[i]; i++) {
        const char *found = strstr(at, needles[i]);
        if (!found) {
            fprintf(stderr, "---- searched text ----\n%s\n---- end ----\n", log);
            fail_msg("not found (in this order): \"%s\"", needles[i]);
        }
        at = found + strlen(needles[i]);
    }
}

/* A vendor log line's prefix, e.g. "[I][                            Init][ 136]: ". */
static char *log_prefix(char level, const char *function, int line)
{
    strbuf sb = {0};
    sb_printf(&sb, "[%c][%32s][%4d]: ", level, function, line);
    return sb_steal(&sb);
}

/* A snapshot of the tokenizer's traffic. */
typedef struct {
    size_t n;
    char **method, **path, **body;
} traffic;

static traffic traffic_now(void)
{
    traffic t = {0};
    pthread_mutex_lock(&g_tok.lock);
    t.n = g_tok.n_reqs;
    t.method = xcalloc(t.n + 1, sizeof(char *));
    t.path = xcalloc(t.n + 1, sizeof(char *));
    t.body = xcalloc(t.n + 1, sizeof(char *));
    for (size_t i = 0; i < t.n; i++) {
        t.method[i] = xstrdup(g_tok.reqs[i].method);
        t.path[i] = xstrdup(g_tok.reqs[i].path);
        t.body[i] = xstrdup(g_tok.reqs[i].body);
    }
    pthread_mutex_unlock(&g_tok.lock);
    return t;
}

static void traffic_free(traffic *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->method[i]);
        free(t->path[i]);
        free(t->body[i]);
    }
    free(t->method);
    free(t->path);
    free(t->body);
}

/* Number of ids in a /decode body (-1 if it has no token_ids list). */
static long ids_in(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    json_t *ids = json_object_get(j, "token_ids");
    long n = json_is_array(ids) ? (long)json_array_size(ids) : -1;
    json_decref(j);
    return n;
}

/* Number of /decode requests carrying exactly n ids. */
static size_t decodes_of_length(long n)
{
    traffic t = traffic_now();
    size_t count = 0;
    for (size_t i = 0; i < t.n; i++)
        count += !strcmp(t.path[i], "/decode") && ids_in(t.body[i]) == n;
    traffic_free(&t);
    return count;
}

/* Waits up to timeout_s until the tokenizer saw at least n requests with that path prefix. */
static bool wait_count(const char *prefix, size_t n, double timeout_s)
{
    double end = h_now() + timeout_s;
    while (h_count(&g_tok, prefix) < n) {
        if (h_now() > end)
            return false;
        h_sleep(0.002);
    }
    return true;
}

static void print_log(const h_emu *e)
{
    char *log = h_emu_log(e);
    fprintf(stderr, "---- emulator log ----\n%s\n---- end ----\n", log);
    free(log);
}

static void assert_exited_with(const h_emu *e, int code)
{
    if (!WIFEXITED(e->status) || WEXITSTATUS(e->status) != code) {
        print_log(e);
        fail_msg("expected exit status %d, got raw wait status 0x%x", code, (unsigned)e->status);
    }
}

static void assert_killed_by(const h_emu *e, int sig)
{
    if (!WIFSIGNALED(e->status) || WTERMSIG(e->status) != sig) {
        print_log(e);
        fail_msg("expected death by signal %d, got raw wait status 0x%x", sig, (unsigned)e->status);
    }
}

static void assert_http(h_http *r, long status, const char *body)
{
    assert_int_equal(r->status, status);
    assert_string_equal(r->body.data, body);
    h_http_free(r);
}

/* Starts the usual fast emulator in dir (NULL: the test's own working directory). */
static void start_fast_in(h_emu *e, const char *dir, const char *const *extra)
{
    const char *args[64] = {"--devices",  "0", "--emu-profile",         "fast",
                            "--emu-port", "0", "--url_tokenizer_model", g_tok_url};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i] && n < 63; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    h_spawn_opts opts = {.cwd = dir};
    if (!h_emu_spawn_opts(e, args, true, 10.0, &opts)) {
        print_log(e);
        fail_msg("the emulator did not start");
    }
}

/* A command-line run: argv without the program name; stdout and stderr apart. */
typedef struct {
    int status;
    char *out, *err;
} cli_run;

static cli_run run_cli(const char *const *args)
{
    h_emu e;
    h_spawn_opts opts = {.split_stderr = true};
    assert_true(h_emu_spawn_opts(&e, args, false, 0, &opts));
    bool ended = h_emu_wait(&e, 10.0);
    cli_run r = {.status = e.status, .out = h_emu_log(&e), .err = h_emu_stderr(&e)};
    h_emu_kill(&e);
    assert_true(ended);
    assert_true(WIFEXITED(r.status));
    r.status = WEXITSTATUS(r.status);
    return r;
}

static void cli_free(cli_run *r)
{
    free(r->out);
    free(r->err);
}

/* The usage the binary prints for --help in that mode (stderr). */
static char *usage_text(bool ax650)
{
    cli_run r = ax650 ? run_cli(ARGS("--emu-mode", "ax650", "--help")) : run_cli(ARGS("--help"));
    assert_int_equal(r.status, 0);
    free(r.out);
    return r.err;
}

/* The elapsed time the progress bar shows at its last step ("N / N [X.XXs<"), or -1. */
static double last_progress_elapsed(const char *log, int total)
{
    char needle[32];
    snprintf(needle, sizeof needle, "%3d / %3d [", total, total);
    const char *at = strstr(log, needle);
    return at ? atof(at + strlen(needle)) : -1.0;
}

/* ---- command line (the vendor parser's rules, seen from outside) ---- */

static void assert_cli_error(const char *const *args, const char *first_line, bool ax650)
{
    char *usage = usage_text(ax650);
    cli_run r = run_cli(args);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    strbuf want = {0};
    sb_printf(&want, "%s\n%s", first_line, usage);
    assert_string_equal(r.err, want.data);
    sb_free(&want);
    cli_free(&r);
    free(usage);
}

static void test_cli_live_print_is_undefined_option_exit_1(void **state)
{
    (void)state;
    assert_cli_error(ARGS("--devices", "0", "--live_print", "1"), "undefined option: --live_print", false);
    assert_int_equal(h_count(&g_tok, "/"), 0); /* nothing started */
}

static void test_cli_port_is_undefined_option_exit_1(void **state)
{
    (void)state;
    assert_cli_error(ARGS("--devices", "0", "--port", "8000"), "undefined option: --port", false);
}

static void test_cli_bool_true_is_invalid_value_exit_1(void **state)
{
    (void)state;
    assert_cli_error(ARGS("--devices", "0", "--use_mmap_load_embed", "true"),
                     "option value is invalid: --use_mmap_load_embed=true", false);
}

static void test_cli_help_prints_usage_exit_0(void **state)
{
    (void)state;
    cli_run r = run_cli(ARGS("--help"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");
    char prog[PATH_MAX], given[PATH_MAX];
    snprintf(given, sizeof given, "%s/axllama-emu", getenv("AXLLAMA_BUILD") ? getenv("AXLLAMA_BUILD") : "build");
    assert_non_null(realpath(given, prog));
    strbuf head = {0};
    sb_printf(&head, "usage: %s --devices=string [options] ... \noptions:\n", prog);
    assert_starts_with(r.err, head.data);
    sb_free(&head);
    static const char *const vendor_flags[] = {"--system_prompt ",
                                               "--template_filename_axmodel ",
                                               "--filename_post_axmodel ",
                                               "--url_tokenizer_model ",
                                               "--filename_tokens_embed ",
                                               "--axmodel_num ",
                                               "--tokens_embed_num ",
                                               "--tokens_embed_size ",
                                               "--use_mmap_load_embed ",
                                               "--devices ",
                                               "  -?, --help ",
                                               NULL};
    assert_in_order(r.err, vendor_flags);
    cli_free(&r);
}

static void test_cli_axcl_without_devices_needs_option_exit_1(void **state)
{
    (void)state;
    assert_cli_error(ARGS("--axmodel_num", "36", "--url_tokenizer_model", g_tok_url), "need option: --devices", false);
    assert_int_equal(h_count(&g_tok, "/"), 0);
}

static void test_cli_ax650_mode_rejects_devices_exit_1(void **state)
{
    (void)state;
    assert_cli_error(ARGS("--emu-mode", "ax650", "--devices", "0"), "undefined option: --devices", true);
}

/* ---- start-up ---- */

static void test_startup_logs_vendor_sequence_in_order(void **state)
{
    (void)state;
    work_dir *d = &g_dirs[0];
    dir_make(d, NULL);
    h_emu *e = &g_emus[0];
    start_fast_in(e, d->path, ARGS("--axmodel_num", "36", "--system_prompt", "You are a test."));
    char *log = h_emu_log(e);
    strbuf connect = {0}, server = {0};
    sb_printf(&connect, "connect %s ok", g_tok_url);
    sb_printf(&server, "Server running on port %d...\n", e->port);
    char *init_start = log_prefix('I', "Init", 136), *worker = log_prefix('I', "AXCLWorker", 38);
    strbuf init_start_line = {0}, worker_line = {0};
    sb_printf(&init_start_line, "%sLLM init start", init_start);
    sb_printf(&worker_line, "%sAXCLWorker start with devid 0", worker);

    const char *head[] = {worker_line.data,
                          init_start_line.data,
                          connect.data,
                          "uid: ",
                          "\nbos_id: -1, eos_id: 151645\n",
                          "model files are not read",
                          NULL};
    assert_in_order(log, head);
    /* 36 layers: 39 progress steps, each once, in order, after the lines above */
    const char *after_head = strstr(log, "model files are not read");
    char steps[39 + 1][48];
    const char *step_ptrs[39 + 2];
    for (int k = 1; k <= 39; k++) {
        snprintf(steps[k - 1], sizeof steps[0], "%3d /  39 [", k);
        step_ptrs[k - 1] = steps[k - 1];
    }
    step_ptrs[39] = "init post axmodel ok,remain_cmm(";
    step_ptrs[40] = NULL;
    assert_in_order(after_head, step_ptrs);
    assert_int_equal(count_of(log, "/  39 ["), 39);
    assert_non_null(strstr(log, "  1 /  39 [")); /* the first step names the tokenizer */
    assert_non_null(strstr(strstr(log, "  1 /  39 ["), "tokenizer init ok"));
    const char *tail[] = {"init post axmodel ok,remain_cmm(",
                          "]: max_token_len : 2559\n",
                          "]: kv_cache_size : 1024, kv_cache_num: 2559\n",
                          "]: prefill_token_num : 128\n",
                          "]: grp: 1, prefill_max_token_num : 1\n",
                          "]: grp: 2, prefill_max_token_num : 256\n",
                          "]: grp: 3, prefill_max_token_num : 512\n",
                          "]: grp: 4, prefill_max_token_num : 1024\n",
                          "]: grp: 5, prefill_max_token_num : 1536\n",
                          "]: grp: 6, prefill_max_token_num : 2048\n",
                          "]: prefill_max_token_num : 2048\n",
                          "]: LLM init ok\n",
                          server.data,
                          NULL};
    assert_in_order(log, tail);
    assert_int_equal(count_of(log, "]: grp: "), 6);
    assert_int_equal(count_of(log, "Server running on port"), 1);

    sb_free(&connect);
    sb_free(&server);
    sb_free(&init_start_line);
    sb_free(&worker_line);
    free(init_start);
    free(worker);
    free(log);
    h_emu_kill(e);
    dir_remove(d);
}

/* The tokenizer's record of start-up: get_uid, bos_id, eos_id, reset, nothing else. */
static void assert_startup_traffic(const h_emu *e, const char *reset_body_fmt)
{
    char *log = h_emu_log(e);
    traffic t = traffic_now();
    assert_int_equal(t.n, 4);
    const char *uid_at = strstr(log, "uid: ");
    assert_non_null(uid_at);
    char uid[TOK_SERVICE_UID_LEN + 1];
    snprintf(uid, sizeof uid, "%s", uid_at + 5);
    assert_int_equal(strlen(uid), TOK_SERVICE_UID_LEN);
    strbuf bos = {0}, eos = {0}, reset = {0};
    sb_printf(&bos, "/bos_id?uid=%s", uid);
    sb_printf(&eos, "/eos_id?uid=%s", uid);
    sb_printf(&reset, reset_body_fmt, uid);
    assert_string_equal(t.method[0], "GET");
    assert_string_equal(t.path[0], "/get_uid");
    assert_string_equal(t.method[1], "GET");
    assert_string_equal(t.path[1], bos.data);
    assert_string_equal(t.method[2], "GET");
    assert_string_equal(t.path[2], eos.data);
    assert_string_equal(t.method[3], "POST");
    assert_string_equal(t.path[3], "/reset");
    assert_string_equal(t.body[3], reset.data);
    sb_free(&bos);
    sb_free(&eos);
    sb_free(&reset);
    traffic_free(&t);
    free(log);
}

static void test_startup_tokenizer_calls_uid_bos_eos_then_reset_with_system_prompt(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--system_prompt", "You are a test."));
    assert_startup_traffic(e, "{\"system_prompt\":\"You are a test.\",\"uid\":\"%s\"}");
    h_emu_kill(e);
}

static void test_startup_reset_omits_empty_system_prompt(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--system_prompt", ""));
    assert_startup_traffic(e, "{\"uid\":\"%s\"}");
    h_emu_kill(e);
}

static void test_startup_reset_omits_absent_system_prompt(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, NULL);
    assert_startup_traffic(e, "{\"uid\":\"%s\"}");
    h_emu_kill(e);
}

static void test_ax650_mode_starts_without_devices_or_axcl_worker_line(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    const char *args[] = {"--emu-mode", "ax650", "--emu-profile", "fast", "--emu-port", "0", "--url_tokenizer_model",
                          g_tok_url,    NULL};
    assert_true(h_emu_spawn(e, args, true, 10.0));
    char *log = h_emu_log(e);
    assert_null(strstr(log, "AXCLWorker"));
    const char *seq[] = {"]: LLM init start\n", "]: LLM init ok\n", "Server running on port ", NULL};
    assert_in_order(log, seq);
    h_http r = h_get(e, "/api/stop");
    assert_http(&r, 200, STATUS_OK);
    free(log);
    h_emu_kill(e);
}

static void test_devices_list_starts_one_axcl_worker_per_device(void **state)
{
    (void)state;
    const char *args[] = {"--devices", "0,1", "--emu-profile", "fast", "--emu-port", "0", "--url_tokenizer_model",
                          g_tok_url,   NULL};
    h_emu *e = &g_emus[0];
    assert_true(h_emu_spawn(e, args, true, 10.0));
    char *log = h_emu_log(e);
    const char *seq[] = {"]: AXCLWorker start with devid 0\n", "]: AXCLWorker start with devid 1\n",
                         "]: LLM init start\n", NULL};
    assert_in_order(log, seq);
    assert_int_equal(count_of(log, "AXCLWorker start"), 2);
    free(log);
    h_emu_kill(e);
}

static void test_devices_not_a_number_terminates_like_stoi(void **state)
{
    (void)state;
    const char *args[] = {"--devices", "card0", "--emu-profile", "fast", "--emu-port", "0", "--url_tokenizer_model",
                          g_tok_url,   NULL};
    h_emu *e = &g_emus[0];
    h_spawn_opts opts = {.split_stderr = true};
    assert_true(h_emu_spawn_opts(e, args, false, 0, &opts));
    assert_true(h_emu_wait(e, 10.0));
    assert_killed_by(e, SIGABRT);
    char *err = h_emu_stderr(e);
    /* Under qemu-user (make test-arm64) the emulator adds its own line after the child's crash:
     * that one line, and nothing else, is dropped before the comparison. */
    static const char *const qemu_lines[] = {"qemu: uncaught target signal 6 (Aborted)\n",
                                             "qemu: uncaught target signal 6 (Aborted) - core dumped\n"};
    for (size_t i = 0; i < sizeof qemu_lines / sizeof qemu_lines[0]; i++) {
        size_t len = strlen(err), qlen = strlen(qemu_lines[i]);
        if (len >= qlen && !strcmp(err + len - qlen, qemu_lines[i])) {
            err[len - qlen] = '\0';
            break;
        }
    }
    assert_string_equal(err, "terminate called after throwing an instance of 'std::invalid_argument'\n"
                             "  what():  stoi\n");
    assert_int_equal(h_count(&g_tok, "/"), 0); /* before LLM::Init */
    free(err);
    h_emu_kill(e);
}

/* ---- readiness and init time ---- */

static void test_port_does_not_answer_before_server_running_line(void **state)
{
    (void)state;
    int port = h_free_port();
    assert_true(port > 0);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "fast",
                          "--emu-init-seconds",
                          "0.5",
                          "--emu-port",
                          port_s,
                          "--url_tokenizer_model",
                          g_tok_url,
                          NULL};
    h_emu *e = &g_emus[0];
    double t0 = h_now();
    assert_true(h_emu_spawn(e, args, false, 0));
    int refused_before_line = 0;
    h_http answer = {0};
    double end = t0 + 10.0;
    while (h_now() < end) {
        bool line_before = h_emu_log_has(e, "Server running on port");
        answer = h_request_to(port, "GET", "/api/generate_provider", NULL, 1.0);
        if (answer.status)
            break;
        h_http_free(&answer);
        refused_before_line += !line_before;
        h_sleep(0.01);
    }
    double answered_after = h_now() - t0;
    /* whatever answered, the line was already out (checked after the answer) */
    assert_true(h_emu_log_has(e, "Server running on port"));
    assert_int_equal(answer.status, 200);
    assert_string_equal(answer.body.data, "{\"done\":true,\"response\":\"\"}");
    h_http_free(&answer);
    assert_true(answered_after >= 0.5);
    assert_true(refused_before_line >= 5); /* it was polled (and refused) during the 0.5 s init */
    h_emu_kill(e);
}

static void test_init_seconds_overrides_profile_init_time(void **state)
{
    (void)state;
    /* the pi5 profile would take 133 s; the slow-init option sets 0.5 s */
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "qwen3-4b-pi5",
                          "--emu-init-seconds",
                          "0.5",
                          "--emu-port",
                          "0",
                          "--url_tokenizer_model",
                          g_tok_url,
                          NULL};
    h_emu *e = &g_emus[0];
    double t0 = h_now();
    assert_true(h_emu_spawn(e, args, true, 10.0));
    double ready = h_now() - t0;
    char *log = h_emu_log(e);
    double shown = last_progress_elapsed(log, 25);
    assert_true(ready >= 0.5);
    assert_true(ready < 0.5 + 3.0);
    assert_true(shown >= 0.5 && shown < 0.5 + 1.0);
    free(log);
    h_emu_kill(e);
}

static void assert_profile_init_time(const char *const *args, int steps, double want_s)
{
    h_emu *e = &g_emus[0];
    double t0 = h_now();
    assert_true(h_emu_spawn(e, args, true, 10.0));
    double ready = h_now() - t0;
    char *log = h_emu_log(e);
    double shown = last_progress_elapsed(log, steps);
    free(log);
    if (ready < want_s || ready > want_s + 3.0 || shown < want_s - 0.005 || shown > want_s + 1.0)
        fail_msg("init: want %.3f s, ready after %.3f s, progress bar shows %.2f s", want_s, ready, shown);
    h_emu_kill(e);
}

static void test_pi5_profile_init_time_is_133s_scaled(void **state)
{
    (void)state;
    /* AXCL mode defaults to the qwen3-4b-pi5 profile: 133.16 s x 0.005 */
    assert_profile_init_time(ARGS("--devices", "0", "--emu-time-scale", "0.005", "--emu-port", "0",
                                  "--url_tokenizer_model", g_tok_url, "--axmodel_num", "36"),
                             39, 133.16 * 0.005);
}

static void test_ax650_profile_init_time_is_48s_scaled(void **state)
{
    (void)state;
    /* AX650 mode defaults to the qwen3-4b-ax650 profile: 48.03 s x 0.01 */
    assert_profile_init_time(
        ARGS("--emu-mode", "ax650", "--emu-time-scale", "0.01", "--emu-port", "0", "--url_tokenizer_model", g_tok_url),
        25, 48.03 * 0.01);
}

/* ---- post_config.json ---- */

static char *chat(const h_emu *e, const char *content)
{
    strbuf body = {0};
    sb_printf(&body, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", content);
    h_http r = h_post(e, "/api/chat", body.data);
    sb_free(&body);
    assert_int_equal(r.status, 200);
    char *out = sb_steal(&r.body);
    h_http_free(&r);
    return out;
}

static void test_post_config_in_working_directory_is_loaded_and_logged(void **state)
{
    (void)state;
    work_dir *d = &g_dirs[0];
    dir_make(d, POST_CONFIG_TOP_K(1));
    h_emu *e = &g_emus[0];
    start_fast_in(e, d->path, NULL);
    char *log = h_emu_log(e);
    char *prefix = log_prefix('I', "load_config", 282);
    strbuf want = {0};
    sb_printf(&want,
              "%sload config: \n{\n    \"enable_repetition_penalty\": false,\n    \"enable_temperature\": false,\n"
              "    \"enable_top_k_sampling\": true,\n    \"enable_top_p_sampling\": false,\n"
              "    \"penalty_window\": 20,\n    \"repetition_penalty\": 1.2,\n    \"temperature\": 0.9,\n"
              "    \"top_k\": 1,\n    \"top_p\": 0.8\n}\n",
              prefix);
    const char *block[] = {want.data, NULL};
    assert_in_order(log, block);
    assert_null(strstr(log, "open failed"));
    const char *seq[] = {"]: prefill_max_token_num : 2048\n", "load config: \n", "]: LLM init ok\n", NULL};
    assert_in_order(log, seq);
    sb_free(&want);
    free(prefix);
    free(log);
    h_emu_kill(e);
    dir_remove(d);
}

static void test_post_config_top_k_1_gives_greedy_echo(void **state)
{
    (void)state;
    work_dir *d = &g_dirs[0];
    dir_make(d, POST_CONFIG_TOP_K(1));
    h_emu *e = &g_emus[0];
    start_fast_in(e, d->path, NULL);
    char *reply = chat(e, "Say hi");
    assert_string_equal(reply, SAY_HI_CHAT_BODY);
    free(reply);
    h_emu_kill(e);
    dir_remove(d);
}

static void test_missing_post_config_logs_two_errors_and_is_greedy(void **state)
{
    (void)state;
    work_dir *d = &g_dirs[0];
    dir_make(d, NULL);
    h_emu *e = &g_emus[0];
    start_fast_in(e, d->path, NULL);
    char *log = h_emu_log(e);
    char *open_failed = log_prefix('E', "load_config", 267), *load_failed = log_prefix('E', "Init", 204);
    strbuf l1 = {0}, l2 = {0};
    sb_printf(&l1, "%sconfig file(post_config.json) open failed\n", open_failed);
    sb_printf(&l2, "%sload postprocess config(post_config.json) failed\n", load_failed);
    const char *seq[] = {"]: prefill_max_token_num : 2048\n", l1.data, l2.data, "]: LLM init ok\n", NULL};
    assert_in_order(log, seq);
    assert_null(strstr(log, "load config:"));
    char *reply = chat(e, "Say hi");
    assert_string_equal(reply, SAY_HI_CHAT_BODY);
    sb_free(&l1);
    sb_free(&l2);
    free(open_failed);
    free(load_failed);
    free(reply);
    free(log);
    h_emu_kill(e);
    dir_remove(d);
}

/* The characters of s, sorted (a shuffle of tokens keeps them). */
static char *sorted_chars(const char *s)
{
    char *c = xstrdup(s);
    size_t n = strlen(c);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && (unsigned char)c[j - 1] > (unsigned char)c[j]; j--) {
            char t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    return c;
}

static void test_post_config_top_k_5_gives_shuffled_reply(void **state)
{
    (void)state;
    const char *prompt = "one two three four five six seven eight";
    work_dir *greedy_dir = &g_dirs[0], *topk_dir = &g_dirs[1];
    dir_make(greedy_dir, POST_CONFIG_TOP_K(1));
    dir_make(topk_dir, POST_CONFIG_TOP_K(5));
    h_emu greedy, topk;
    start_fast_in(&greedy, greedy_dir->path, NULL);
    char *echo = chat(&greedy, prompt);
    h_emu_kill(&greedy);
    start_fast_in(&topk, topk_dir->path, NULL);
    char *shuffled = chat(&topk, prompt);
    h_emu_kill(&topk);

    assert_string_equal(echo, "{\"done\":true,\"message\":\"" THINK_PREFIX_JSON
                              "one two three four five six seven eight/no_think\"}");
    const char *body = "{\"done\":true,\"message\":\"" THINK_PREFIX_JSON;
    assert_starts_with(shuffled, body); /* the think block is not shuffled */
    assert_string_not_equal(shuffled, echo);
    char *a = sorted_chars(echo), *b = sorted_chars(shuffled);
    assert_string_equal(a, b); /* same tokens, other order */
    free(a);
    free(b);
    free(echo);
    free(shuffled);
    dir_remove(greedy_dir);
    dir_remove(topk_dir);
}

/* ---- tokenizer unreachable ---- */

static void assert_connect_retries_then_255(h_emu *e, const char *url, double started, double scale)
{
    assert_true(h_emu_wait(e, 10.0));
    double took = h_now() - started;
    assert_exited_with(e, 255);
    char *log = h_emu_log(e);
    const char *seq[12];
    char lines[10][160];
    for (int i = 0; i < 10; i++) {
        snprintf(lines[i], sizeof lines[i], "]: connect failed %s, try again in %d/10\n", url, i + 1);
        seq[i] = lines[i];
    }
    char last[160];
    snprintf(last, sizeof last, "]: connect %s failed\n", url);
    seq[10] = last;
    seq[11] = NULL;
    assert_in_order(log, seq);
    assert_int_equal(count_of(log, "]: connect failed "), 10);
    assert_non_null(strstr(strstr(log, last), "]: lLaMa.Init failed\n"));
    assert_null(strstr(log, "Server running"));
    assert_null(strstr(log, "LLM init ok"));
    double want = 10 * 1.0 * scale;
    if (took < want || took > want + 2.0)
        fail_msg("10 tries 1 s apart x %.2f should take %.2f s; took %.3f s", scale, want, took);
    free(log);
}

static void test_dead_tokenizer_port_retries_10_times_then_exits_255(void **state)
{
    (void)state;
    int dead = h_free_port();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", dead);
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "fast",
                          "--emu-time-scale",
                          "0.01",
                          "--emu-port",
                          "0",
                          "--url_tokenizer_model",
                          url,
                          NULL};
    h_emu *e = &g_emus[0];
    double t0 = h_now();
    assert_true(h_emu_spawn(e, args, false, 0));
    assert_connect_retries_then_255(e, url, t0, 0.01);
    h_emu_kill(e);
}

static void test_tokenizer_unreachable_fault_retries_10_times_then_exits_255(void **state)
{
    (void)state;
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "fast",
                          "--emu-time-scale",
                          "0.01",
                          "--emu-port",
                          "0",
                          "--url_tokenizer_model",
                          g_tok_url,
                          "--emu-tokenizer-unreachable",
                          "1",
                          NULL};
    h_emu *e = &g_emus[0];
    double t0 = h_now();
    assert_true(h_emu_spawn(e, args, false, 0));
    assert_connect_retries_then_255(e, g_tok_url, t0, 0.01);
    assert_int_equal(h_count(&g_tok, "/"), 0); /* the live service never heard from it */
    h_emu_kill(e);
}

/* ---- port clash ---- */

static void test_port_in_use_prints_server_running_and_exits_0(void **state)
{
    (void)state;
    h_emu *first = &g_emus[0];
    start_fast_in(first, NULL, NULL);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", first->port);
    const char *args[] = {"--devices", "0", "--emu-profile", "fast", "--emu-port", port_s, "--url_tokenizer_model",
                          g_tok_url,   NULL};
    h_emu *second = &g_emus[1];
    h_spawn_opts opts = {.split_stderr = true};
    assert_true(h_emu_spawn_opts(second, args, false, 0, &opts));
    assert_true(h_emu_wait(second, 10.0));
    assert_exited_with(second, 0);
    char *log = h_emu_log(second), *err = h_emu_stderr(second);
    strbuf line = {0}, why = {0};
    sb_printf(&line, "]: LLM init ok\nServer running on port %d...\n", first->port);
    sb_printf(&why, "axllama-emu: cannot listen on 127.0.0.1:%d\n", first->port);
    assert_non_null(strstr(log, line.data));
    assert_string_equal(err, why.data);
    h_http r = h_get(first, "/api/stop"); /* the first one still serves */
    assert_http(&r, 200, STATUS_OK);
    sb_free(&line);
    sb_free(&why);
    free(log);
    free(err);
    h_emu_kill(second);
    h_emu_kill(first);
}

/* ---- signals ---- */

static void post_generate(const h_emu *e, const char *prompt)
{
    strbuf body = {0};
    sb_printf(&body, "{\"prompt\":\"%s\"}", prompt);
    h_http r = h_post(e, "/api/generate", body.data);
    sb_free(&body);
    assert_http(&r, 200, STATUS_OK);
}

static void test_sigint_finishes_running_and_queued_generations_then_exits_0(void **state)
{
    (void)state;
    /* 54 tokens each at 125 tok/s (~0.45 s); the worker picks each task up 0.5 s after it was
     * queued, so both generates are accepted before the first one starts */
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--emu-time-scale", "4", "--emu-reply-tokens", "50", "--emu-dispatch-delay", "0.5"));
    post_generate(e, "alpha");
    post_generate(e, "gamma");
    assert_true(h_emu_wait_log(e, "input token num", 5.0)); /* the first one runs */
    assert_int_equal(h_count(&g_tok, "/encode"), 1);        /* the second is only queued */
    kill(e->pid, SIGINT);
    assert_true(h_emu_wait(e, 10.0));
    assert_exited_with(e, 0);

    /* both ran to the end: 18 pieces of 3 ids + the final decode of all 54, each */
    char *first = h_body(&g_tok, "/encode", 0), *second = h_body(&g_tok, "/encode", 1);
    assert_non_null(second);
    assert_non_null(strstr(first, "\"text\":\"alpha\""));
    assert_non_null(strstr(second, "\"text\":\"gamma\""));
    assert_int_equal(h_count(&g_tok, "/encode"), 2);
    assert_int_equal(decodes_of_length(3), 2 * 18);
    assert_int_equal(decodes_of_length(54), 2);
    assert_int_equal(h_count(&g_tok, "/decode"), 2 * 19);
    char *log = h_emu_log(e);
    assert_int_equal(count_of(log, "hit eos"), 2);
    free(log);
    free(first);
    free(second);
    h_emu_kill(e);
}

static void test_second_sigint_does_not_cut_shutdown_short(void **state)
{
    (void)state;
    /* 54 tokens at 125 tok/s: ~0.45 s */
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--emu-time-scale", "4", "--emu-reply-tokens", "50"));
    post_generate(e, "alpha");
    assert_true(wait_count("/decode", 1, 5.0)); /* it streams */
    kill(e->pid, SIGINT);
    /* the first SIGINT took: the HTTP server is gone (the vendor's handler stops it), the worker
     * still finishes; only then the second, which must not cut that short */
    bool listening = true;
    for (double end = h_now() + 5; listening && h_now() < end; h_sleep(0.005))
        listening = h_tcp_connects(e->port, 0.2);
    assert_false(listening);
    kill(e->pid, SIGINT);
    assert_true(h_emu_wait(e, 10.0));
    assert_exited_with(e, 0);
    assert_int_equal(decodes_of_length(54), 1); /* the generation ran to its end */
    h_emu_kill(e);
}

static void test_sigint_when_idle_exits_0(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, NULL);
    kill(e->pid, SIGINT);
    assert_true(h_emu_wait(e, 5.0));
    assert_exited_with(e, 0);
    h_emu_kill(e);
}

static void test_sigterm_during_generation_kills_at_once(void **state)
{
    (void)state;
    /* 204 tokens at 125 tok/s: ~1.6 s of generation */
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--emu-time-scale", "4", "--emu-reply-tokens", "200"));
    post_generate(e, "alpha");
    assert_true(wait_count("/decode", 1, 5.0)); /* it streams */
    double t0 = h_now();
    kill(e->pid, SIGTERM);
    assert_true(h_emu_wait(e, 5.0));
    double took = h_now() - t0;
    assert_killed_by(e, SIGTERM);
    assert_true(took < 0.5);
    assert_int_equal(decodes_of_length(204), 0); /* never finished */
    assert_true(h_count(&g_tok, "/decode") < 68);
    char *log = h_emu_log(e);
    assert_null(strstr(log, "hit eos"));
    free(log);
    h_emu_kill(e);
}

/* ---- faults ---- */

static void test_crash_at_5_of_generation_2_aborts_mid_stream(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--emu-crash-at", "5@2"));
    post_generate(e, "Say hi");
    char *text = h_collect_generation(e, 10.0);
    assert_string_equal(text, SAY_HI_REPLY); /* generation 1 unaffected */
    free(text);
    assert_false(h_emu_wait(e, 0.05));
    size_t decodes_before = h_count(&g_tok, "/decode");

    post_generate(e, "Say hi");
    assert_true(h_emu_wait(e, 10.0));
    assert_killed_by(e, SIGABRT);
    /* generation 2 streamed its first piece (tokens 1-3), then died producing token 5 */
    assert_int_equal(h_count(&g_tok, "/encode"), 2);
    assert_int_equal(h_count(&g_tok, "/decode"), decodes_before + 1);
    char *piece = h_body(&g_tok, "/decode", decodes_before);
    assert_non_null(piece);
    assert_starts_with(piece, "{\"token_ids\":[151667,271,151668],");
    char *log = h_emu_log(e);
    const char *second_run = strstr(strstr(log, "input token num") + 1, "input token num");
    assert_non_null(second_run);
    const char *seq[] = {"<think>\n\n</think>", "axllama-emu: fault: crash at token 5 of generation 2\n", NULL};
    assert_in_order(second_run, seq);
    assert_int_equal(count_of(log, "hit eos"), 1);
    free(piece);
    free(log);
    h_emu_kill(e);
}

static void test_hang_at_3_keeps_sockets_but_never_answers(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--emu-hang-at", "3"));
    post_generate(e, "Say hi");
    assert_true(h_emu_wait_log(e, "axllama-emu: fault: hang at token 3 of generation 1\n", 5.0));
    assert_false(h_emu_wait(e, 0.2)); /* alive */
    assert_true(h_tcp_connects(e->port, 1.0));
    double t0 = h_now();
    h_http r = h_request_to(e->port, "GET", "/api/stop", NULL, 0.5);
    double waited = h_now() - t0;
    assert_int_equal(r.status, 0);
    h_http_free(&r);
    assert_true(waited >= 0.45); /* timed out, not refused */
    r = h_request_to(e->port, "GET", "/api/generate_provider", NULL, 0.5);
    assert_int_equal(r.status, 0);
    h_http_free(&r);
    assert_int_equal(h_count(&g_tok, "/decode"), 0); /* token 3 never came, nor its piece */
    assert_false(h_emu_wait(e, 0.01));
    h_emu_kill(e);
}

static void test_hung_process_ignores_sigint_and_needs_a_kill(void **state)
{
    (void)state;
    h_emu *e = &g_emus[0];
    start_fast_in(e, NULL, ARGS("--emu-hang-at", "3"));
    post_generate(e, "Say hi");
    assert_true(h_emu_wait_log(e, "axllama-emu: fault: hang at token 3 of generation 1\n", 5.0));
    kill(e->pid, SIGINT); /* waits for the running task, which never ends */
    assert_false(h_emu_wait(e, 0.5));
    kill(e->pid, SIGTERM);
    assert_true(h_emu_wait(e, 5.0));
    assert_killed_by(e, SIGTERM);
    h_emu_kill(e);
}

static void test_exit_during_init_3_7_exits_7_after_step_2(void **state)
{
    (void)state;
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "fast",
                          "--emu-port",
                          "0",
                          "--url_tokenizer_model",
                          g_tok_url,
                          "--emu-exit-during-init",
                          "3:7",
                          NULL};
    h_emu *e = &g_emus[0];
    assert_true(h_emu_spawn(e, args, false, 0));
    assert_true(h_emu_wait(e, 10.0));
    assert_exited_with(e, 7);
    char *log = h_emu_log(e);
    const char *seq[] = {"  1 /  25 [", "  2 /  25 [", "]: axllama-emu: fault: exit during init at step 3\n", NULL};
    assert_in_order(log, seq);
    assert_null(strstr(log, "  3 /  25 ["));
    assert_null(strstr(log, "LLM init ok"));
    assert_null(strstr(log, "Server running"));
    free(log);
    h_emu_kill(e);
}

static void test_exit_during_init_without_code_exits_255(void **state)
{
    (void)state;
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "fast",
                          "--emu-port",
                          "0",
                          "--url_tokenizer_model",
                          g_tok_url,
                          "--emu-exit-during-init",
                          "5",
                          NULL};
    h_emu *e = &g_emus[0];
    assert_true(h_emu_spawn(e, args, false, 0));
    assert_true(h_emu_wait(e, 10.0));
    assert_exited_with(e, 255);
    char *log = h_emu_log(e);
    const char *seq[] = {"  4 /  25 [", "]: axllama-emu: fault: exit during init at step 5\n", NULL};
    assert_in_order(log, seq);
    assert_null(strstr(log, "  5 /  25 ["));
    assert_null(strstr(log, "Server running"));
    free(log);
    h_emu_kill(e);
}

/* Starts an emulator (crash fault from the flag or from the environment), generates once, and
 * returns its wait status. */
static int crash_at_1_status(bool from_env)
{
    const char *args[] = {"--devices",
                          "0",
                          "--emu-profile",
                          "fast",
                          "--emu-port",
                          "0",
                          "--url_tokenizer_model",
                          g_tok_url,
                          "--emu-crash-at",
                          "1",
                          NULL};
    if (from_env)
        args[8] = NULL; /* the fault comes from AXLLAMA_EMU_ARGS only */
    h_spawn_opts opts = {.emu_args = from_env ? "--emu-crash-at 1" : NULL};
    h_emu *e = &g_emus[0];
    assert_true(h_emu_spawn_opts(e, args, true, 10.0, &opts));
    post_generate(e, "Say hi");
    assert_true(h_emu_wait(e, 10.0));
    char *log = h_emu_log(e);
    assert_non_null(strstr(log, "axllama-emu: fault: crash at token 1 of generation 1\n"));
    assert_null(strstr(log, "hit eos"));
    free(log);
    h_emu_kill(e);
    return e->status;
}

static void test_emu_args_env_crash_at_1_acts_like_the_flag(void **state)
{
    (void)state;
    int by_env = crash_at_1_status(true);
    assert_int_equal(h_count(&g_tok, "/encode"), 1);
    assert_int_equal(h_count(&g_tok, "/decode"), 0);
    h_tokenizer_forget(&g_tok);
    int by_flag = crash_at_1_status(false);
    assert_int_equal(h_count(&g_tok, "/encode"), 1);
    assert_int_equal(h_count(&g_tok, "/decode"), 0);
    assert_true(WIFSIGNALED(by_env) && WTERMSIG(by_env) == SIGABRT);
    assert_int_equal(by_env, by_flag);
}

#define T(test) cmocka_unit_test_setup_teardown(test, test_setup, test_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cli_live_print_is_undefined_option_exit_1),
        T(test_cli_port_is_undefined_option_exit_1),
        T(test_cli_bool_true_is_invalid_value_exit_1),
        T(test_cli_help_prints_usage_exit_0),
        T(test_cli_axcl_without_devices_needs_option_exit_1),
        T(test_cli_ax650_mode_rejects_devices_exit_1),
        T(test_startup_logs_vendor_sequence_in_order),
        T(test_startup_tokenizer_calls_uid_bos_eos_then_reset_with_system_prompt),
        T(test_startup_reset_omits_empty_system_prompt),
        T(test_startup_reset_omits_absent_system_prompt),
        T(test_ax650_mode_starts_without_devices_or_axcl_worker_line),
        T(test_devices_list_starts_one_axcl_worker_per_device),
        T(test_devices_not_a_number_terminates_like_stoi),
        T(test_port_does_not_answer_before_server_running_line),
        T(test_init_seconds_overrides_profile_init_time),
        T(test_pi5_profile_init_time_is_133s_scaled),
        T(test_ax650_profile_init_time_is_48s_scaled),
        T(test_post_config_in_working_directory_is_loaded_and_logged),
        T(test_post_config_top_k_1_gives_greedy_echo),
        T(test_missing_post_config_logs_two_errors_and_is_greedy),
        T(test_post_config_top_k_5_gives_shuffled_reply),
        T(test_dead_tokenizer_port_retries_10_times_then_exits_255),
        T(test_tokenizer_unreachable_fault_retries_10_times_then_exits_255),
        T(test_port_in_use_prints_server_running_and_exits_0),
        T(test_sigint_finishes_running_and_queued_generations_then_exits_0),
        T(test_second_sigint_does_not_cut_shutdown_short),
        T(test_sigint_when_idle_exits_0),
        T(test_sigterm_during_generation_kills_at_once),
        T(test_crash_at_5_of_generation_2_aborts_mid_stream),
        T(test_hang_at_3_keeps_sockets_but_never_answers),
        T(test_hung_process_ignores_sigint_and_needs_a_kill),
        T(test_exit_during_init_3_7_exits_7_after_step_2),
        T(test_exit_during_init_without_code_exits_255),
        T(test_emu_args_env_crash_at_1_acts_like_the_flag),
    };
    return cmocka_run_group_tests_name("emu_main", tests, group_setup, group_teardown);
}
