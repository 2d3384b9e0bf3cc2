/* Tests for models/registry.c: the models directories search (the caller's directory, else
 * XDG_CONFIG_HOME or HOME, then /etc), file order, duplicates, the built-in emulator model, lookup
 * by any spelling of a name, models joining a loaded registry (refresh, a lookup that misses, other
 * threads reading meanwhile). Every test works in its own temporary directory with HOME pointing
 * into it (manifest_fixture.h). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/clock.h"
#include "manifest_fixture.h"

/* ================================ the registry ================================ */

static model_registry load_registry(const char *override_rel, const char *emu, const char *tok)
{
    model_registry reg;
    memset(&reg, 0x5A, sizeof reg);
    model_registry_load(&reg, override_rel ? at(override_rel) : NULL, emu, tok, collect_warning, &warnings);
    return reg;
}

static void test_registry_sorted_by_file_name(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/b.json", "bbb", NULL, NULL);
    write_manifest("models/a.json", "aaa", NULL, NULL);
    write_manifest("models/C.json", "ccc", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 3);
    assert_string_equal(reg.models[0].name, "ccc:latest"); /* "C" < "a" < "b" in byte order */
    assert_string_equal(reg.models[1].name, "aaa:latest");
    assert_string_equal(reg.models[2].name, "bbb:latest");
    assert_int_equal(warning_count(), 0);
    model_registry_free(&reg);
    assert_int_equal(reg.n, 0);
    assert_null(reg.models);
}

static void test_registry_skips_bad_manifest_with_warning(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "good", NULL, NULL);
    write_manifest("models/b.json", "bad", "\"port\": \"x\"", NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_string_equal(reg.models[0].name, "good:latest");
    assert_int_equal(warning_count(), 1);
    assert_non_null(strstr(warning_text(), at("models/b.json")));
    assert_non_null(strstr(warning_text(), "\"runtime.port\""));
    assert_non_null(strstr(warning_text(), "skipped"));
    model_registry_free(&reg);
}

static void test_registry_first_definition_wins(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/1.json", "qwen3", "\"port\": 8001", NULL);
    write_manifest("models/2.json", "Library/QWEN3:latest", "\"port\": 8002", NULL);
    write_manifest("models/3.json", "other", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 2);
    assert_string_equal(reg.models[0].name, "qwen3:latest");
    assert_int_equal(reg.models[0].runtime_port, 8001);
    assert_string_equal(reg.models[1].name, "other:latest");
    assert_int_equal(warning_count(), 1);
    assert_non_null(strstr(warning_text(), at("models/2.json")));
    assert_non_null(strstr(warning_text(), at("models/1.json")));
    assert_non_null(strstr(warning_text(), "already defined"));
    model_registry_free(&reg);
}

static void test_registry_ignores_hidden_and_non_json(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "a", NULL, NULL);
    write_manifest("models/.hidden.json", "hidden", NULL, NULL);
    write_manifest("models/b.json.bak", "bak", NULL, NULL);
    write_manifest("models/c.txt", "txt", NULL, NULL);
    mkdirs(at("models/dir.json"));
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_string_equal(reg.models[0].name, "a:latest");
    /* a directory named *.json is reported */
    assert_int_equal(warning_count(), 1);
    assert_non_null(strstr(warning_text(), "dir.json"));
    model_registry_free(&reg);
}

/* The directory comes from the caller only (axllama serve passes --models, else AXLLAMA_MODELS):
 * the registry itself reads no setting, so AXLLAMA_MODELS alone changes nothing here. */
static void test_registry_does_not_read_axllama_models(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "from-env", NULL, NULL);
    write_file_mode("home/.config/axllama/models/bin/runtime", "", 0755);
    write_file("home/.config/axllama/models/tok/tokenizer.json", "{}");
    write_manifest("home/.config/axllama/models/a.json", "from-home", NULL, NULL);
    setenv("AXLLAMA_MODELS", at("models"), 1);
    model_registry reg = load_registry(NULL, "/bin/true", "/tok");
    assert_true(reg.n >= 1); /* /etc/axllama/models may add more */
    assert_string_equal(reg.models[0].name, "from-home:latest");
    assert_null(model_registry_find(&reg, "from-env"));
    model_registry_free(&reg);
}

/* A named directory is the only one read: the per-user directory's models are not added. */
static void test_registry_named_dir_is_the_only_one(void **state)
{
    (void)state;
    write_file_mode("home/.config/axllama/models/bin/runtime", "", 0755);
    write_file("home/.config/axllama/models/tok/tokenizer.json", "{}");
    write_manifest("home/.config/axllama/models/a.json", "from-home", NULL, NULL);
    write_file_mode("other/bin/runtime", "", 0755);
    write_file("other/tok/tokenizer.json", "{}");
    write_manifest("other/a.json", "from-named-dir", NULL, NULL);
    model_registry reg = load_registry("other", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_string_equal(reg.models[0].name, "from-named-dir:latest");
    model_registry_free(&reg);
}

static void test_registry_xdg_config_home(void **state)
{
    (void)state;
    write_file_mode("xdg/axllama/models/bin/runtime", "", 0755);
    write_file("xdg/axllama/models/tok/tokenizer.json", "{}");
    write_manifest("xdg/axllama/models/a.json", "from-xdg", NULL, NULL);
    write_manifest("home/.config/axllama/models/a.json", "from-home", NULL, NULL);
    setenv("XDG_CONFIG_HOME", at("xdg"), 1);
    model_registry reg = load_registry(NULL, "/bin/true", "/tok");
    assert_true(reg.n >= 1); /* /etc/axllama/models may add more */
    assert_string_equal(reg.models[0].name, "from-xdg:latest");
    assert_null(model_registry_find(&reg, "from-home"));
    model_registry_free(&reg);
}

static void test_registry_home_config_when_xdg_unset_or_relative(void **state)
{
    (void)state;
    write_file_mode("home/.config/axllama/models/bin/runtime", "", 0755);
    write_file("home/.config/axllama/models/tok/tokenizer.json", "{}");
    write_manifest("home/.config/axllama/models/a.json", "from-home", NULL, NULL);
    for (int relative = 0; relative < 2; relative++) {
        if (relative)
            setenv("XDG_CONFIG_HOME", "relative/dir", 1); /* ignored, as the XDG spec says */
        model_registry reg = load_registry(NULL, "/bin/true", "/tok");
        assert_true(reg.n >= 1);
        assert_string_equal(reg.models[0].name, "from-home:latest");
        model_registry_free(&reg);
    }
}

static void test_builtin_when_no_manifest(void **state)
{
    (void)state;
    write_file_mode("emu/axllama-emu", "#!/bin/sh\n", 0755);
    struct timespec times[2] = {{1600000000, 0}, {1600000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, at("emu/axllama-emu"), times, 0), 0);
    mkdirs(at("empty"));
    model_registry reg = load_registry("empty", at("emu/axllama-emu"), "/data/tok");
    assert_int_equal(reg.n, 1);
    const model_manifest *m = &reg.models[0];
    assert_string_equal(m->name, "qwen3-emu:latest");
    assert_null(m->path);
    assert_int_equal(m->modified, 1600000000);
    assert_int_equal(strlen(m->digest), 64);
    assert_int_equal(strspn(m->digest, "0123456789abcdef"), 64);
    assert_string_equal(m->runtime_binary, at("emu/axllama-emu"));
    static const char *const args[] = {"--emu-profile",   "fast",        "--emu-port", "{port}",
                                       "--system_prompt", DEFAULT_PROMPT};
    assert_int_equal(m->n_runtime_args, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(m->runtime_args[i], args[i]);
    assert_null(m->runtime_args[6]);
    assert_null(m->runtime_workdir);
    assert_int_equal(m->runtime_port, 0);
    assert_string_equal(m->devices, "0");
    assert_non_null(m->env);
    assert_null(m->env[0]);
    assert_string_equal(m->tokenizer_dir, "/data/tok");
    assert_int_equal(m->tokenizer_port, 0);
    assert_int_equal(m->template_family, CHAT_TEMPLATE_QWEN3);
    assert_int_equal(m->max_prefill, 2048);
    assert_int_equal(m->max_positions, 2559);
    assert_string_equal(m->system_prompt, DEFAULT_PROMPT);
    assert_true(m->thinking);
    assert_false(m->think_default);
    assert_string_equal(m->family, "qwen3");
    assert_string_equal(m->parameter_size, "4.0B");
    assert_string_equal(m->quantization_level, "W8A16");
    assert_string_equal(m->format, "axmodel");
    assert_true(m->size > 1000000000ull);
    assert_int_equal(warning_count(), 0);
    model_registry_free(&reg);
}

static void test_builtin_digest_is_stable(void **state)
{
    (void)state;
    mkdirs(at("empty"));
    model_registry a = load_registry("empty", "/bin/true", "/t1");
    model_registry b = load_registry("empty", "/bin/false", "/t2");
    assert_string_equal(a.models[0].digest, b.models[0].digest);
    model_registry_free(&a);
    model_registry_free(&b);
}

static void test_builtin_not_added_when_a_manifest_exists(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "a", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_null(model_registry_find(&reg, "qwen3-emu"));
    model_registry_free(&reg);
}

static void test_builtin_added_when_every_manifest_is_bad(void **state)
{
    (void)state;
    write_file("models/a.json", "{");
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_string_equal(reg.models[0].name, "qwen3-emu:latest");
    assert_int_equal(warning_count(), 1);
    model_registry_free(&reg);
}

static void test_builtin_needs_emu_and_tokenizer(void **state)
{
    (void)state;
    mkdirs(at("empty"));
    model_registry reg;
    assert_false(model_registry_load(&reg, at("empty"), NULL, "/tok", collect_warning, &warnings));
    assert_int_equal(reg.n, 0);
    model_registry_free(&reg);
    assert_false(model_registry_load(&reg, at("empty"), "/bin/true", NULL, collect_warning, &warnings));
    assert_int_equal(reg.n, 0);
    assert_int_equal(warning_count(), 2);
    model_registry_free(&reg);
    assert_true(model_registry_load(&reg, at("empty"), "/bin/true", "/tok", NULL, NULL));
    assert_int_equal(reg.n, 1);
    model_registry_free(&reg);
}

static void test_missing_explicit_dir_warns_then_builtin(void **state)
{
    (void)state;
    model_registry reg = load_registry("does-not-exist", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_string_equal(reg.models[0].name, "qwen3-emu:latest");
    assert_int_equal(warning_count(), 1);
    assert_non_null(strstr(warning_text(), at("does-not-exist")));
    model_registry_free(&reg);
}

static void test_missing_default_dirs_are_silent(void **state)
{
    (void)state;
    if (access("/etc/axllama/models", F_OK) == 0)
        skip(); /* this machine has system-wide models */
    model_registry reg = load_registry(NULL, "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    assert_string_equal(reg.models[0].name, "qwen3-emu:latest");
    assert_int_equal(warning_count(), 0);
    model_registry_free(&reg);
}

static void test_find_any_spelling_case_insensitive(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "Qwen3:4B", NULL, NULL);
    write_manifest("models/b.json", "user/tiny", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 2);
    static const char *const spellings[] = {"Qwen3:4B", "qwen3:4b", "library/qwen3:4b",
                                            "registry.ollama.ai/library/QWEN3:4b"};
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(model_registry_find(&reg, spellings[i]), &reg.models[0]);
    assert_ptr_equal(model_registry_find(&reg, "USER/Tiny"), &reg.models[1]);
    assert_ptr_equal(model_registry_find(&reg, "user/tiny:latest"), &reg.models[1]);
    assert_string_equal(reg.models[0].name, "Qwen3:4B"); /* the manifest's spelling is kept */
    model_registry_free(&reg);
}

static void test_find_unknown_or_invalid_is_null(void **state)
{
    (void)state;
    mkdirs(at("empty"));
    model_registry reg = load_registry("empty", "/bin/true", "/tok");
    assert_non_null(model_registry_find(&reg, "qwen3-emu"));
    assert_non_null(model_registry_find(&reg, "qwen3-emu:latest"));
    assert_null(model_registry_find(&reg, "qwen3-emu:4b"));
    assert_null(model_registry_find(&reg, "other/qwen3-emu"));
    assert_null(model_registry_find(&reg, "qwen3 emu"));
    assert_null(model_registry_find(&reg, ""));
    assert_null(model_registry_find(&reg, NULL));
    model_registry_free(&reg);
}

/* ================================ models joining a loaded registry ================================ */

static void test_refresh_adds_a_manifest_written_after_the_load(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "first", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1);
    const model_manifest *first = model_registry_find(&reg, "first");
    assert_ptr_equal(first, &reg.models[0]);
    assert_null(model_registry_find(&reg, "second"));
    write_manifest("models/b.json", "second", NULL, NULL);
    assert_int_equal(model_registry_refresh(&reg), 1);
    assert_int_equal(reg.n, 2);
    assert_string_equal(reg.models[1].name, "second:latest");
    assert_string_equal(reg.models[1].path, at("models/b.json"));
    assert_ptr_equal(model_registry_find(&reg, "first"), first); /* entries never move */
    assert_int_equal(model_registry_refresh(&reg), 0);           /* nothing new */
    assert_non_null(strstr(warning_text(), "b.json: model second:latest added"));
    model_registry_free(&reg);
}

static void test_lookup_miss_finds_a_manifest_written_after_the_load(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "first", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    write_manifest("models/c.json", "third", NULL, NULL);
    const model_manifest *m = model_registry_find(&reg, "third:latest");
    assert_non_null(m);
    assert_ptr_equal(m, &reg.models[1]);
    assert_null(model_registry_find(&reg, "fourth"));
    model_registry_free(&reg);
}

static void test_refresh_sees_a_directory_created_after_the_load(void **state)
{
    (void)state;
    make_model_files();
    model_registry reg = load_registry("later", "/bin/true", "/tok");
    assert_int_equal(reg.n, 1); /* the built-in model */
    write_file_mode("later/bin/runtime", "#!/bin/sh\n", 0755);
    write_file("later/tok/tokenizer.json", "{}");
    write_manifest("later/m.json", "late", NULL, NULL);
    assert_non_null(model_registry_find(&reg, "late"));
    assert_int_equal(reg.n, 2);
    assert_non_null(model_registry_find(&reg, "qwen3-emu")); /* the built-in model stays */
    model_registry_free(&reg);
}

static void test_refresh_keeps_a_changed_manifest_until_restart(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "first", NULL, "\"size\": 1");
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    write_manifest("models/a.json", "first", NULL, "\"size\": 22");
    struct timespec times[2] = {{1700000000, 0}, {1700000000, 0}}; /* a different mtime for sure */
    assert_int_equal(utimensat(AT_FDCWD, at("models/a.json"), times, 0), 0);
    write_manifest("models/b.json", "second", NULL, NULL); /* the directory changes */
    assert_int_equal(model_registry_refresh(&reg), 1);
    assert_int_equal(reg.models[0].size, 1);
    assert_non_null(strstr(warning_text(), "model \"first:latest\" changed; the change takes effect when axllama "
                                           "serve restarts"));
    size_t warned = warning_count();
    write_manifest("models/c.json", "third", NULL, NULL);
    assert_int_equal(model_registry_refresh(&reg), 1);
    assert_int_equal(warning_count(), warned + 1); /* "third added"; the change is not reported again */
    model_registry_free(&reg);
}

static void test_refresh_reports_a_bad_new_manifest_once(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "first", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    write_file("models/bad.json", "{");
    assert_int_equal(model_registry_refresh(&reg), 0);
    assert_int_equal(warning_count(), 1);
    assert_non_null(strstr(warning_text(), "bad.json"));
    write_manifest("models/b.json", "second", NULL, NULL);
    assert_int_equal(model_registry_refresh(&reg), 1);
    assert_int_equal(warning_count(), 2); /* the bad file is not reported again */
    model_registry_free(&reg);
}

static void test_refresh_stops_at_the_spare_room(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "first", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    for (int i = 0; i < MODEL_REGISTRY_SPARE + 2; i++) {
        char rel[64], name[32];
        snprintf(rel, sizeof rel, "models/m%03d.json", i);
        snprintf(name, sizeof name, "m%d", i);
        write_manifest(rel, name, NULL, NULL);
    }
    assert_int_equal(model_registry_refresh(&reg), MODEL_REGISTRY_SPARE);
    assert_int_equal(reg.n, 1 + MODEL_REGISTRY_SPARE);
    assert_non_null(strstr(warning_text(), "no room for more models until axllama serve restarts"));
    model_registry_free(&reg);
}

static void test_fixed_registry_does_not_refresh(void **state)
{
    (void)state;
    model_manifest one = {.name = (char *)"fixed:latest"};
    model_registry reg = {.models = &one, .n = 1};
    assert_int_equal(model_registry_refresh(&reg), 0);
    assert_ptr_equal(model_registry_find(&reg, "fixed"), &one);
    assert_null(model_registry_find(&reg, "other"));
}

typedef struct {
    model_registry *reg;
    atomic_bool stop;
    atomic_size_t lookups; /* rounds of lookups done */
    atomic_size_t wrong;   /* lookups that found another entry, or none */
} reader_state;

static void *reader_main(void *arg)
{
    reader_state *r = arg;
    while (!atomic_load(&r->stop)) {
        size_t n = r->reg->n;
        for (size_t i = 0; i < n; i++)
            if (model_registry_find(r->reg, r->reg->models[i].name) != &r->reg->models[i])
                atomic_fetch_add(&r->wrong, 1); /* asserted on the test's thread */
        atomic_fetch_add(&r->lookups, 1);
    }
    return NULL;
}

/* Waits (at most 10 s) until the reader has done more than `after` rounds. */
static bool reader_passes(reader_state *r, size_t after)
{
    for (double end = clock_mono() + 10; clock_mono() < end; clock_sleep(0.001))
        if (atomic_load(&r->lookups) > after)
            return true;
    return false;
}

static void test_lookups_on_other_threads_while_models_join(void **state)
{
    (void)state;
    make_model_files();
    write_manifest("models/a.json", "first", NULL, NULL);
    model_registry reg = load_registry("models", "/bin/true", "/tok");
    reader_state r = {.reg = &reg};
    atomic_init(&r.stop, false);
    atomic_init(&r.lookups, 0);
    atomic_init(&r.wrong, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    assert_true(reader_passes(&r, 0)); /* the reader runs before models join, and while they do */
    for (int i = 0; i < 20; i++) {
        char rel[64], name[32];
        snprintf(rel, sizeof rel, "models/j%02d.json", i);
        snprintf(name, sizeof name, "joiner%d", i);
        write_manifest(rel, name, NULL, NULL);
        assert_non_null(model_registry_find(&reg, name));
    }
    assert_true(reader_passes(&r, atomic_load(&r.lookups))); /* a full round over all 21 */
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&r.wrong), 0);
    assert_int_equal(reg.n, 21);
    model_registry_free(&reg);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_registry_sorted_by_file_name),
        T(test_registry_skips_bad_manifest_with_warning),
        T(test_registry_first_definition_wins),
        T(test_registry_ignores_hidden_and_non_json),
        T(test_registry_does_not_read_axllama_models),
        T(test_registry_named_dir_is_the_only_one),
        T(test_registry_xdg_config_home),
        T(test_registry_home_config_when_xdg_unset_or_relative),
        T(test_builtin_when_no_manifest),
        T(test_builtin_digest_is_stable),
        T(test_builtin_not_added_when_a_manifest_exists),
        T(test_builtin_added_when_every_manifest_is_bad),
        T(test_builtin_needs_emu_and_tokenizer),
        T(test_missing_explicit_dir_warns_then_builtin),
        T(test_missing_default_dirs_are_silent),
        T(test_find_any_spelling_case_insensitive),
        T(test_find_unknown_or_invalid_is_null),
        T(test_refresh_adds_a_manifest_written_after_the_load),
        T(test_lookup_miss_finds_a_manifest_written_after_the_load),
        T(test_refresh_sees_a_directory_created_after_the_load),
        T(test_refresh_keeps_a_changed_manifest_until_restart),
        T(test_refresh_reports_a_bad_new_manifest_once),
        T(test_refresh_stops_at_the_spare_room),
        T(test_fixed_registry_does_not_refresh),
        T(test_lookups_on_other_threads_while_models_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
