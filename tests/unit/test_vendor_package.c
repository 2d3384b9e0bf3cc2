/* Tests for models/vendor_package (vendor_package.c, _files.c, _model.c): choosing the runtime for
 * a machine, recognising chat templates, the README's geometry, default names; then whole fixture
 * packages (vendor_fixture.h): the manifest of a good one (and that it loads), each platform, the
 * Qwen2.5 kind, the tokenizer choice, --compat and the other options, and every bad folder with the
 * message it gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/manifest.h"
#include "models/vendor_package.h"
#include "vendor_fixture.h"

static void assert_words(const rs_words *w, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    assert_int_equal(w->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(w->v[i], want[i]);
    assert_null(w->v[n]);
}

/* ================================ runtimes, templates, geometry, names ================================ */

static void test_runtime_for_each_machine(void **state)
{
    (void)state;
    vp_runtime r;
    assert_true(vp_runtime_for_machine("x86_64", false, &r));
    assert_int_equal(r, VP_RUNTIME_AXCL_X86);
    assert_true(vp_runtime_for_machine("x86_64", true, &r));
    assert_int_equal(r, VP_RUNTIME_AXCL_X86);
    assert_true(vp_runtime_for_machine("aarch64", true, &r));
    assert_int_equal(r, VP_RUNTIME_AXCL_AARCH64);
    assert_true(vp_runtime_for_machine("aarch64", false, &r));
    assert_int_equal(r, VP_RUNTIME_AX650);
    assert_true(vp_runtime_for_machine("arm64", false, &r));
    assert_int_equal(r, VP_RUNTIME_AX650);
    assert_false(vp_runtime_for_machine("armv7l", true, &r));
    assert_true(vp_runtime_parse("axcl_aarch64", &r));
    assert_int_equal(r, VP_RUNTIME_AXCL_AARCH64);
    assert_true(vp_runtime_parse("main_api_ax650", &r));
    assert_int_equal(r, VP_RUNTIME_AX650);
    assert_false(vp_runtime_parse("axcl", &r));
    assert_string_equal(vp_runtime_binary(VP_RUNTIME_AXCL_X86), "main_api_axcl_x86");
    assert_string_equal(vp_runtime_name(VP_RUNTIME_AX650), "ax650");
}

static void test_template_families(void **state)
{
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", getenv("AXLLAMA_TOKENIZER_DIR"));
    json_t *config = json_load_file(path, 0, NULL);
    assert_non_null(config);
    chat_template_family f = CHAT_TEMPLATE_QWEN25;
    assert_true(vp_template_family(json_string_value(json_object_get(config, "chat_template")), &f));
    assert_int_equal(f, CHAT_TEMPLATE_QWEN3);
    json_decref(config);

    char *t25 = vf_qwen25_template();
    assert_non_null(t25);
    assert_true(vp_template_family(t25, &f));
    assert_int_equal(f, CHAT_TEMPLATE_QWEN25);
    free(t25);

    assert_false(vp_template_family(VF_LLAMA_TEMPLATE, &f));
    assert_false(vp_template_family(NULL, &f));
    /* ChatML without Qwen's thinking and without its default system prompt (e.g. Qwen3-2507-Instruct) */
    assert_false(vp_template_family("{{'<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>'}}<tool_call>", &f));
    assert_string_equal(vp_template_name(CHAT_TEMPLATE_QWEN25), "qwen2.5");
    assert_string_equal(vp_template_name(CHAT_TEMPLATE_QWEN3), "qwen3");
}

static void test_readme_geometry(void **state)
{
    (void)state;
    int positions, prefill;
    vp_readme_geometry("[I][ Init][ 188]: max_token_len : 2559\n[I][ Init][ 205]: grp: 1, prefill_max_token_num : 1\n"
                       "[I][ Init][ 205]: grp: 6, prefill_max_token_num : 2048\n"
                       "[I][ Init][ 209]: prefill_max_token_num : 2048\n",
                       &positions, &prefill);
    assert_int_equal(positions, 2559);
    assert_int_equal(prefill, 2048);
    vp_readme_geometry("max_token_len : 1024, kv_cache_num: 1024\n", &positions, &prefill);
    assert_int_equal(positions, 1024);
    assert_int_equal(prefill, 0);
    vp_readme_geometry("nothing here; max_token_len is mentioned only\n", &positions, &prefill);
    assert_int_equal(positions, 0);
    assert_int_equal(prefill, 0);
}

static void test_default_names(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Qwen3-4B", "qwen3:4b"},
        {"Qwen3-1.7B", "qwen3:1.7b"},
        {"Qwen2.5-1.5B-Instruct", "qwen2.5:1.5b-instruct"},
        {"DeepSeek-R1-Distill-Qwen-7B", "deepseek-r1-distill-qwen:7b"},
        {"SmolLM2-360M-Instruct", "smollm2:360m-instruct"},
        {"SmolLM", "smollm:latest"},
        {"my model", "my-model:latest"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[MODEL_NAME_DISPLAY_MAX];
        assert_true(vp_default_name(cases[i][0], out, sizeof out));
        assert_string_equal(out, cases[i][1]);
    }
    char out[MODEL_NAME_DISPLAY_MAX];
    assert_false(vp_default_name("", out, sizeof out));
    assert_false(vp_default_name("-", out, sizeof out));
    vp_manifest_file_name("qwen3:4b", out, sizeof out);
    assert_string_equal(out, "qwen3-4b.json");
    vp_manifest_file_name("user/model:tag", out, sizeof out);
    assert_string_equal(out, "user-model-tag.json");
}

/* ================================ packages ================================ */

static vfix fx;

/* dir/rel: an executable that is only a 64-bit little-endian ELF header for e_machine (62 x86_64,
 * 183 aarch64): what the inspection reads to tell a program's processor. */
static void write_elf_header(const char *rel, unsigned char e_machine)
{
    unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    elf[18] = e_machine;
    vf_write_bytes(&fx, rel, elf, sizeof elf, 0755);
}

/* These tests only inspect, and tell the inspection the machine is x86_64: the package's
 * main_api_axcl_x86 becomes an x86_64 ELF header rather than the emulator vfix_make links, which
 * is an aarch64 program in the arm64 build (make test-arm64) and would be refused as one. */
static bool make_x86_package(const char *name)
{
    if (!vfix_make(&fx, name))
        return false;
    write_elf_header("main_api_axcl_x86", 62);
    return true;
}

static int package_setup(void **state)
{
    (void)state;
    return make_x86_package("Qwen3-4B") ? 0 : -1;
}

static int package_teardown(void **state)
{
    (void)state;
    vfix_remove(&fx);
    return 0;
}

static vp_options x86_options(void)
{
    return (vp_options){.dir = fx.dir, .machine = "x86_64"};
}

/* Inspects with opt and expects a refusal whose message holds every one of the NULL-terminated
 * needles; returns the message (owned) for more checks. */
static char *expect_refusal(const vp_options *opt, const char *const *needles)
{
    vp_import imp;
    strbuf err = {0};
    bool ok = vendor_package_inspect(opt, &imp, &err);
    if (ok)
        fail_msg("the import of %s was not refused", opt->dir);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.data ? err.data : "", needles[i]))
            fail_msg("the message does not say \"%s\":\n%s", needles[i], err.data ? err.data : "(none)");
    assert_null(imp.name); /* nothing left behind */
    return sb_steal(&err);
}

/* The manifest of imp, written to a file and loaded back with the server's parser. */
static void load_manifest_of(const vp_import *imp, model_manifest *m)
{
    json_t *j = vendor_package_manifest(imp);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/m.json", fx.root);
    assert_int_equal(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    char err[1024] = "";
    if (!model_manifest_load(m, path, err, sizeof err))
        fail_msg("the manifest does not load: %s", err);
}

static void test_good_package_on_x86_64(void **state)
{
    (void)state;
    vp_options opt = x86_options();
    vp_import imp;
    strbuf err = {0};
    if (!vendor_package_inspect(&opt, &imp, &err))
        fail_msg("refused: %s", err.data);
    assert_int_equal(imp.runtime, VP_RUNTIME_AXCL_X86);
    assert_string_equal(imp.binary, vf_path(&fx, "main_api_axcl_x86"));
    assert_string_equal(imp.script, "run_qwen3_4b_int8_ctx_axcl_x86.sh");
    assert_false(imp.script_other);
    assert_string_equal(imp.tokenizer_dir, vf_path(&fx, "qwen3_tokenizer"));
    assert_int_equal(imp.family, CHAT_TEMPLATE_QWEN3);
    assert_true(imp.thinking);
    assert_int_equal(imp.max_prefill, 2048);
    assert_int_equal(imp.max_positions, 2559);
    assert_true(imp.geometry_from_readme);
    assert_int_equal(imp.size, VF_MODEL_BYTES);
    assert_int_equal(imp.n_model_files, VF_LAYERS + 2);
    assert_string_equal(imp.name, "qwen3:4b");
    assert_string_equal(imp.parameter_size, "4.0B");
    assert_string_equal(imp.quantization, "W8A16");
    const char *dropped[] = {"--url_tokenizer_model", "--live_print", "--devices", NULL};
    assert_words(&imp.flags.dropped, dropped);

    model_manifest m;
    load_manifest_of(&imp, &m);
    assert_string_equal(m.name, "qwen3:4b");
    assert_string_equal(m.runtime_binary, vf_path(&fx, "main_api_axcl_x86"));
    const char *args[] = {"--system_prompt",
                          VF_SYSTEM_PROMPT,
                          "--template_filename_axmodel",
                          "qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel",
                          "--axmodel_num",
                          "4",
                          "--filename_post_axmodel",
                          "qwen3-4b-ax650/qwen3_post.axmodel",
                          "--filename_tokens_embed",
                          "qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin",
                          "--tokens_embed_num",
                          "151936",
                          "--tokens_embed_size",
                          "2560",
                          "--use_mmap_load_embed",
                          "1",
                          NULL};
    rs_words got = {.v = m.runtime_args, .n = m.n_runtime_args};
    assert_words(&got, args);
    assert_string_equal(m.runtime_workdir, fx.dir);
    assert_int_equal(m.runtime_port, 8000);
    assert_string_equal(m.devices, "auto");
    assert_true(m.has_load_timeout);
    assert_true(m.load_timeout_s == 300);
    assert_string_equal(m.env[0], "LD_LIBRARY_PATH=/usr/lib/axcl");
    assert_null(m.env[1]);
    assert_string_equal(m.tokenizer_dir, vf_path(&fx, "qwen3_tokenizer"));
    assert_int_equal(m.tokenizer_port, 0);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN3);
    assert_int_equal(m.max_prefill, 2048);
    assert_int_equal(m.max_positions, 2559);
    assert_string_equal(m.system_prompt, VF_SYSTEM_PROMPT);
    assert_true(m.thinking);
    assert_false(m.think_default);
    assert_string_equal(m.family, "qwen3");
    assert_string_equal(m.parameter_size, "4.0B");
    assert_string_equal(m.quantization_level, "W8A16");
    assert_string_equal(m.format, "axmodel");
    assert_int_equal(m.size, VF_MODEL_BYTES);
    assert_null(m.upstream_url);
    model_manifest_free(&m);
    vp_import_free(&imp);
    sb_free(&err);
}

static void test_aarch64_with_and_without_the_axcl_driver(void **state)
{
    (void)state;
    vp_options opt = {.dir = fx.dir, .machine = "aarch64", .axcl_driver = true};
    vp_import imp;
    strbuf err = {0};
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_int_equal(imp.runtime, VP_RUNTIME_AXCL_AARCH64);
    assert_string_equal(imp.script, "run_qwen3_4b_int8_ctx_axcl_aarch64.sh");
    model_manifest m;
    load_manifest_of(&imp, &m);
    assert_string_equal(m.runtime_binary, vf_path(&fx, "main_api_axcl_aarch64"));
    assert_string_equal(m.devices, "auto");
    model_manifest_free(&m);
    vp_import_free(&imp);

    opt.axcl_driver = false;
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_int_equal(imp.runtime, VP_RUNTIME_AX650);
    assert_string_equal(imp.script, "run_qwen3_4b_int8_ctx_ax650.sh");
    load_manifest_of(&imp, &m);
    assert_string_equal(m.runtime_binary, vf_path(&fx, "main_api_ax650"));
    assert_null(m.devices); /* the native build has no --devices */
    assert_false(m.has_load_timeout);
    assert_null(m.env[0]);
    model_manifest_free(&m);
    vp_import_free(&imp);
    assert_null(err.data);
}

static void test_runtime_asked_for_and_script_of_another_platform(void **state)
{
    (void)state;
    unlink(vf_path(&fx, "run_qwen3_4b_int8_ctx_axcl_x86.sh"));
    vf_write_script(&fx, "run_qwen3_4b_int8_ctx_axcl_x86_api.sh", "main_api_axcl_x86", "0,1");
    vf_write_script(&fx, "run_qwen3_4b_int8_ctx_axcl_x86.sh", "main_axcl_x86", "0");
    vp_options opt = x86_options();
    vp_import imp;
    strbuf err = {0};
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_string_equal(imp.script, "run_qwen3_4b_int8_ctx_axcl_x86_api.sh"); /* the API script first */
    vp_import_free(&imp);

    /* no script for aarch64 AXCL: another platform's flags, said so */
    unlink(vf_path(&fx, "run_qwen3_4b_int8_ctx_axcl_aarch64.sh"));
    opt = (vp_options){.dir = fx.dir, .machine = "aarch64", .has_runtime = true, .runtime = VP_RUNTIME_AXCL_AARCH64};
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_int_equal(imp.runtime, VP_RUNTIME_AXCL_AARCH64);
    assert_true(imp.script_other);
    assert_string_equal(imp.script, "run_qwen3_4b_int8_ctx_ax650.sh");
    vp_import_free(&imp);
    sb_free(&err);
}

static void test_qwen25_package(void **state)
{
    (void)state;
    vfix_remove(&fx);
    assert_true(make_x86_package("Qwen2.5-1.5B-Instruct"));
    /* only the Qwen2.5 tokenizer */
    unlink(vf_path(&fx, "qwen3_tokenizer/tokenizer.json"));
    unlink(vf_path(&fx, "qwen3_tokenizer/tokenizer_config.json"));
    rmdir(vf_path(&fx, "qwen3_tokenizer"));
    vp_options opt = x86_options();
    vp_import imp;
    strbuf err = {0};
    if (!vendor_package_inspect(&opt, &imp, &err))
        fail_msg("refused: %s", err.data);
    assert_string_equal(imp.name, "qwen2.5:1.5b-instruct");
    assert_string_equal(imp.parameter_size, "1.5B");
    assert_string_equal(imp.tokenizer_dir, vf_path(&fx, "qwen2.5_tokenizer"));
    model_manifest m;
    load_manifest_of(&imp, &m);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN25);
    assert_false(m.thinking);
    assert_string_equal(m.family, "qwen2");
    model_manifest_free(&m);
    vp_import_free(&imp);
}

static void test_tokenizer_folder_choice(void **state)
{
    (void)state;
    /* two complete folders: the one named like the model's files wins (qwen3_p128_l%d) */
    vp_options opt = x86_options();
    vp_import imp;
    strbuf err = {0};
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_string_equal(imp.tokenizer_dir, vf_path(&fx, "qwen3_tokenizer"));
    vp_import_free(&imp);
    /* --tokenizer overrides it */
    opt.tokenizer_dir = vf_path(&fx, "qwen2.5_tokenizer");
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_string_equal(imp.tokenizer_dir, vf_path(&fx, "qwen2.5_tokenizer"));
    assert_int_equal(imp.family, CHAT_TEMPLATE_QWEN25);
    vp_import_free(&imp);
    /* two folders and neither fits the model: ask */
    assert_int_equal(rename(vf_path(&fx, "qwen3_tokenizer"), vf_path(&fx, "other_tokenizer")), 0);
    opt.tokenizer_dir = NULL;
    char *msg = expect_refusal(&opt, (const char *[]){"has several tokenizer folders and none of them is clearly this "
                                                      "model's: other_tokenizer qwen2.5_tokenizer; choose one with "
                                                      "--tokenizer DIR",
                                                      NULL});
    free(msg);
    sb_free(&err);
}

static void test_options_name_geometry_port_template(void **state)
{
    (void)state;
    vp_options opt = x86_options();
    opt.name = "Team/Qwen3:Custom";
    opt.max_prefill = 1024;
    opt.max_positions = 1500;
    opt.port = 18000;
    opt.template_name = "qwen2.5";
    vp_import imp;
    strbuf err = {0};
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_string_equal(imp.name, "Team/Qwen3:Custom");
    assert_true(imp.family_forced);
    model_manifest m;
    load_manifest_of(&imp, &m);
    assert_int_equal(m.max_prefill, 1024);
    assert_int_equal(m.max_positions, 1500);
    assert_int_equal(m.runtime_port, 18000);
    assert_int_equal(m.template_family, CHAT_TEMPLATE_QWEN25);
    model_manifest_free(&m);
    vp_import_free(&imp);

    /* no geometry in the README: the defaults */
    vf_write(&fx, "README.md", "# a model\n");
    opt = x86_options();
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_false(imp.geometry_from_readme);
    assert_int_equal(imp.max_prefill, 2048);
    assert_int_equal(imp.max_positions, 2559);
    assert_string_equal(imp.quantization, "");
    vp_import_free(&imp);
    /* a smaller model context from the README: the prefill follows it */
    vf_write(&fx, "README.md", "max_token_len : 1023\n");
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_int_equal(imp.max_positions, 1023);
    assert_int_equal(imp.max_prefill, 1023);
    vp_import_free(&imp);
    sb_free(&err);

    opt.max_prefill = 3000;
    free(expect_refusal(
        &opt, (const char *[]){"the largest prefill (3000) is more than the context's positions (1023)", NULL}));
    opt = x86_options();
    opt.name = "bad name!";
    free(expect_refusal(&opt, (const char *[]){"\"bad name!\" is not a valid model name", NULL}));
}

static void test_compat_mode_manifest(void **state)
{
    (void)state;
    vf_write_tokenizer_config(&fx, "qwen3_tokenizer/tokenizer_config.json", VF_LLAMA_TEMPLATE);
    vp_options opt = x86_options();
    opt.compat = true;
    vp_import imp;
    strbuf err = {0};
    if (!vendor_package_inspect(&opt, &imp, &err))
        fail_msg("refused: %s", err.data);
    assert_string_equal(imp.upstream_script, "qwen3_tokenizer_uid.py");
    model_manifest m;
    load_manifest_of(&imp, &m);
    assert_string_equal(m.upstream_url, "http://127.0.0.1:12345");
    const char *cmd[] = {"python3", "qwen3_tokenizer_uid.py", "--host", "127.0.0.1", "--port", "12345", NULL};
    rs_words got = {.v = m.upstream_command, .n = m.n_upstream_command};
    assert_words(&got, cmd);
    assert_string_equal(m.upstream_workdir, fx.dir);
    assert_int_equal(m.tokenizer_port, 0);
    model_manifest_free(&m);
    vp_import_free(&imp);

    unlink(vf_path(&fx, "qwen3_tokenizer_uid.py"));
    free(expect_refusal(&opt, (const char *[]){"--compat needs the vendor's tokenizer service (a *_tokenizer_uid.py "
                                               "script) in",
                                               NULL}));
    sb_free(&err);
}

/* ================================ bad folders ================================ */

static void test_refuses_lfs_pointer_binary(void **state)
{
    (void)state;
    vf_make_lfs_pointer(&fx, "main_api_axcl_x86");
    vp_options opt = x86_options();
    char *msg = expect_refusal(
        &opt,
        (const char *[]){"holds Git LFS pointer files (small text stand-ins) instead of the real files the "
                         "runtime needs:\n  main_api_axcl_x86 (132 bytes; the real file has 1.0 MB)\n",
                         "git lfs install && git lfs pull", "huggingface-cli download AXERA-TECH/Qwen3-4B", NULL});
    assert_null(strstr(msg, "axmodel")); /* only the offenders */
    free(msg);
}

static void test_refuses_lfs_pointer_models_each_by_name(void **state)
{
    (void)state;
    vf_make_lfs_pointer(&fx, "qwen3-4b-ax650/qwen3_p128_l0_together.axmodel");
    vf_make_lfs_pointer(&fx, "qwen3-4b-ax650/qwen3_p128_l3_together.axmodel");
    vf_make_lfs_pointer(&fx, "qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin");
    /* a pointer the chosen runtime does not need is no reason to refuse */
    vf_make_lfs_pointer(&fx, "main_api_ax650");
    vp_options opt = x86_options();
    char *msg = expect_refusal(&opt, (const char *[]){"  qwen3-4b-ax650/qwen3_p128_l0_together.axmodel (132 bytes",
                                                      "  qwen3-4b-ax650/qwen3_p128_l3_together.axmodel (132 bytes",
                                                      "  qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin (132 "
                                                      "bytes",
                                                      NULL});
    assert_null(strstr(msg, "main_api_ax650"));
    assert_null(strstr(msg, "l1_together"));
    free(msg);
}

static void test_refuses_lfs_pointer_tokenizer(void **state)
{
    (void)state;
    vf_make_lfs_pointer(&fx, "qwen3_tokenizer/tokenizer.json");
    vp_options opt = x86_options();
    free(expect_refusal(&opt, (const char *[]){"  qwen3_tokenizer/tokenizer.json (132 bytes", NULL}));
}

static void test_refuses_missing_model_files(void **state)
{
    (void)state;
    unlink(vf_path(&fx, "qwen3-4b-ax650/qwen3_p128_l2_together.axmodel"));
    unlink(vf_path(&fx, "qwen3-4b-ax650/qwen3_post.axmodel"));
    vp_options opt = x86_options();
    char *msg =
        expect_refusal(&opt, (const char *[]){"is incomplete: the runtime needs these files, which are missing:\n"
                                              "  qwen3-4b-ax650/qwen3_p128_l2_together.axmodel\n"
                                              "  qwen3-4b-ax650/qwen3_post.axmodel",
                                              NULL});
    free(msg);
}

static void test_refuses_binary_that_is_not_executable(void **state)
{
    (void)state;
    unlink(vf_path(&fx, "main_api_ax650"));
    vf_write_bytes(&fx, "main_api_ax650", "#!/bin/sh\nexit 1\n", 17, 0644);
    vp_options opt = {.dir = fx.dir, .machine = "aarch64"};
    char want[PATH_MAX * 2 + 200];
    snprintf(want, sizeof want,
             "%s is not executable (a download from Hugging Face does not keep the executable bit); make it "
             "executable with: chmod +x %s",
             vf_path(&fx, "main_api_ax650"), vf_path(&fx, "main_api_ax650"));
    free(expect_refusal(&opt, (const char *[]){want, NULL}));
}

static void test_refuses_binary_for_another_processor(void **state)
{
    (void)state;
    write_elf_header("main_api_axcl_x86", 183); /* an aarch64 program */
    vp_options opt = x86_options();
    free(expect_refusal(&opt, (const char *[]){"main_api_axcl_x86 is a program for aarch64, and this machine is "
                                               "x86_64; pick the build for this machine with --runtime",
                                               NULL}));
}

static void test_refuses_missing_binary_for_this_machine(void **state)
{
    (void)state;
    unlink(vf_path(&fx, "main_api_axcl_x86"));
    vp_options opt = x86_options();
    free(expect_refusal(&opt, (const char *[]){"has no main_api_axcl_x86, the AXCL build for x86_64 hosts, which this "
                                               "machine needs (x86_64). The package has: main_api_ax650, "
                                               "main_api_axcl_aarch64. --runtime ax650|axcl_aarch64|axcl_x86 picks "
                                               "another one if this machine can run it",
                                               NULL}));
    opt = (vp_options){.dir = fx.dir, .machine = "x86_64", .has_runtime = true, .runtime = VP_RUNTIME_AXCL_X86};
    free(expect_refusal(&opt, (const char *[]){"(asked for with --runtime axcl_x86)", NULL}));
    unlink(vf_path(&fx, "main_api_ax650"));
    unlink(vf_path(&fx, "main_api_axcl_aarch64"));
    opt = x86_options();
    free(expect_refusal(&opt, (const char *[]){"has no main_api_* binary (the runtime's API server): it is not an "
                                               "AXERA model package",
                                               NULL}));
    opt.machine = "riscv64";
    free(expect_refusal(&opt, (const char *[]){"this machine (riscv64) runs none of the vendor's runtimes", NULL}));
}

static void test_refuses_missing_tokenizer(void **state)
{
    (void)state;
    vp_options opt = x86_options();
    /* a folder without tokenizer.json */
    unlink(vf_path(&fx, "qwen3_tokenizer/tokenizer.json"));
    unlink(vf_path(&fx, "qwen2.5_tokenizer/tokenizer.json"));
    free(expect_refusal(&opt, (const char *[]){"/qwen2.5_tokenizer has no tokenizer.json; copy the Hugging Face "
                                               "tokenizer files",
                                               NULL}));
    /* no folder at all */
    for (int i = 0; i < 2; i++) {
        const char *d = i ? "qwen3_tokenizer" : "qwen2.5_tokenizer";
        char rel[64];
        snprintf(rel, sizeof rel, "%s/tokenizer_config.json", d);
        unlink(vf_path(&fx, rel));
        rmdir(vf_path(&fx, d));
    }
    free(expect_refusal(&opt, (const char *[]){"has no tokenizer folder (a *_tokenizer directory with tokenizer.json "
                                               "and tokenizer_config.json); pass one with --tokenizer DIR",
                                               NULL}));
    opt.tokenizer_dir = "/nonexistent/tokenizer";
    free(expect_refusal(&opt, (const char *[]){"--tokenizer /nonexistent/tokenizer is not a directory", NULL}));
}

static void test_refuses_unsupported_tokenizer(void **state)
{
    (void)state;
    unlink(vf_path(&fx, "qwen3_tokenizer/tokenizer.json"));
    vf_write(&fx, "qwen3_tokenizer/tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    vp_options opt = x86_options();
    free(expect_refusal(&opt, (const char *[]){"/qwen3_tokenizer is not one axllama can read: ",
                                               "axllama reads Hugging Face byte-level BPE tokenizers",
                                               "Compatibility mode cannot serve this model either", NULL}));
}

static void test_refuses_unsupported_template_and_says_how_compat_serves_it(void **state)
{
    (void)state;
    unlink(vf_path(&fx, "qwen3_tokenizer/tokenizer_config.json"));
    vf_write_tokenizer_config(&fx, "qwen3_tokenizer/tokenizer_config.json", VF_LLAMA_TEMPLATE);
    vp_options opt = x86_options();
    char want[PATH_MAX + 100];
    snprintf(want, sizeof want, "`axllama import %s --compat` writes such a manifest", fx.dir);
    free(expect_refusal(&opt, (const char *[]){"/qwen3_tokenizer/tokenizer_config.json is not one axllama renders (it "
                                               "renders the Qwen3 and the Qwen2.5 templates, byte for byte).",
                                               "Compatibility mode can serve this model: the vendor's tokenizer "
                                               "service (qwen3_tokenizer_uid.py in the package) renders the template",
                                               want, "--template qwen3|qwen2.5", NULL}));
    unlink(vf_path(&fx, "qwen3_tokenizer_uid.py"));
    free(expect_refusal(&opt, (const char *[]){"add a \"tokenizer_upstream\" key to the manifest", NULL}));
    /* no template at all */
    vf_write_tokenizer_config(&fx, "qwen3_tokenizer/tokenizer_config.json", NULL);
    free(expect_refusal(&opt, (const char *[]){"has no chat template (no chat_template in tokenizer_config.json, no "
                                               "chat_template.jinja)",
                                               NULL}));
    /* --template takes it anyway */
    opt.template_name = "qwen3";
    vp_import imp;
    strbuf err = {0};
    assert_true(vendor_package_inspect(&opt, &imp, &err));
    assert_int_equal(imp.family, CHAT_TEMPLATE_QWEN3);
    vp_import_free(&imp);
    sb_free(&err);
}

static void test_refuses_bad_run_scripts(void **state)
{
    (void)state;
    vp_options opt = x86_options();
    vf_write(&fx, "run_qwen3_4b_int8_ctx_axcl_x86.sh",
             "./main_axcl_x86 --template_filename_axmodel \"qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel\" "
             "--filename_post_axmodel p --filename_tokens_embed e\n");
    free(
        expect_refusal(&opt, (const char *[]){"cannot take the runtime's flags from run_qwen3_4b_int8_ctx_axcl_x86.sh: "
                                              "the command has no --axmodel_num",
                                              NULL}));
    vf_write(&fx, "run_qwen3_4b_int8_ctx_axcl_x86.sh", "./main_axcl_x86 --system_prompt \"$1\"\n");
    free(expect_refusal(&opt, (const char *[]){"line 1: the command uses a shell expansion in \"$1\"", NULL}));
    for (int i = 0; i < 3; i++)
        unlink(vf_path(&fx, i == 0   ? "run_qwen3_4b_int8_ctx_axcl_x86.sh"
                            : i == 1 ? "run_qwen3_4b_int8_ctx_ax650.sh"
                                     : "run_qwen3_4b_int8_ctx_axcl_aarch64.sh"));
    free(expect_refusal(&opt, (const char *[]){"has no run_*.sh script, so the runtime's flags (the model files, the "
                                               "layer count, the embedding size) are unknown",
                                               NULL}));
}

static void test_refuses_what_is_not_a_folder(void **state)
{
    (void)state;
    vp_options opt = {.dir = vf_path(&fx, "README.md"), .machine = "x86_64"};
    free(
        expect_refusal(&opt, (const char *[]){"README.md is not a directory (give the model package's folder)", NULL}));
    opt.dir = "/nonexistent/package";
    free(expect_refusal(&opt, (const char *[]){"cannot open /nonexistent/package: No such file or directory", NULL}));
}

#define P(f) cmocka_unit_test_setup_teardown(f, package_setup, package_teardown)

int main(void)
{
    if (!getenv("AXLLAMA_TOKENIZER_DIR")) {
        fprintf(stderr, "AXLLAMA_TOKENIZER_DIR is not set (scripts/fetch-tokenizer.sh)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_for_each_machine),
        cmocka_unit_test(test_template_families),
        cmocka_unit_test(test_readme_geometry),
        cmocka_unit_test(test_default_names),
        P(test_good_package_on_x86_64),
        P(test_aarch64_with_and_without_the_axcl_driver),
        P(test_runtime_asked_for_and_script_of_another_platform),
        P(test_qwen25_package),
        P(test_tokenizer_folder_choice),
        P(test_options_name_geometry_port_template),
        P(test_compat_mode_manifest),
        P(test_refuses_lfs_pointer_binary),
        P(test_refuses_lfs_pointer_models_each_by_name),
        P(test_refuses_lfs_pointer_tokenizer),
        P(test_refuses_missing_model_files),
        P(test_refuses_binary_that_is_not_executable),
        P(test_refuses_binary_for_another_processor),
        P(test_refuses_missing_binary_for_this_machine),
        P(test_refuses_missing_tokenizer),
        P(test_refuses_unsupported_tokenizer),
        P(test_refuses_unsupported_template_and_says_how_compat_serves_it),
        P(test_refuses_bad_run_scripts),
        P(test_refuses_what_is_not_a_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
