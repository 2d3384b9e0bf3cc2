/* Tests for models/manifest.c, the manifest file format: validation naming the file and the key,
 * defaults, path resolution, compatibility mode ("tokenizer_upstream"). Every test works in its own
 * temporary directory with HOME pointing into it (manifest_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "manifest_fixture.h"

static bool load(const char *rel, model_manifest *m, char *err, size_t errlen)
{
    return model_manifest_load_with_warnings(m, at(rel), collect_warning, &warnings, err, errlen);
}

/* Loads rel expecting success. */
static void load_ok(const char *rel, model_manifest *m)
{
    char err[512] = "";
    if (!load(rel, m, err, sizeof err))
        fail_msg("%s: %s", rel, err);
}

/* Loads rel expecting failure with an error naming the file and containing each needle. */
static void load_fails(const char *rel, const char *needle1, const char *needle2)
{
    model_manifest m;
    char err[512] = "";
    memset(&m, 0x5A, sizeof m);
    if (load(rel, &m, err, sizeof err)) {
        model_manifest_free(&m);
        fail_msg("%s: loaded although it should fail with [%s]", rel, needle1);
    }
    if (strncmp(err, at(rel), strlen(at(rel))) != 0)
        fail_msg("error [%s] does not start with the file name", err);
    if (needle1 && !strstr(err, needle1))
        fail_msg("error [%s] lacks [%s]", err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("error [%s] lacks [%s]", err, needle2);
    assert_null(m.name); /* left empty */
    assert_null(m.runtime_args);
    model_manifest_free(&m);
}

/* ================================ one manifest ================================ */

static void test_minimal_manifest_defaults(void **state)
{
    (void)state;
    make_model_files();
    write_file("models/qwen3.json", MINIMAL);
    model_manifest m;
    load_ok("models/qwen3.json", &m);
    assert_string_equal(m.name, "qwen3:latest");
    assert_string_equal(m.path, at("models/qwen3.json"));
    assert_string_equal(m.runtime_binary, at("models/bin/runtime"));
    assert_non_null(m.runtime_args);
    assert_null(m.runtime_args[0]);
    assert_int_equal(m.n_runtime_args, 0);
    assert_string_equal(m.runtime_workdir, at("models"));
    assert_int_equal(m.runtime_port, 8000);
    assert_null(m.devices);
    assert_true(m.load_timeout_s == 300);
    assert_false(m.has_load_timeout);
    assert_non_null(m.env);
    assert_null(m.env[0]);
    assert_string_equal(m.tokenizer_dir, at("models/tok"));
    assert_int_equal(m.tokenizer_port, 12345);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN3);
    assert_int_equal(m.max_prefill, 2048);
    assert_int_equal(m.max_positions, 2559);
    assert_string_equal(m.system_prompt, DEFAULT_PROMPT);
    assert_string_equal(m.system_prompt, CHAT_DEFAULT_SYSTEM_PROMPT);
    assert_true(m.thinking);
    assert_false(m.think_default);
    assert_false(m.has_temperature || m.has_top_k || m.has_top_p || m.has_repeat_penalty);
    assert_string_equal(m.family, "qwen3");
    assert_string_equal(m.parameter_size, "");
    assert_string_equal(m.quantization_level, "");
    assert_string_equal(m.format, "axmodel");
    assert_int_equal(m.size, 0);
    assert_int_equal(warning_count(), 0);
    model_manifest_free(&m);
}

static void test_digest_and_modified_come_from_the_file(void **state)
{
    (void)state;
    make_model_files();
    write_file("models/qwen3.json", MINIMAL);
    struct timespec times[2] = {{1700000000, 0}, {1700000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, at("models/qwen3.json"), times, 0), 0);
    model_manifest m;
    load_ok("models/qwen3.json", &m);
    assert_string_equal(m.digest, MINIMAL_SHA256);
    assert_int_equal(m.modified, 1700000000);
    model_manifest_free(&m);
}

static void test_full_manifest_every_field(void **state)
{
    (void)state;
    make_model_files();
    write_file("models/full.json",
               "{\n"
               "  \"name\": \"user/Qwen3:4b-w8a16\",\n"
               "  \"runtime\": {\n"
               "    \"binary\": \"/opt/q/main_api_axcl_aarch64\",\n"
               "    \"args\": [\"--axmodel_num\", \"36\", \"--system_prompt\", \"hi\"],\n"
               "    \"workdir\": \"/opt/q\",\n"
               "    \"port\": 8001,\n"
               "    \"devices\": \"0,1\",\n"
               "    \"load_timeout\": 150.5,\n"
               "    \"env\": {\"LD_LIBRARY_PATH\": \"/usr/lib/axcl\", \"A\": \"\"}\n"
               "  },\n"
               "  \"tokenizer\": \"/opt/q/tok\",\n"
               "  \"tokenizer_port\": 0,\n"
               "  \"template\": \"qwen2.5\",\n"
               "  \"context\": {\"max_prefill\": 1024, \"max_positions\": 1280},\n"
               "  \"system_prompt\": \"Be brief.\",\n"
               "  \"thinking\": false,\n"
               "  \"think_default\": false,\n"
               "  \"parameters\": {\"temperature\": 0.7, \"top_k\": 20, \"top_p\": 0.8, \"repeat_penalty\": 1.05},\n"
               "  \"details\": {\"family\": \"qwen2\", \"parameter_size\": \"1.5B\", \"quantization_level\": "
               "\"W8A16\", \"format\": \"axmodel\"},\n"
               "  \"size\": 5100000000\n"
               "}\n");
    model_manifest m;
    load_ok("models/full.json", &m);
    assert_string_equal(m.name, "user/Qwen3:4b-w8a16");
    assert_string_equal(m.runtime_binary, "/opt/q/main_api_axcl_aarch64");
    assert_int_equal(m.n_runtime_args, 4);
    assert_string_equal(m.runtime_args[0], "--axmodel_num");
    assert_string_equal(m.runtime_args[1], "36");
    assert_string_equal(m.runtime_args[3], "hi");
    assert_null(m.runtime_args[4]);
    assert_string_equal(m.runtime_workdir, "/opt/q");
    assert_int_equal(m.runtime_port, 8001);
    assert_string_equal(m.devices, "0,1");
    assert_true(m.load_timeout_s == 150.5);
    assert_true(m.has_load_timeout);
    assert_string_equal(m.env[0], "LD_LIBRARY_PATH=/usr/lib/axcl");
    assert_string_equal(m.env[1], "A=");
    assert_null(m.env[2]);
    assert_string_equal(m.tokenizer_dir, "/opt/q/tok");
    assert_int_equal(m.tokenizer_port, 0);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN25);
    assert_int_equal(m.max_prefill, 1024);
    assert_int_equal(m.max_positions, 1280);
    assert_string_equal(m.system_prompt, "Be brief.");
    assert_false(m.thinking);
    assert_false(m.think_default);
    assert_true(m.has_temperature && m.temperature == 0.7);
    assert_true(m.has_top_k && m.top_k == 20);
    assert_true(m.has_top_p && m.top_p == 0.8);
    assert_true(m.has_repeat_penalty && m.repeat_penalty == 1.05);
    assert_string_equal(m.family, "qwen2");
    assert_string_equal(m.parameter_size, "1.5B");
    assert_string_equal(m.quantization_level, "W8A16");
    assert_string_equal(m.format, "axmodel");
    assert_true(m.size == 5100000000ull);
    /* the binary and tokenizer do not exist: reported, not fatal */
    assert_int_equal(warning_count(), 2);
    model_manifest_free(&m);
}

static void test_relative_paths_resolved_against_manifest_dir(void **state)
{
    (void)state;
    make_model_files();
    write_file("models/sub/x.json", "{\"name\": \"x\", \"runtime\": {\"binary\": \"./../bin/runtime\", "
                                    "\"workdir\": \"work\"}, \"tokenizer\": \"../tok\"}");
    model_manifest m;
    load_ok("models/sub/x.json", &m);
    assert_string_equal(m.runtime_binary, at("models/sub/../bin/runtime"));
    assert_string_equal(m.runtime_workdir, at("models/sub/work"));
    assert_string_equal(m.tokenizer_dir, at("models/sub/../tok"));
    assert_int_equal(warning_count(), 0); /* the files are found through these paths */
    model_manifest_free(&m);
}

static void test_home_relative_paths(void **state)
{
    (void)state;
    write_file(
        "models/x.json",
        "{\"name\": \"x\", \"runtime\": {\"binary\": \"~/q/run\", \"workdir\": \"~\"}, \"tokenizer\": \"~/q/tok\"}");
    model_manifest m;
    load_ok("models/x.json", &m);
    assert_string_equal(m.runtime_binary, at("home/q/run"));
    assert_string_equal(m.runtime_workdir, at("home"));
    assert_string_equal(m.tokenizer_dir, at("home/q/tok"));
    model_manifest_free(&m);
}

static void test_relative_manifest_path_gives_absolute_paths(void **state)
{
    (void)state;
    make_model_files();
    write_file("models/qwen3.json", MINIMAL);
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(root), 0);
    model_manifest m;
    char err[256] = "";
    bool ok = model_manifest_load(&m, "models/qwen3.json", err, sizeof err);
    assert_int_equal(chdir(cwd), 0);
    assert_true(ok);
    assert_string_equal(m.path, "models/qwen3.json");
    assert_string_equal(m.runtime_binary, at("models/bin/runtime"));
    assert_string_equal(m.runtime_workdir, at("models"));
    assert_string_equal(m.tokenizer_dir, at("models/tok"));
    model_manifest_free(&m);
}

static void test_reserved_args_rejected(void **state)
{
    (void)state;
    static const char *const args[] = {"\"--devices\", \"0\"", "\"--devices=0\"", "\"--url_tokenizer_model\", \"x\"",
                                       "\"--url_tokenizer_model=http://127.0.0.1:1\""};
    static const char *const flag[] = {"--devices", "--devices", "--url_tokenizer_model", "--url_tokenizer_model"};
    for (size_t i = 0; i < 4; i++) {
        char extra[256];
        snprintf(extra, sizeof extra, "\"args\": [\"--axmodel_num\", \"36\", %s]", args[i]);
        write_manifest("models/r.json", "r", extra, NULL);
        load_fails("models/r.json", "\"runtime.args[2]\"", flag[i]);
    }
    /* a flag that merely starts the same way is fine */
    write_manifest("models/ok.json", "ok", "\"args\": [\"--devices_extra\"]", NULL);
    model_manifest m;
    load_ok("models/ok.json", &m);
    model_manifest_free(&m);
}

typedef struct {
    const char *runtime_extra;
    const char *extra;
    const char *key;  /* expected in the message */
    const char *what; /* expected in the message */
} bad_case;

static void check_bad_cases(const bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        write_manifest("models/bad.json", "bad", cases[i].runtime_extra, cases[i].extra);
        load_fails("models/bad.json", cases[i].key, cases[i].what);
    }
}

#define CHECK_BAD(...)                                             \
    do {                                                           \
        static const bad_case cases_[] = {__VA_ARGS__};            \
        check_bad_cases(cases_, sizeof cases_ / sizeof cases_[0]); \
    } while (0)

static void test_wrong_types_rejected_naming_file_and_key(void **state)
{
    (void)state;
    CHECK_BAD({"\"port\": \"8000\"", NULL, "\"runtime.port\"", "got string"},
              {"\"port\": 80.5", NULL, "\"runtime.port\"", "got number"},
              {"\"args\": \"--x\"", NULL, "\"runtime.args\"", "got string"},
              {"\"args\": [\"a\", 1]", NULL, "\"runtime.args[1]\"", "got integer"},
              {"\"workdir\": 5", NULL, "\"runtime.workdir\"", "got integer"},
              {"\"devices\": 0", NULL, "\"runtime.devices\"", "got integer"},
              {"\"load_timeout\": \"5m\"", NULL, "\"runtime.load_timeout\"", "got string"},
              {"\"env\": [\"A=1\"]", NULL, "\"runtime.env\"", "got array"},
              {"\"env\": {\"A\": 1}", NULL, "\"runtime.env.A\"", "got integer"},
              {NULL, "\"tokenizer_port\": true", "\"tokenizer_port\"", "got boolean"},
              {NULL, "\"template\": 3", "\"template\"", "got integer"},
              {NULL, "\"context\": 2048", "\"context\"", "got integer"},
              {NULL, "\"context\": {\"max_prefill\": 1.5}", "\"context.max_prefill\"", "got number"},
              {NULL, "\"system_prompt\": [\"a\"]", "\"system_prompt\"", "got array"},
              {NULL, "\"thinking\": \"yes\"", "\"thinking\"", "got string"},
              {NULL, "\"think_default\": 0", "\"think_default\"", "got integer"},
              {NULL, "\"parameters\": {\"temperature\": \"hot\"}", "\"parameters.temperature\"", "got string"},
              {NULL, "\"parameters\": {\"top_k\": 2.5}", "\"parameters.top_k\"", "got number"},
              {NULL, "\"details\": {\"family\": 1}", "\"details.family\"", "got integer"},
              {NULL, "\"size\": \"5GB\"", "\"size\"", "got string"});
    /* the runtime itself and name */
    write_file("models/bad.json", "{\"name\": 5, \"runtime\": {\"binary\": \"b\"}, \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "\"name\"", "got integer");
    write_file("models/bad.json", "{\"name\": \"x\", \"runtime\": [], \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "\"runtime\"", "got array");
}

static void test_out_of_range_values_rejected(void **state)
{
    (void)state;
    CHECK_BAD({"\"port\": 65536", NULL, "\"runtime.port\"", "out of range"},
              {"\"port\": -1", NULL, "\"runtime.port\"", "out of range"},
              {"\"load_timeout\": -5", NULL, "\"runtime.load_timeout\"", "out of range"},
              {NULL, "\"tokenizer_port\": 70000", "\"tokenizer_port\"", "out of range"},
              {NULL, "\"context\": {\"max_positions\": 0}", "\"context.max_positions\"", "out of range"},
              {NULL, "\"parameters\": {\"top_p\": 1.5}", "\"parameters.top_p\"", "out of range"},
              {NULL, "\"parameters\": {\"temperature\": -0.1}", "\"parameters.temperature\"", "out of range"},
              {NULL, "\"parameters\": {\"repeat_penalty\": 0}", "\"parameters.repeat_penalty\"", "out of range"},
              {NULL, "\"parameters\": {\"top_k\": -1}", "\"parameters.top_k\"", "out of range"},
              {NULL, "\"size\": -1", "\"size\"", "negative"},
              {NULL, "\"template\": \"llama3\"", "\"template\"", "qwen2.5"});
    write_file("models/bad.json", "{\"name\": \"x\", \"runtime\": {\"binary\": \"\"}, \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "\"runtime.binary\"", "empty");
}

static void test_missing_required_keys_rejected(void **state)
{
    (void)state;
    write_file("models/bad.json", "{\"runtime\": {\"binary\": \"b\"}, \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "\"name\"", "missing");
    write_file("models/bad.json", "{\"name\": \"x\", \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "\"runtime\"", "missing");
    write_file("models/bad.json", "{\"name\": \"x\", \"runtime\": {\"args\": []}, \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "\"runtime.binary\"", "missing");
    write_file("models/bad.json", "{\"name\": \"x\", \"runtime\": {\"binary\": \"b\"}}");
    load_fails("models/bad.json", "\"tokenizer\"", "missing");
}

static void test_invalid_name_rejected(void **state)
{
    (void)state;
    write_manifest("models/bad.json", "qwen 3", NULL, NULL);
    load_fails("models/bad.json", "\"name\"", "not a valid model name");
}

static void test_invalid_json_reports_position(void **state)
{
    (void)state;
    write_file("models/bad.json", "{\n  \"name\": \"x\",\n  \"runtime\": {\"binary\": \"b\"},\n}\n");
    load_fails("models/bad.json", ":4:", "invalid JSON");
}

static void test_duplicate_json_keys_rejected(void **state)
{
    (void)state;
    write_file("models/bad.json",
               "{\"name\": \"x\", \"name\": \"y\", \"runtime\": {\"binary\": \"b\"}, \"tokenizer\": \"t\"}");
    load_fails("models/bad.json", "invalid JSON", "duplicate");
}

static void test_top_level_not_object_rejected(void **state)
{
    (void)state;
    write_file("models/bad.json", "[1, 2]");
    load_fails("models/bad.json", "top level", "got array");
}

static void test_unreadable_manifest_error(void **state)
{
    (void)state;
    load_fails("models/none.json", "No such file", NULL);
}

static void test_unknown_keys_warn_but_load(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/u.json", "u", "\"live_print\": 1", "\"colour\": \"red\", \"context\": {\"num_ctx\": 4}");
    model_manifest m;
    load_ok("models/u.json", &m);
    assert_int_equal(warning_count(), 3);
    assert_non_null(strstr(warning_text(), "\"runtime.live_print\""));
    assert_non_null(strstr(warning_text(), "\"colour\""));
    assert_non_null(strstr(warning_text(), "\"context.num_ctx\""));
    assert_non_null(strstr(warning_text(), at("models/u.json")));
    model_manifest_free(&m);
}

static void test_null_means_not_set(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/n.json", "n", "\"devices\": null, \"port\": null, \"args\": null",
                   "\"template\": null, \"system_prompt\": null, \"parameters\": {\"top_k\": null}");
    model_manifest m;
    load_ok("models/n.json", &m);
    assert_null(m.devices);
    assert_int_equal(m.runtime_port, 8000);
    assert_int_equal(m.n_runtime_args, 0);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN3);
    assert_string_equal(m.system_prompt, DEFAULT_PROMPT);
    assert_false(m.has_top_k);
    model_manifest_free(&m);
}

static void test_port_zero_needs_port_placeholder(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/p.json", "p", "\"port\": 0, \"args\": [\"--emu-port\", \"8000\"]", NULL);
    load_fails("models/p.json", "\"runtime.port\"", "{port}");
    write_manifest("models/p.json", "p", "\"port\": 0, \"args\": [\"--emu-port={port}\"]", NULL);
    model_manifest m;
    load_ok("models/p.json", &m);
    assert_int_equal(m.runtime_port, 0);
    assert_string_equal(m.runtime_args[0], "--emu-port={port}");
    model_manifest_free(&m);
}

static void test_think_default_needs_thinking(void **state)
{
    (void)state;
    write_manifest("models/t.json", "t", NULL, "\"thinking\": false, \"think_default\": true");
    load_fails("models/t.json", "\"think_default\"", "\"thinking\" is false");
    make_model_files();
    write_manifest("models/t.json", "t", NULL, "\"think_default\": true");
    model_manifest m;
    load_ok("models/t.json", &m);
    assert_true(m.thinking && m.think_default);
    model_manifest_free(&m);
}

static void test_max_prefill_not_above_max_positions(void **state)
{
    (void)state;
    write_manifest("models/c.json", "c", NULL, "\"context\": {\"max_prefill\": 4096}");
    load_fails("models/c.json", "\"context.max_prefill\"", "2559");
    make_model_files();
    write_manifest("models/c.json", "c", NULL, "\"context\": {\"max_prefill\": 2559}");
    model_manifest m;
    load_ok("models/c.json", &m);
    assert_int_equal(m.max_prefill, 2559);
    model_manifest_free(&m);
}

static void test_devices_auto_or_list(void **state)
{
    (void)state;
    make_model_files();
    static const char *const good[] = {"auto", "0", "0,1", "12,3,4"};
    for (size_t i = 0; i < 4; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "\"devices\": \"%s\"", good[i]);
        write_manifest("models/d.json", "d", extra, NULL);
        model_manifest m;
        load_ok("models/d.json", &m);
        assert_string_equal(m.devices, good[i]);
        model_manifest_free(&m);
    }
    static const char *const bad[] = {"Auto", "0,", ",0", "0 1", "0,,1", "-1", "one"};
    for (size_t i = 0; i < 7; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "\"devices\": \"%s\"", bad[i]);
        write_manifest("models/d.json", "d", extra, NULL);
        load_fails("models/d.json", "\"runtime.devices\"", bad[i]);
    }
}

static void test_env_names_validated(void **state)
{
    (void)state;
    write_manifest("models/e.json", "e", "\"env\": {\"A=B\": \"c\"}", NULL);
    load_fails("models/e.json", "\"runtime.env\"", "A=B");
    write_manifest("models/e.json", "e", "\"env\": {\"\": \"c\"}", NULL);
    load_fails("models/e.json", "\"runtime.env\"", "not a valid variable name");
}

static void test_missing_files_warn_but_load(void **state)
{
    (void)state;
    write_file("models/qwen3.json", MINIMAL); /* no bin/runtime, no tok/ */
    model_manifest m;
    load_ok("models/qwen3.json", &m);
    assert_int_equal(warning_count(), 2);
    assert_non_null(strstr(warning_text(), "\"runtime.binary\""));
    assert_non_null(strstr(warning_text(), at("models/bin/runtime")));
    assert_non_null(strstr(warning_text(), at("models/tok/tokenizer.json")));
    model_manifest_free(&m);
}

static void test_template_qwen25_sets_default_family(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/q.json", "qwen2.5:1.5b", NULL, "\"template\": \"qwen2.5\"");
    model_manifest m;
    load_ok("models/q.json", &m);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN25);
    assert_string_equal(m.family, "qwen2");
    assert_string_equal(m.name, "qwen2.5:1.5b");
    model_manifest_free(&m);
}

static void test_load_without_warning_callback(void **state)
{
    (void)state;
    write_manifest("models/u.json", "u", NULL, "\"unknown\": 1"); /* warnings: unknown key, missing files */
    model_manifest m;
    char err[128] = "unchanged?";
    assert_true(model_manifest_load(&m, at("models/u.json"), err, sizeof err));
    assert_string_equal(err, "");
    assert_string_equal(m.name, "u:latest");
    model_manifest_free(&m);
    model_manifest_free(&m); /* freeing twice is harmless */
}

/* Every ```json block of docs/models.md is a manifest that loads (run from the repository root). */
static void test_docs_examples_load(void **state)
{
    (void)state;
    FILE *f = fopen("docs/models.md", "r");
    if (!f)
        skip();
    strbuf doc = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_append(&doc, chunk, got);
    fclose(f);
    int examples = 0;
    for (const char *p = doc.data; (p = strstr(p, "```json\n")) != NULL;) {
        p += 8;
        const char *end = strstr(p, "```");
        assert_non_null(end);
        char *text = strndup(p, (size_t)(end - p));
        write_file("docs/example.json", text);
        free(text);
        model_manifest m;
        char err[512] = "";
        if (!model_manifest_load(&m, at("docs/example.json"), err, sizeof err))
            fail_msg("docs/models.md example %d: %s", examples + 1, err);
        model_manifest_free(&m);
        examples++;
        p = end + 3;
    }
    sb_free(&doc);
    assert_true(examples >= 3);
}

/* ================================ compatibility mode ("tokenizer_upstream") ================================ */

static void test_tokenizer_upstream_absent_is_the_normal_mode(void **state)
{
    (void)state;
    make_model_files();
    write_file("models/qwen3.json", MINIMAL);
    model_manifest m;
    load_ok("models/qwen3.json", &m);
    assert_null(m.upstream_url);
    assert_null(m.upstream_command);
    assert_int_equal(m.n_upstream_command, 0);
    assert_null(m.upstream_workdir);
    model_manifest_free(&m);
}

static void test_tokenizer_upstream_parsed_with_defaults_and_paths(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "a", NULL,
                   "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:12345/\", \"command\": [\"python3\", "
                   "\"qwen3_tokenizer_uid.py\", \"--port\", \"12345\"], \"workdir\": \"tok\", \"start_timeout\": 7.5}");
    model_manifest m;
    load_ok("models/a.json", &m);
    assert_string_equal(m.upstream_url, "http://127.0.0.1:12345"); /* trailing slash dropped */
    assert_int_equal(m.upstream_port, 12345);
    assert_int_equal(m.n_upstream_command, 4);
    assert_string_equal(m.upstream_command[0], "python3");
    assert_string_equal(m.upstream_command[3], "12345");
    assert_null(m.upstream_command[4]);
    assert_string_equal(m.upstream_workdir, at("models/tok"));
    assert_true(m.upstream_start_timeout_s == 7.5);
    assert_int_equal(warning_count(), 0);
    model_manifest_free(&m);

    /* no command: any host, the port optional; workdir and timeout default */
    write_manifest("models/b.json", "b", NULL, "\"tokenizer_upstream\": {\"url\": \"http://tokenizer.lan\"}");
    load_ok("models/b.json", &m);
    assert_string_equal(m.upstream_url, "http://tokenizer.lan");
    assert_int_equal(m.upstream_port, 80);
    assert_null(m.upstream_command);
    assert_string_equal(m.upstream_workdir, at("models"));
    assert_true(m.upstream_start_timeout_s == 60);
    model_manifest_free(&m);

    /* null = not set; an unknown key warns */
    write_manifest("models/c.json", "c", NULL, "\"tokenizer_upstream\": null");
    load_ok("models/c.json", &m);
    assert_null(m.upstream_url);
    model_manifest_free(&m);
    write_manifest("models/d.json", "d", NULL,
                   "\"tokenizer_upstream\": {\"url\": \"http://localhost:1\", \"cmd\": []}");
    load_ok("models/d.json", &m);
    assert_string_equal(m.upstream_url, "http://localhost:1");
    assert_non_null(strstr(warning_text(), "unknown key \"tokenizer_upstream.cmd\" ignored"));
    model_manifest_free(&m);
}

static void test_tokenizer_upstream_bad_values_rejected_naming_the_key(void **state)
{
    (void)state;
    CHECK_BAD(
        {NULL, "\"tokenizer_upstream\": \"http://127.0.0.1:1\"", "\"tokenizer_upstream\"", "expected an object"},
        {NULL, "\"tokenizer_upstream\": {}", "\"tokenizer_upstream.url\"", "is missing"},
        {NULL, "\"tokenizer_upstream\": {\"url\": 12345}", "\"tokenizer_upstream.url\"", "got integer"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"127.0.0.1:12345\"}", "\"tokenizer_upstream.url\"", "not a URL"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"https://h:1\"}", "\"tokenizer_upstream.url\"", "not a URL"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://h:0\"}", "\"tokenizer_upstream.url\"", "not a URL"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://h:65536\"}", "\"tokenizer_upstream.url\"", "not a URL"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://h:12x\"}", "\"tokenizer_upstream.url\"", "not a URL"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://h:1/encode\"}", "\"tokenizer_upstream.url\"", "no path"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://:1\"}", "\"tokenizer_upstream.url\"", "not a URL"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"command\": \"python3 x.py\"}",
         "\"tokenizer_upstream.command\"", "got string"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"command\": []}",
         "\"tokenizer_upstream.command\"", "an empty array"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"command\": [\"python3\", 1]}",
         "\"tokenizer_upstream.command[1]\"", "got integer"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"command\": [\"\"]}",
         "\"tokenizer_upstream.command[0]\"", "non-empty"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://10.0.0.2:1\", \"command\": [\"python3\"]}",
         "\"tokenizer_upstream.url\"", "127.0.0.1:PORT"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1\", \"command\": [\"python3\"]}",
         "\"tokenizer_upstream.url\"", "127.0.0.1:PORT"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"start_timeout\": 0}",
         "\"tokenizer_upstream.start_timeout\"", "out of range"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"start_timeout\": \"60\"}",
         "\"tokenizer_upstream.start_timeout\"", "got string"},
        {NULL, "\"tokenizer_upstream\": {\"url\": \"http://127.0.0.1:1\", \"workdir\": 3}",
         "\"tokenizer_upstream.workdir\"", "got integer"});
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tokenizer_upstream_absent_is_the_normal_mode),
        T(test_tokenizer_upstream_parsed_with_defaults_and_paths),
        T(test_tokenizer_upstream_bad_values_rejected_naming_the_key),
        T(test_minimal_manifest_defaults),
        T(test_digest_and_modified_come_from_the_file),
        T(test_full_manifest_every_field),
        T(test_relative_paths_resolved_against_manifest_dir),
        T(test_home_relative_paths),
        T(test_relative_manifest_path_gives_absolute_paths),
        T(test_reserved_args_rejected),
        T(test_wrong_types_rejected_naming_file_and_key),
        T(test_out_of_range_values_rejected),
        T(test_missing_required_keys_rejected),
        T(test_invalid_name_rejected),
        T(test_invalid_json_reports_position),
        T(test_duplicate_json_keys_rejected),
        T(test_top_level_not_object_rejected),
        T(test_unreadable_manifest_error),
        T(test_unknown_keys_warn_but_load),
        T(test_null_means_not_set),
        T(test_port_zero_needs_port_placeholder),
        T(test_think_default_needs_thinking),
        T(test_max_prefill_not_above_max_positions),
        T(test_devices_auto_or_list),
        T(test_env_names_validated),
        T(test_missing_files_warn_but_load),
        T(test_template_qwen25_sets_default_family),
        T(test_load_without_warning_callback),
        T(test_docs_examples_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
