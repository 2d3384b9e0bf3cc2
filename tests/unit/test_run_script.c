/* Tests for models/run_script.c: the vendor's run scripts read with the shell's rules (quotes,
 * backslashes, continuations, comments, redirections, other commands, the refusals with their line),
 * and the runtime's flags sorted: main_api_*'s own kept, axllama's and the refused ones left out,
 * values checked, the model flags required; the layer file of a pattern. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "models/run_script.h"

/* ================================ run scripts ================================ */

typedef struct {
    bool ok;
    rs_words args;
    char *program;
    char err[512];
} script_result;

static script_result read_script(const char *text)
{
    script_result r = {0};
    r.ok = rs_command(text, &r.args, &r.program, r.err, sizeof r.err);
    return r;
}

static void script_result_free(script_result *r)
{
    rs_words_free(&r->args);
    free(r->program);
}

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

static void test_script_vendor_aarch64_script(void **state)
{
    (void)state;
    const char *text = "./main_axcl_aarch64 \\\n"
                       "--system_prompt \"You are Qwen, created by Alibaba Cloud. You are a helpful assistant.\" \\\n"
                       "--template_filename_axmodel \"qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel\" \\\n"
                       "--axmodel_num 36 \\\n"
                       "--url_tokenizer_model \"http://127.0.0.1:12345\" \\\n"
                       "--live_print 1 \\\n"
                       "--devices 0\n"
                       "\n"
                       "# --system_prompt \"Now please \\\"play\\\" the role of a cheerful girlfriend.\" \\\n"
                       "# --kvcache_path /home/axera/ax-llm/build/kvcache_yuanqi \\\n";
    script_result r = read_script(text);
    assert_true(r.ok);
    assert_string_equal(r.program, "./main_axcl_aarch64");
    const char *want[] = {"--system_prompt",
                          "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                          "--template_filename_axmodel",
                          "qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel",
                          "--axmodel_num",
                          "36",
                          "--url_tokenizer_model",
                          "http://127.0.0.1:12345",
                          "--live_print",
                          "1",
                          "--devices",
                          "0",
                          NULL};
    assert_words(&r.args, want);
    script_result_free(&r);
}

static void test_script_quoting_rules(void **state)
{
    (void)state;
    script_result r = read_script("./main_ax650 --a 'single $quoted' --b \"dq \\\"in\\\" \\$x \\\\ \\n\" "
                                  "--c=back\\ slash --d \"line\\\ncontinued\" --e ''\n");
    assert_true(r.ok);
    const char *want[] = {
        "--a", "single $quoted", "--b", "dq \"in\" $x \\ \\n", "--c=back slash", "--d", "linecontinued", "--e", "",
        NULL};
    assert_words(&r.args, want);
    script_result_free(&r);
}

static void test_script_redirections_pipes_and_other_commands(void **state)
{
    (void)state;
    script_result r = read_script("#!/bin/bash\n"
                                  "set -e\n"
                                  "cd \"$(dirname \"$0\")\"\n"
                                  "export LD_LIBRARY_PATH=$PWD:$LD_LIBRARY_PATH\n"
                                  "AXCL_LOG=1 exec ./main_api_ax650 --x 1 --y two 2>&1 | tee log.txt # trailing\n"
                                  "./main_other --z 3\n");
    assert_true(r.ok);
    assert_string_equal(r.program, "./main_api_ax650");
    const char *want[] = {"--x", "1", "--y", "two", NULL};
    assert_words(&r.args, want);
    script_result_free(&r);

    r = read_script("./main_ax650 --x 1 > out.log; ./other\n");
    assert_true(r.ok);
    const char *want2[] = {"--x", "1", NULL};
    assert_words(&r.args, want2);
    script_result_free(&r);
}

static void test_script_refusals_name_the_line(void **state)
{
    (void)state;
    script_result r = read_script("echo hi\n./main_ax650 \\\n--system_prompt \"$PROMPT\" --x 1\n");
    assert_false(r.ok);
    assert_string_equal(r.err, "line 2: the command uses a shell expansion in \"$PROMPT\", which axllama cannot "
                               "expand (it reads run scripts literally)");
    script_result_free(&r);

    r = read_script("./main_ax650 \\\n--a 'open\n");
    assert_false(r.ok);
    assert_string_equal(r.err, "line 2: a single quote is not closed");
    script_result_free(&r);

    r = read_script("\n\n./main_ax650 --a \"open\n");
    assert_false(r.ok);
    assert_string_equal(r.err, "line 3: a double quote is not closed");
    script_result_free(&r);

    r = read_script("python3 qwen3_tokenizer_uid.py\n# ./main_ax650 --x 1\n");
    assert_false(r.ok);
    assert_string_equal(r.err, "no command in it runs a main_* binary");
    script_result_free(&r);
}

/* ================================ flags ================================ */

static rs_words words_of(const char *const *v)
{
    rs_words w = {0};
    while (v[w.n])
        w.n++;
    w.v = (char **)v;
    return w;
}

static const char *const vendor_args[] = {"--system_prompt",
                                          "You are Qwen.",
                                          "--template_filename_axmodel",
                                          "m/l%d.axmodel",
                                          "--axmodel_num",
                                          "36",
                                          "--url_tokenizer_model",
                                          "http://127.0.0.1:12345",
                                          "--filename_post_axmodel",
                                          "m/post.axmodel",
                                          "--filename_tokens_embed=m/embed.bin",
                                          "--tokens_embed_num",
                                          "151936",
                                          "--tokens_embed_size",
                                          "2560",
                                          "--use_mmap_load_embed",
                                          "1",
                                          "--live_print",
                                          "1",
                                          "--port",
                                          "8000",
                                          "--kvcache_path",
                                          "/x",
                                          "--devices",
                                          "0",
                                          NULL};

static void test_flags_keep_the_runtimes_own_and_drop_the_rest(void **state)
{
    (void)state;
    rs_words in = words_of(vendor_args);
    rs_flags f;
    char err[256] = "";
    assert_true(rs_flags_parse(&in, &f, err, sizeof err));
    const char *kept[] = {"--system_prompt",
                          "You are Qwen.",
                          "--template_filename_axmodel",
                          "m/l%d.axmodel",
                          "--axmodel_num",
                          "36",
                          "--filename_post_axmodel",
                          "m/post.axmodel",
                          "--filename_tokens_embed",
                          "m/embed.bin",
                          "--tokens_embed_num",
                          "151936",
                          "--tokens_embed_size",
                          "2560",
                          "--use_mmap_load_embed",
                          "1",
                          NULL};
    assert_words(&f.args, kept);
    const char *dropped[] = {"--url_tokenizer_model", "--live_print", "--port", "--kvcache_path", "--devices", NULL};
    assert_words(&f.dropped, dropped);
    assert_string_equal(f.system_prompt, "You are Qwen.");
    assert_string_equal(f.template_filename, "m/l%d.axmodel");
    assert_string_equal(f.post_filename, "m/post.axmodel");
    assert_string_equal(f.embed_filename, "m/embed.bin");
    assert_int_equal(f.axmodel_num, 36);
    rs_flags_free(&f);
}

static void expect_flags_error(const char *const *args, const char *want)
{
    rs_words in = words_of(args);
    rs_flags f;
    char err[256] = "";
    assert_false(rs_flags_parse(&in, &f, err, sizeof err));
    assert_string_equal(err, want);
    rs_flags_free(&f); /* harmless after a failure */
}

#define MODEL_FLAGS                                                                                       \
    "--template_filename_axmodel", "m/l%d.axmodel", "--axmodel_num", "2", "--filename_post_axmodel", "p", \
        "--filename_tokens_embed", "e"

static void test_flags_refusals(void **state)
{
    (void)state;
    expect_flags_error((const char *[]){MODEL_FLAGS, "--use_mmap_load_embed", "true", NULL},
                       "--use_mmap_load_embed must be 0 or 1 (the runtime takes nothing else), not \"true\"");
    expect_flags_error((const char *[]){"--axmodel_num", "many", NULL},
                       "--axmodel_num must be a whole number from 1 to 1000, not \"many\"");
    expect_flags_error((const char *[]){"--axmodel_num", "0", NULL},
                       "--axmodel_num must be a whole number from 1 to 1000, not \"0\"");
    expect_flags_error((const char *[]){"--tokens_embed_size", "-5", NULL},
                       "--tokens_embed_size must be a whole number from 1 to 2147483647, not \"-5\"");
    expect_flags_error((const char *[]){"--template_filename_axmodel", "m/layer.axmodel", NULL},
                       "--template_filename_axmodel \"m/layer.axmodel\" must hold %d (the layer number) once, and no "
                       "other %");
    expect_flags_error((const char *[]){"--template_filename_axmodel", "m/l%d_%s.axmodel", NULL},
                       "--template_filename_axmodel \"m/l%d_%s.axmodel\" must hold %d (the layer number) once, and "
                       "no other %");
    expect_flags_error((const char *[]){MODEL_FLAGS, "--axmodel_num", "3", NULL}, "--axmodel_num is given twice");
    expect_flags_error((const char *[]){MODEL_FLAGS, "stray", NULL},
                       "unexpected argument \"stray\" (the runtime takes --name value pairs)");
    expect_flags_error((const char *[]){MODEL_FLAGS, "--tokens_embed_num", NULL}, "--tokens_embed_num has no value");
    expect_flags_error((const char *[]){"--template_filename_axmodel", "m/l%d", "--filename_post_axmodel", "p",
                                        "--filename_tokens_embed", "e", NULL},
                       "the command has no --axmodel_num (the runtime needs it to find the model)");
    expect_flags_error(
        (const char *[]){"--axmodel_num", "2", "--filename_post_axmodel", "p", "--filename_tokens_embed", "e", NULL},
        "the command has no --template_filename_axmodel (the runtime needs it to find the model)");
}

static void test_layer_file_fills_the_pattern(void **state)
{
    (void)state;
    char *f = rs_layer_file("qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel", 35);
    assert_string_equal(f, "qwen3-4b-ax650/qwen3_p128_l35_together.axmodel");
    free(f);
    f = rs_layer_file("%d.axmodel", 0);
    assert_string_equal(f, "0.axmodel");
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_vendor_aarch64_script),
        cmocka_unit_test(test_script_quoting_rules),
        cmocka_unit_test(test_script_redirections_pipes_and_other_commands),
        cmocka_unit_test(test_script_refusals_name_the_line),
        cmocka_unit_test(test_flags_keep_the_runtimes_own_and_drop_the_rest),
        cmocka_unit_test(test_flags_refusals),
        cmocka_unit_test(test_layer_file_fills_the_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
