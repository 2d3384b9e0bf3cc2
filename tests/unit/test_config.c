/* Tests for config: OLLAMA_HOST parsing (every example of Ollama's envconfig tests, spec
 * docs/spec/ollama-api.md §4.1), the other OLLAMA_* variables (§3.2, §4.2, §4.4, §4.6), axllama's AXLLAMA_*
 * settings, config_env_value (the CLI client's reading of OLLAMA_HOST), Go's
 * time.ParseDuration and a request's keep_alive value. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"

static const char *const config_vars[] = {"OLLAMA_HOST",
                                          "OLLAMA_MAX_QUEUE",
                                          "OLLAMA_KEEP_ALIVE",
                                          "OLLAMA_LOAD_TIMEOUT",
                                          "OLLAMA_ORIGINS",
                                          "OLLAMA_DEBUG",
                                          "AXLLAMA_MODELS",
                                          "AXLLAMA_TOKENIZER_DIR",
                                          "AXLLAMA_CACHE",
                                          "AXLLAMA_STALL_TIMEOUT",
                                          "AXLLAMA_RESET_EVERY_TURN",
                                          "AXLLAMA_CONTEXT_RETAIN",
                                          "AXLLAMA_RESTORE",
                                          "AXLLAMA_RUNTIME_PROBE",
                                          "AXLLAMA_MAX_BODY",
                                          "AXLLAMA_MAX_CONNECTIONS",
                                          "AXLLAMA_MAX_CONNECTIONS_PER_IP",
                                          "AXLLAMA_REQUEST_TIMEOUT",
                                          "AXLLAMA_MAX_QUEUED_BYTES",
                                          "AXLLAMA_MAX_STOP",
                                          "AXLLAMA_MAX_TOOLS"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof config_vars / sizeof config_vars[0]; i++)
        unsetenv(config_vars[i]);
    return 0;
}

/* ---------------- OLLAMA_HOST ---------------- */

typedef struct {
    const char *value;
    const char *host;
    int port;
} host_case;

static void check_hosts(const host_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char host[256];
        int port = -1;
        memset(host, 'x', sizeof host);
        parse_ollama_host(cases[i].value, host, sizeof host, &port);
        if (strcmp(host, cases[i].host) != 0 || port != cases[i].port)
            fail_msg("OLLAMA_HOST=[%s]: got host [%s] port %d, want [%s] %d", cases[i].value, host, port, cases[i].host,
                     cases[i].port);
    }
}

#define CHECK_HOSTS(...)                                       \
    do {                                                       \
        static const host_case cases_[] = {__VA_ARGS__};       \
        check_hosts(cases_, sizeof cases_ / sizeof cases_[0]); \
    } while (0)

/* Every case of Ollama's envconfig TestHost (config_test.go), as host and port. */
static void test_host_every_ollama_example(void **state)
{
    (void)state;
    CHECK_HOSTS({"", "127.0.0.1", 11434}, {"1.2.3.4", "1.2.3.4", 11434}, {":1234", "", 1234},
                {"1.2.3.4:1234", "1.2.3.4", 1234}, {"example.com", "example.com", 11434},
                {"example.com:1234", "example.com", 1234}, {":0", "", 0}, {":66000", "", 11434}, {":-1", "", 11434},
                {"[::1]", "::1", 11434}, {"[::]", "::", 11434}, {"::1", "::1", 11434}, {"[::1]:1337", "::1", 1337},
                {" 1.2.3.4 ", "1.2.3.4", 11434}, {"\"1.2.3.4\"", "1.2.3.4", 11434},
                {" \" 1.2.3.4 \" ", "1.2.3.4", 11434}, {"'1.2.3.4'", "1.2.3.4", 11434},
                {"http://1.2.3.4", "1.2.3.4", 80}, {"http://1.2.3.4:4321", "1.2.3.4", 4321},
                {"https://1.2.3.4", "1.2.3.4", 443}, {"https://1.2.3.4:4321", "1.2.3.4", 4321},
                {"https://example.com/ollama", "example.com", 443}, {"ollama.com", "ollama.com", 443});
}

static void test_host_unset_is_loopback_default_port(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    parse_ollama_host(NULL, host, sizeof host, &port);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 11434);
}

static void test_host_trims_spaces_and_quotes(void **state)
{
    (void)state;
    CHECK_HOSTS({"\t 0.0.0.0:8080 \n", "0.0.0.0", 8080}, {"'\"example.com\"'", "example.com", 11434},
                {"\" :5000 \"", "", 5000});
}

static void test_host_scheme_sets_default_port(void **state)
{
    (void)state;
    CHECK_HOSTS({"example.com", "example.com", 11434}, {"http://example.com", "example.com", 80},
                {"https://example.com", "example.com", 443}, {"tcp://example.com", "example.com", 11434});
}

static void test_host_port_only_means_all_interfaces(void **state)
{
    (void)state;
    CHECK_HOSTS({":11500", "", 11500}, {"http://:8080", "", 8080});
}

static void test_host_ipv6_brackets_removed_and_canonical(void **state)
{
    (void)state;
    CHECK_HOSTS({"[::1]:80", "::1", 80}, {"0:0::1", "::1", 11434}, {"[0:0:0:0:0:0:0:0]", "::", 11434},
                {"::ffff:1.2.3.4", "1.2.3.4", 11434});
}

static void test_host_bad_port_uses_default_of_scheme(void **state)
{
    (void)state;
    CHECK_HOSTS({"1.2.3.4:abc", "1.2.3.4", 11434}, {"1.2.3.4:", "1.2.3.4", 11434}, {"http://h:99999", "h", 80},
                {"https://h:-5", "h", 443}, {"h:+80", "h", 80});
}

static void test_host_path_is_ignored(void **state)
{
    (void)state;
    CHECK_HOSTS({"http://10.0.0.2:9000/ollama/api", "10.0.0.2", 9000}, {"localhost/x", "localhost", 11434});
}

static void test_host_too_long_for_buffer_is_not_truncated(void **state)
{
    (void)state;
    char host[12];
    int port = 0;
    parse_ollama_host("averyveryverylonghostname.example:81", host, sizeof host, &port);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 81);
}

/* ---------------- the environment ---------------- */

static const char *const default_origins[] = {
    "http://localhost", "https://localhost", "http://localhost:*", "https://localhost:*",
    "http://127.0.0.1", "https://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1:*",
    "http://0.0.0.0",   "https://0.0.0.0",   "http://0.0.0.0:*",   "https://0.0.0.0:*",
    "app://*",          "file://*",          "tauri://*",          "vscode-webview://*",
    "vscode-file://*"};
#define N_DEFAULT_ORIGINS (sizeof default_origins / sizeof default_origins[0])

static size_t count_list(char **list)
{
    size_t n = 0;
    while (list && list[n])
        n++;
    return n;
}

static void test_env_defaults(void **state)
{
    (void)state;
    server_config c;
    char *warnings = (char *)"unset";
    server_config_from_env(&c, &warnings);
    assert_null(warnings);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 11434);
    assert_int_equal(c.max_queue, 512);
    assert_true(c.keep_alive_s == 300);
    assert_true(c.load_timeout_s == 300);
    assert_false(c.debug);
    assert_null(c.models_dir);
    assert_null(c.tokenizer_dir);
    assert_null(c.cache_dir);
    assert_true(c.stall_timeout_s == 60);
    assert_false(c.reset_every_turn);
    assert_true(c.context_retain == 0.5);
    assert_true(c.restore);
    assert_true(c.runtime_probe_s == 5);
    assert_int_equal(count_list(c.origins), N_DEFAULT_ORIGINS);
    for (size_t i = 0; i < N_DEFAULT_ORIGINS; i++)
        assert_string_equal(c.origins[i], default_origins[i]);
    server_config_free(&c);
    assert_null(c.origins);
}

static void test_env_host_is_parsed(void **state)
{
    (void)state;
    setenv("OLLAMA_HOST", "0.0.0.0:11500", 1);
    server_config c;
    char *warnings = NULL;
    server_config_from_env(&c, &warnings);
    assert_null(warnings);
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 11500);
    server_config_free(&c);
}

static void test_env_host_bad_port_warns(void **state)
{
    (void)state;
    setenv("OLLAMA_HOST", "1.2.3.4:http", 1);
    server_config c;
    char *warnings = NULL;
    server_config_from_env(&c, &warnings);
    assert_string_equal(c.host, "1.2.3.4");
    assert_int_equal(c.port, 11434);
    assert_non_null(warnings);
    assert_non_null(strstr(warnings, "OLLAMA_HOST"));
    assert_non_null(strstr(warnings, "\"http\""));
    free(warnings);
    server_config_free(&c);
}

static void test_env_origins_listed_first_then_defaults(void **state)
{
    (void)state;
    setenv("OLLAMA_ORIGINS", "http://10.0.0.1, chrome-extension://*,,moz-extension://*", 1);
    server_config c;
    server_config_from_env(&c, NULL);
    assert_int_equal(count_list(c.origins), 3 + N_DEFAULT_ORIGINS);
    assert_string_equal(c.origins[0], "http://10.0.0.1");
    assert_string_equal(c.origins[1], "chrome-extension://*");
    assert_string_equal(c.origins[2], "moz-extension://*");
    for (size_t i = 0; i < N_DEFAULT_ORIGINS; i++)
        assert_string_equal(c.origins[3 + i], default_origins[i]);
    server_config_free(&c);
}

static void test_env_origins_star_kept(void **state)
{
    (void)state;
    setenv("OLLAMA_ORIGINS", "*", 1);
    server_config c;
    server_config_from_env(&c, NULL);
    assert_string_equal(c.origins[0], "*");
    assert_int_equal(count_list(c.origins), 1 + N_DEFAULT_ORIGINS);
    server_config_free(&c);
}

typedef struct {
    const char *value;
    double want;
    bool warns;
} env_number_case;

static void check_env_numbers(const char *var, const env_number_case *cases, size_t n, int field)
{
    for (size_t i = 0; i < n; i++) {
        setenv(var, cases[i].value, 1);
        server_config c;
        char *warnings = NULL;
        server_config_from_env(&c, &warnings);
        double got = field == 0    ? c.keep_alive_s
                     : field == 1  ? c.load_timeout_s
                     : field == 2  ? (double)c.max_queue
                     : field == 3  ? c.stall_timeout_s
                     : field == 4  ? c.context_retain
                     : field == 5  ? c.runtime_probe_s
                     : field == 6  ? (double)c.max_body_bytes
                     : field == 7  ? (double)c.max_connections
                     : field == 8  ? (double)c.max_connections_per_ip
                     : field == 9  ? c.request_timeout_s
                     : field == 10 ? (double)c.max_queued_bytes
                     : field == 11 ? (double)c.max_stop
                                   : (double)c.max_tools;
        if (got != cases[i].want || (warnings != NULL) != cases[i].warns)
            fail_msg("%s=[%s]: got %g (warnings: %s), want %g%s", var, cases[i].value, got,
                     warnings ? warnings : "none", cases[i].want, cases[i].warns ? " with a warning" : "");
        if (warnings)
            assert_non_null(strstr(warnings, var));
        free(warnings);
        server_config_free(&c);
    }
}

#define CHECK_ENV(var, field, ...)                                               \
    do {                                                                         \
        static const env_number_case cases_[] = {__VA_ARGS__};                   \
        check_env_numbers(var, cases_, sizeof cases_ / sizeof cases_[0], field); \
    } while (0)

static void test_env_keep_alive_duration_or_seconds(void **state)
{
    (void)state;
    CHECK_ENV("OLLAMA_KEEP_ALIVE", 0, {"10m", 600, false}, {"1h30m", 5400, false}, {"3600", 3600, false},
              {"0", 0, false}, {"'2m'", 120, false}, {"1.5s", 1.5, false}, {"", 300, false});
}

static void test_env_keep_alive_negative_is_forever(void **state)
{
    (void)state;
    CHECK_ENV("OLLAMA_KEEP_ALIVE", 0, {"-1", -1, false}, {"-1m", -1, false}, {"-300", -1, false});
}

static void test_env_keep_alive_invalid_warns_default(void **state)
{
    (void)state;
    CHECK_ENV("OLLAMA_KEEP_ALIVE", 0, {"forever", 300, true}, {"1.5", 300, true}, {"5 m", 300, true});
}

static void test_env_load_timeout(void **state)
{
    (void)state;
    CHECK_ENV("OLLAMA_LOAD_TIMEOUT", 1, {"10m", 600, false}, {"120", 120, false}, {"0", 0, false}, {"-1", 0, false},
              {"-5m", 0, false}, {"soon", 300, true});
}

static void test_env_max_queue_positive_integer(void **state)
{
    (void)state;
    CHECK_ENV("OLLAMA_MAX_QUEUE", 2, {"10", 10, false}, {"1", 1, false}, {"0", 512, true}, {"-5", 512, true},
              {"+5", 512, true}, {"ten", 512, true}, {"99999999999999999999999", 512, true});
}

static void test_env_debug_any_value_but_0_or_false(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool debug;
    } cases[] = {{"1", true},      {"true", true},   {"yes", true},  {"2", true}, {"0", false},
                 {"false", false}, {"FALSE", false}, {"'0'", false}, {"", false}, {"  ", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("OLLAMA_DEBUG", cases[i].value, 1);
        server_config c;
        server_config_from_env(&c, NULL);
        if (c.debug != cases[i].debug)
            fail_msg("OLLAMA_DEBUG=[%s]: debug %d", cases[i].value, c.debug);
        server_config_free(&c);
    }
}

static void test_env_models_dir(void **state)
{
    (void)state;
    setenv("AXLLAMA_MODELS", " /srv/models ", 1);
    server_config c;
    server_config_from_env(&c, NULL);
    assert_string_equal(c.models_dir, "/srv/models");
    server_config_free(&c);
    setenv("AXLLAMA_MODELS", "", 1);
    server_config_from_env(&c, NULL);
    assert_null(c.models_dir);
    server_config_free(&c);
}

/* The directories of the built-in model's tokenizer data: trimmed like every value, unset when empty. */
static void test_env_tokenizer_dir_and_cache(void **state)
{
    (void)state;
    setenv("AXLLAMA_TOKENIZER_DIR", " '/data/qwen3' ", 1);
    setenv("AXLLAMA_CACHE", "\"/var/cache/axllama\"", 1);
    server_config c;
    server_config_from_env(&c, NULL);
    assert_string_equal(c.tokenizer_dir, "/data/qwen3");
    assert_string_equal(c.cache_dir, "/var/cache/axllama");
    server_config_free(&c);
    setenv("AXLLAMA_TOKENIZER_DIR", "  ", 1);
    setenv("AXLLAMA_CACHE", "", 1);
    server_config_from_env(&c, NULL);
    assert_null(c.tokenizer_dir);
    assert_null(c.cache_dir);
    server_config_free(&c);
}

static void test_env_stall_timeout_positive_duration_or_seconds(void **state)
{
    (void)state;
    CHECK_ENV("AXLLAMA_STALL_TIMEOUT", 3, {"90s", 90, false}, {"5m", 300, false}, {"30", 30, false},
              {"0.5s", 0.5, false}, {"0", 60, true}, {"-1m", 60, true}, {"soon", 60, true}, {"", 60, false});
}

static void test_env_context_retain_is_a_share_of_the_window(void **state)
{
    (void)state;
    CHECK_ENV("AXLLAMA_CONTEXT_RETAIN", 4, {"0.25", 0.25, false}, {"1", 1, false}, {" '0.75' ", 0.75, false},
              {"0", 0.5, true}, {"1.5", 0.5, true}, {"half", 0.5, true}, {"-0.2", 0.5, true}, {"", 0.5, false});
}

static void test_env_runtime_probe_positive_duration(void **state)
{
    (void)state;
    CHECK_ENV("AXLLAMA_RUNTIME_PROBE", 5, {"500ms", 0.5, false}, {"2", 2, false}, {"0", 5, true}, {"x", 5, true},
              {"", 5, false});
}

static void test_env_restore_is_on_unless_0_or_false(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool on;
    } cases[] = {{"0", false}, {"false", false}, {"FALSE", false}, {"1", true}, {"yes", true}, {"", true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("AXLLAMA_RESTORE", cases[i].value, 1);
        server_config c;
        server_config_from_env(&c, NULL);
        if (c.restore != cases[i].on)
            fail_msg("AXLLAMA_RESTORE=[%s]: restore %d", cases[i].value, c.restore);
        server_config_free(&c);
    }
}

static void test_env_reset_every_turn_only_for_1(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool on;
    } cases[] = {{"1", true}, {" '1' ", true}, {"0", false}, {"true", false}, {"", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("AXLLAMA_RESET_EVERY_TURN", cases[i].value, 1);
        server_config c;
        server_config_from_env(&c, NULL);
        if (c.reset_every_turn != cases[i].on)
            fail_msg("AXLLAMA_RESET_EVERY_TURN=[%s]: %d", cases[i].value, c.reset_every_turn);
        server_config_free(&c);
    }
}

/* ---------------- the limits (issue 9) ---------------- */

static void test_env_limit_defaults_fit_a_small_machine(void **state)
{
    (void)state;
    server_config c;
    char *warnings = NULL;
    server_config_from_env(&c, &warnings);
    assert_null(warnings);
    assert_int_equal(c.max_body_bytes, 8u << 20);
    assert_int_equal(c.max_connections, 512);
    assert_int_equal(c.max_connections_per_ip, 128);
    assert_true(c.request_timeout_s == 60);
    assert_int_equal(c.max_queued_bytes, 64u << 20);
    assert_int_equal(c.max_stop, 16);
    assert_int_equal(c.max_tools, 64);
    server_config_free(&c);
}

static void test_env_byte_sizes_take_k_m_g_suffixes(void **state)
{
    (void)state;
    CHECK_ENV("AXLLAMA_MAX_BODY", 6, {"1048576", 1048576, false}, {"512K", 512 * 1024, false},
              {"512kb", 512 * 1024, false}, {"8M", 8 << 20, false}, {"8MiB", 8 << 20, false}, {"1g", 1 << 30, false},
              {"100B", 100, false}, {" '2M' ", 2 << 20, false}, {"0", 8 << 20, true}, {"-1M", 8 << 20, true},
              {"8 M", 8 << 20, true}, {"8T", 8 << 20, true}, {"M", 8 << 20, true}, {"1.5M", 8 << 20, true},
              {"99999999999999999999", 8 << 20, true}, {"", 8 << 20, false});
    unsetenv("AXLLAMA_MAX_BODY");
    CHECK_ENV("AXLLAMA_MAX_QUEUED_BYTES", 10, {"128M", 128 << 20, false}, {"x", 64 << 20, true});
}

static void test_env_counts_are_positive_integers(void **state)
{
    (void)state;
    CHECK_ENV("AXLLAMA_MAX_CONNECTIONS", 7, {"64", 64, false}, {"0", 512, true}, {"many", 512, true},
              {"99999999", 512, true});
    unsetenv("AXLLAMA_MAX_CONNECTIONS");
    CHECK_ENV("AXLLAMA_MAX_CONNECTIONS_PER_IP", 8, {"8", 8, false}, {"-2", 128, true});
    unsetenv("AXLLAMA_MAX_CONNECTIONS_PER_IP");
    CHECK_ENV("AXLLAMA_MAX_STOP", 11, {"4", 4, false}, {"1.5", 16, true});
    unsetenv("AXLLAMA_MAX_STOP");
    CHECK_ENV("AXLLAMA_MAX_TOOLS", 12, {"200", 200, false}, {"none", 64, true});
}

static void test_env_request_timeout_positive_duration(void **state)
{
    (void)state;
    CHECK_ENV("AXLLAMA_REQUEST_TIMEOUT", 9, {"30s", 30, false}, {"2m", 120, false}, {"45", 45, false}, {"0", 60, true},
              {"-5s", 60, true}, {"soon", 60, true}, {"", 60, false});
}

/* The CLI client reads OLLAMA_HOST through config_env_value: the same trimming as the server. */
static void test_env_value_trims_like_the_server(void **state)
{
    (void)state;
    setenv("OLLAMA_HOST", " \t\"'http://10.1.2.3:8080/x'\"\n", 1);
    char *v = config_env_value("OLLAMA_HOST");
    assert_string_equal(v, "http://10.1.2.3:8080/x");
    free(v);
    server_config c;
    server_config_from_env(&c, NULL);
    assert_string_equal(c.host, "10.1.2.3");
    assert_int_equal(c.port, 8080);
    server_config_free(&c);
    setenv("OLLAMA_HOST", " '' ", 1);
    assert_null(config_env_value("OLLAMA_HOST"));
    unsetenv("OLLAMA_HOST");
    assert_null(config_env_value("OLLAMA_HOST"));
}

static void test_env_several_warnings_one_line_each(void **state)
{
    (void)state;
    setenv("OLLAMA_MAX_QUEUE", "x", 1);
    setenv("OLLAMA_KEEP_ALIVE", "y", 1);
    setenv("OLLAMA_LOAD_TIMEOUT", "z", 1);
    server_config c;
    char *warnings = NULL;
    server_config_from_env(&c, &warnings);
    assert_non_null(warnings);
    size_t lines = 0;
    for (const char *p = warnings; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_int_equal(warnings[strlen(warnings) - 1], '\n');
    free(warnings);
    server_config_free(&c);
}

/* ---------------- Go durations ---------------- */

typedef struct {
    const char *text;
    double seconds;
} duration_case;

static void test_duration_valid(void **state)
{
    (void)state;
    /* from Go's time package tests (parseDurationTests) */
    static const duration_case cases[] = {
        {"0", 0},
        {"5s", 5},
        {"30s", 30},
        {"1478s", 1478},
        {"-5s", -5},
        {"+5s", 5},
        {"-0", 0},
        {"+0", 0},
        {"5.0s", 5},
        {"5.6s", 5.6},
        {"5.s", 5},
        {".5s", 0.5},
        {"1.0s", 1},
        {"1.00s", 1},
        {"1.004s", 1.004},
        {"1.0040s", 1.004},
        {"100.00100s", 100.001},
        {"10ns", 10e-9},
        {"11us", 11e-6},
        {"12\xc2\xb5s", 12e-6},
        {"12\xce\xbcs", 12e-6},
        {"13ms", 13e-3},
        {"14s", 14},
        {"15m", 900},
        {"16h", 57600},
        {"3h30m", 12600},
        {"10.5s4m", 250.5},
        {"-2m3.4s", -123.4},
        {"1h2m3s4ms5us6ns", 3723.004005006},
        {"39h9m14.425s", 140954.425},
        {"52763797000ns", 52.763797},
        {"0.3333333333333333333h", 1200},
        {"9223372036854775807ns", 9223372036.854775807},
        {"-9223372036854775808ns", -9223372036.854775808},
        {".100000000000000000000h", 360},
        {"1.5h", 5400},
        {"2h45m", 9900},
        {"300ms", 0.3},
        {"-1m", -60},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = 12345;
        char err[128] = "";
        if (!parse_go_duration(cases[i].text, &got, err, sizeof err))
            fail_msg("[%s]: %s", cases[i].text, err);
        double tol = fabs(cases[i].seconds) * 1e-12 + 1e-12;
        if (fabs(got - cases[i].seconds) > tol)
            fail_msg("[%s]: got %.12g, want %.12g", cases[i].text, got, cases[i].seconds);
    }
}

typedef struct {
    const char *text;
    const char *error;
} duration_error_case;

static void check_duration_errors(const duration_error_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double got = 777;
        char err[256] = "";
        if (parse_go_duration(cases[i].text, &got, err, sizeof err))
            fail_msg("[%s]: accepted as %g", cases[i].text, got);
        assert_true(got == 777);
        if (strcmp(err, cases[i].error) != 0)
            fail_msg("[%s]: error [%s], want [%s]", cases[i].text, err, cases[i].error);
    }
}

#define CHECK_DURATION_ERRORS(...)                                       \
    do {                                                                 \
        static const duration_error_case cases_[] = {__VA_ARGS__};       \
        check_duration_errors(cases_, sizeof cases_ / sizeof cases_[0]); \
    } while (0)

static void test_duration_invalid(void **state)
{
    (void)state;
    CHECK_DURATION_ERRORS({"", "time: invalid duration \"\""}, {"-", "time: invalid duration \"-\""},
                          {"s", "time: invalid duration \"s\""}, {".", "time: invalid duration \".\""},
                          {"-.", "time: invalid duration \"-.\""}, {".s", "time: invalid duration \".s\""},
                          {"+.s", "time: invalid duration \"+.s\""}, {"abc", "time: invalid duration \"abc\""},
                          {"1h.m", "time: invalid duration \"1h.m\""});
}

static void test_duration_missing_unit(void **state)
{
    (void)state;
    CHECK_DURATION_ERRORS(
        {"3", "time: missing unit in duration \"3\""}, {"300", "time: missing unit in duration \"300\""},
        {"-1", "time: missing unit in duration \"-1\""}, {"1h30", "time: missing unit in duration \"1h30\""},
        {"1.5", "time: missing unit in duration \"1.5\""});
}

static void test_duration_unknown_unit(void **state)
{
    (void)state;
    CHECK_DURATION_ERRORS({"1d", "time: unknown unit \"d\" in duration \"1d\""},
                          {"1h-2m", "time: unknown unit \"h-\" in duration \"1h-2m\""},
                          {"5 s", "time: unknown unit \" s\" in duration \"5 s\""},
                          {"1H", "time: unknown unit \"H\" in duration \"1H\""},
                          {"3mins", "time: unknown unit \"mins\" in duration \"3mins\""});
}

static void test_duration_overflow(void **state)
{
    (void)state;
    CHECK_DURATION_ERRORS({"9223372036854775808ns", "time: invalid duration \"9223372036854775808ns\""},
                          {"9223372036854775810ns", "time: invalid duration \"9223372036854775810ns\""},
                          {"-9223372036854775809ns", "time: invalid duration \"-9223372036854775809ns\""},
                          {"3000000h", "time: invalid duration \"3000000h\""},
                          {"9223372036854775807ns1ns", "time: invalid duration \"9223372036854775807ns1ns\""},
                          /* two components at the limit: the sum must not wrap around to 0 */
                          {"-9223372036854775808ns9223372036854775808ns",
                           "time: invalid duration \"-9223372036854775808ns9223372036854775808ns\""});
}

static void test_duration_error_quotes_like_go(void **state)
{
    (void)state;
    CHECK_DURATION_ERRORS({"\x85\x85", "time: invalid duration \"\\x85\\x85\""},
                          {"\xff"
                           "ff",
                           "time: invalid duration \"\\xffff\""},
                          {"hello \xff"
                           "ff world",
                           "time: invalid duration \"hello \\xffff world\""},
                          {"a\"b\\c", "time: invalid duration \"a\\\"b\\\\c\""},
                          {"1\t", "time: unknown unit \"\\x09\" in duration \"1\\x09\""});
}

static void test_duration_null_error_buffer(void **state)
{
    (void)state;
    double d = 1;
    assert_false(parse_go_duration("x", &d, NULL, 0));
    assert_true(parse_go_duration("2s", &d, NULL, 0));
    assert_true(d == 2);
}

/* ---------------- keep_alive ---------------- */

static void keep_alive_of(const char *json_text, bool want_ok, bool want_present, double want_seconds,
                          const char *want_error)
{
    json_error_t jerr;
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, &jerr);
    assert_non_null(v);
    bool present = true;
    double seconds = 4242;
    char err[256] = "";
    bool ok = parse_keep_alive(v, &present, &seconds, err, sizeof err);
    if (ok != want_ok)
        fail_msg("keep_alive %s: ok %d, error [%s]", json_text, ok, err);
    if (ok) {
        assert_int_equal(present, want_present);
        if (present && seconds != want_seconds)
            fail_msg("keep_alive %s: %g seconds, want %g", json_text, seconds, want_seconds);
    } else if (strcmp(err, want_error) != 0) {
        fail_msg("keep_alive %s: error [%s], want [%s]", json_text, err, want_error);
    }
    json_decref(v);
}

static void test_keep_alive_null_or_missing_is_absent(void **state)
{
    (void)state;
    keep_alive_of("null", true, false, 0, NULL);
    bool present = true;
    double s = 0;
    assert_true(parse_keep_alive(NULL, &present, &s, NULL, 0));
    assert_false(present);
}

static void test_keep_alive_number_is_seconds(void **state)
{
    (void)state;
    keep_alive_of("0", true, true, 0, NULL);
    keep_alive_of("60", true, true, 60, NULL);
    keep_alive_of("3.5", true, true, 3.5, NULL);
}

static void test_keep_alive_negative_number_is_forever(void **state)
{
    (void)state;
    keep_alive_of("-1", true, true, -1, NULL);
    keep_alive_of("-0.5", true, true, -1, NULL);
    /* past Go's time.Duration range (~292 years) it is forever too, never an overflowing expiry */
    keep_alive_of("1e300", true, true, -1, NULL);
    keep_alive_of("-3600", true, true, -1, NULL);
}

static void test_keep_alive_string_is_go_duration(void **state)
{
    (void)state;
    keep_alive_of("\"10m\"", true, true, 600, NULL);
    keep_alive_of("\"0\"", true, true, 0, NULL);
    keep_alive_of("\"0s\"", true, true, 0, NULL);
    keep_alive_of("\"1.5h\"", true, true, 5400, NULL);
    keep_alive_of("\"-1m\"", true, true, -1, NULL);
}

static void test_keep_alive_bare_number_string_rejected(void **state)
{
    (void)state;
    keep_alive_of("\"300\"", false, false, 0, "time: missing unit in duration \"300\"");
    keep_alive_of("\"-1\"", false, false, 0, "time: missing unit in duration \"-1\"");
    keep_alive_of("\"soon\"", false, false, 0, "time: invalid duration \"soon\"");
}

static void test_keep_alive_other_types_unsupported(void **state)
{
    (void)state;
    keep_alive_of("true", false, false, 0, "Unsupported type: 'bool'");
    keep_alive_of("false", false, false, 0, "Unsupported type: 'bool'");
    keep_alive_of("[1]", false, false, 0, "Unsupported type: '[]interface {}'");
    keep_alive_of("{\"a\":1}", false, false, 0, "Unsupported type: 'map[string]interface {}'");
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_env, clear_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_host_every_ollama_example),
        T(test_host_unset_is_loopback_default_port),
        T(test_host_trims_spaces_and_quotes),
        T(test_host_scheme_sets_default_port),
        T(test_host_port_only_means_all_interfaces),
        T(test_host_ipv6_brackets_removed_and_canonical),
        T(test_host_bad_port_uses_default_of_scheme),
        T(test_host_path_is_ignored),
        T(test_host_too_long_for_buffer_is_not_truncated),
        T(test_env_defaults),
        T(test_env_host_is_parsed),
        T(test_env_host_bad_port_warns),
        T(test_env_origins_listed_first_then_defaults),
        T(test_env_origins_star_kept),
        T(test_env_keep_alive_duration_or_seconds),
        T(test_env_keep_alive_negative_is_forever),
        T(test_env_keep_alive_invalid_warns_default),
        T(test_env_load_timeout),
        T(test_env_max_queue_positive_integer),
        T(test_env_debug_any_value_but_0_or_false),
        T(test_env_models_dir),
        T(test_env_tokenizer_dir_and_cache),
        T(test_env_stall_timeout_positive_duration_or_seconds),
        T(test_env_context_retain_is_a_share_of_the_window),
        T(test_env_runtime_probe_positive_duration),
        T(test_env_restore_is_on_unless_0_or_false),
        T(test_env_reset_every_turn_only_for_1),
        T(test_env_limit_defaults_fit_a_small_machine),
        T(test_env_byte_sizes_take_k_m_g_suffixes),
        T(test_env_counts_are_positive_integers),
        T(test_env_request_timeout_positive_duration),
        T(test_env_value_trims_like_the_server),
        T(test_env_several_warnings_one_line_each),
        T(test_duration_valid),
        T(test_duration_invalid),
        T(test_duration_missing_unit),
        T(test_duration_unknown_unit),
        T(test_duration_overflow),
        T(test_duration_error_quotes_like_go),
        T(test_duration_null_error_buffer),
        T(test_keep_alive_null_or_missing_is_absent),
        T(test_keep_alive_number_is_seconds),
        T(test_keep_alive_negative_number_is_forever),
        T(test_keep_alive_string_is_go_duration),
        T(test_keep_alive_bare_number_string_rejected),
        T(test_keep_alive_other_types_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
