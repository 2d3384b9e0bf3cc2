/* Tests for emu/emu_options: axllama-emu's command line follows the vendor's cmdline.hpp rules
 * (syntax, messages, usage layout, exit statuses) and validates the emulator's --emu-* options,
 * including those from AXLLAMA_EMU_ARGS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "emu/emu_options.h"

#define ENV "AXLLAMA_EMU_ARGS"

typedef struct {
    emu_options o;
    int rc;
    char *err; /* everything written to err */
} parse_run;

/* Parses a NULL-terminated argument list (argv[0] first) with err captured in r->err. The
 * arguments are heap copies, checked afterwards to be unchanged. */
static void run_list(parse_run *r, const char *const *list)
{
    int argc = 0;
    while (list[argc])
        argc++;
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    assert_non_null(argv);
    for (int i = 0; i < argc; i++)
        argv[i] = strdup(list[i]);
    size_t err_len = 0;
    r->err = NULL;
    FILE *err = open_memstream(&r->err, &err_len);
    assert_non_null(err);
    memset(&r->o, 0xA5, sizeof r->o); /* the parser must not depend on a zeroed struct */
    r->rc = emu_options_parse(&r->o, argc, argv, err);
    fclose(err);
    for (int i = 0; i < argc; i++) {
        assert_string_equal(argv[i], list[i]);
        free(argv[i]);
    }
    free(argv);
}

#define RUN(r, ...) run_list((r), (const char *const[]){__VA_ARGS__, NULL})

static void run_free(parse_run *r)
{
    emu_options_free(&r->o);
    free(r->err);
    r->err = NULL;
}

/* The usage text of the given mode, as --help prints it. */
static char *usage_of(const char *prog, emu_mode mode)
{
    parse_run r;
    if (mode == EMU_MODE_AX650)
        RUN(&r, prog, "--emu-mode", "ax650", "--help");
    else
        RUN(&r, prog, "--help");
    assert_int_equal(r.rc, 0);
    char *usage = r.err;
    r.err = NULL;
    run_free(&r);
    return usage;
}

/* rc 1 and err == message, newline, usage. */
static void assert_fails_with(const parse_run *r, const char *message, emu_mode mode)
{
    assert_int_equal(r->rc, 1);
    char *usage = usage_of("prog", mode);
    size_t n = strlen(message);
    assert_true(strlen(r->err) > n);
    assert_memory_equal(r->err, message, n);
    assert_int_equal(r->err[n], '\n');
    assert_string_equal(r->err + n + 1, usage);
    free(usage);
}

static void assert_starts_with(const char *text, const char *prefix)
{
    if (strncmp(text, prefix, strlen(prefix)) != 0)
        fail_msg("[%s] does not start with [%s]", text, prefix);
}

/* A full line of the text (without its newline) is present. */
static void assert_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("line not found: [%s]", line);
}

static void expect_error(const char *message, emu_mode mode, const char *const *list)
{
    parse_run r;
    run_list(&r, list);
    assert_fails_with(&r, message, mode);
    run_free(&r);
}

#define EXPECT_ERROR(message, ...) expect_error((message), EMU_MODE_AXCL, (const char *const[]){__VA_ARGS__, NULL})

static int clear_env(void **state)
{
    (void)state;
    unsetenv(ENV);
    return 0;
}

/* ---------------------------------------------------------------- vendor flags */

static void test_defaults_in_axcl_mode(void **state)
{
    (void)state;
    parse_run r;
    RUN(&r, "prog", "--devices", "0");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_string_equal(r.o.system_prompt, "");
    assert_string_equal(r.o.template_filename_axmodel, "tinyllama-int8/tinyllama_l%d.axmodel");
    assert_string_equal(r.o.filename_post_axmodel, "tinyllama-int8/tinyllama_post.axmodel");
    assert_string_equal(r.o.url_tokenizer_model, "http://127.0.0.1:12345");
    assert_string_equal(r.o.filename_tokens_embed, "tinyllama.model.embed_tokens.weight.bfloat16.bin");
    assert_int_equal(r.o.axmodel_num, 22);
    assert_int_equal(r.o.tokens_embed_num, 32000);
    assert_int_equal(r.o.tokens_embed_size, 2048);
    assert_false(r.o.use_mmap_load_embed);
    assert_string_equal(r.o.devices, "0");

    assert_int_equal(r.o.mode, EMU_MODE_AXCL);
    assert_string_equal(r.o.host, "127.0.0.1");
    assert_int_equal(r.o.port, 8000);
    assert_string_equal(r.o.profile, "qwen3-4b-pi5");
    assert_true(r.o.time_scale == 1.0);
    assert_true(r.o.init_seconds < 0);
    assert_true(r.o.dispatch_delay == 0.0);
    assert_int_equal(r.o.reply_tokens, 0);
    assert_string_equal(r.o.think_text, "");
    assert_int_equal(r.o.seed, 0);
    assert_int_equal(r.o.max_token_len, 2559);
    assert_int_equal(r.o.prefill_max, 2048);
    assert_int_equal(r.o.crash_at.token, 0);
    assert_int_equal(r.o.hang_at.token, 0);
    assert_int_equal(r.o.exit_init_step, 0);
    assert_int_equal(r.o.exit_init_code, 255);
    assert_false(r.o.context_full_wedge);
    assert_false(r.o.tokenizer_unreachable);
    run_free(&r);
}

static void test_defaults_in_ax650_mode_have_no_devices_and_the_ax650_profile(void **state)
{
    (void)state;
    parse_run r;
    RUN(&r, "prog", "--emu-mode=ax650");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_int_equal(r.o.mode, EMU_MODE_AX650);
    assert_null(r.o.devices);
    assert_string_equal(r.o.profile, "qwen3-4b-ax650");
    assert_int_equal(r.o.axmodel_num, 22);
    run_free(&r);
}

static void test_both_value_syntaxes_are_accepted(void **state)
{
    (void)state;
    parse_run r;
    RUN(&r, "prog", "--system_prompt", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        "--template_filename_axmodel=qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel", "--axmodel_num", "36",
        "--url_tokenizer_model=http://127.0.0.1:12345", "--filename_post_axmodel", "qwen3-4b-ax650/qwen3_post.axmodel",
        "--filename_tokens_embed=qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin", "--tokens_embed_num", "151936",
        "--tokens_embed_size=2560", "--use_mmap_load_embed", "1", "--devices=0,1");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_string_equal(r.o.system_prompt, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
    assert_string_equal(r.o.template_filename_axmodel, "qwen3-4b-ax650/qwen3_p128_l%d_together.axmodel");
    assert_int_equal(r.o.axmodel_num, 36);
    assert_string_equal(r.o.filename_post_axmodel, "qwen3-4b-ax650/qwen3_post.axmodel");
    assert_string_equal(r.o.filename_tokens_embed, "qwen3-4b-ax650/model.embed_tokens.weight.bfloat16.bin");
    assert_int_equal(r.o.tokens_embed_num, 151936);
    assert_int_equal(r.o.tokens_embed_size, 2560);
    assert_true(r.o.use_mmap_load_embed);
    assert_string_equal(r.o.devices, "0,1");
    run_free(&r);
}

static void test_values_are_taken_verbatim_and_the_last_one_wins(void **state)
{
    (void)state;
    parse_run r;
    /* "--name value" takes the next word whatever it looks like; "=" splits at the first '=' */
    RUN(&r, "prog", "--system_prompt", "--help", "--devices=a=b", "--axmodel_num", "-3", "--axmodel_num", "7",
        "--url_tokenizer_model=");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.o.system_prompt, "--help");
    assert_string_equal(r.o.devices, "a=b");
    assert_int_equal(r.o.axmodel_num, 7);
    assert_string_equal(r.o.url_tokenizer_model, "");
    run_free(&r);
}

static void test_unknown_flag_prints_undefined_option_and_usage_and_gives_1(void **state)
{
    (void)state;
    EXPECT_ERROR("undefined option: --live_print", "prog", "--devices", "0", "--live_print", "1");
    EXPECT_ERROR("undefined option: --port", "prog", "--port=8000", "--devices", "0");
    /* only the first of several errors is printed */
    EXPECT_ERROR("undefined option: --kvcache_path", "prog", "--kvcache_path", "x", "--continue", "--axmodel_num=x");
}

static void test_bool_accepts_only_0_and_1(void **state)
{
    (void)state;
    EXPECT_ERROR("option value is invalid: --use_mmap_load_embed=true", "prog", "--use_mmap_load_embed=true",
                 "--devices", "0");
    EXPECT_ERROR("option value is invalid: --use_mmap_load_embed=2", "prog", "--devices", "0", "--use_mmap_load_embed",
                 "2");
    EXPECT_ERROR("option value is invalid: --use_mmap_load_embed=", "prog", "--devices", "0", "--use_mmap_load_embed=");

    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--use_mmap_load_embed=1");
    assert_int_equal(r.rc, -1);
    assert_true(r.o.use_mmap_load_embed);
    run_free(&r);
    RUN(&r, "prog", "--use_mmap_load_embed=1", "--use_mmap_load_embed", "0", "--devices", "0");
    assert_int_equal(r.rc, -1);
    assert_false(r.o.use_mmap_load_embed);
    run_free(&r);
}

static void test_int_must_be_a_whole_integer(void **state)
{
    (void)state;
    EXPECT_ERROR("option value is invalid: --axmodel_num=36x", "prog", "--devices", "0", "--axmodel_num=36x");
    EXPECT_ERROR("option value is invalid: --axmodel_num=3.5", "prog", "--devices", "0", "--axmodel_num", "3.5");
    EXPECT_ERROR("option value is invalid: --tokens_embed_num=", "prog", "--devices", "0", "--tokens_embed_num=");
    EXPECT_ERROR("option value is invalid: --tokens_embed_size=0x10", "prog", "--devices", "0",
                 "--tokens_embed_size=0x10");
    EXPECT_ERROR("option value is invalid: --tokens_embed_size=99999999999", "prog", "--devices", "0",
                 "--tokens_embed_size", "99999999999");

    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--axmodel_num=-36", "--tokens_embed_num", "+5");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.o.axmodel_num, -36); /* the vendor does not range-check */
    assert_int_equal(r.o.tokens_embed_num, 5);
    run_free(&r);
}

static void test_option_given_last_without_value_needs_value(void **state)
{
    (void)state;
    EXPECT_ERROR("option needs value: --axmodel_num", "prog", "--devices", "0", "--axmodel_num");
    EXPECT_ERROR("option needs value: --devices", "prog", "--devices");
}

static void test_help_and_short_help_print_usage_and_give_0(void **state)
{
    (void)state;
    char *usage = usage_of("prog", EMU_MODE_AXCL);
    assert_starts_with(usage, "usage: prog ");

    parse_run r;
    RUN(&r, "prog", "-?");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, usage);
    run_free(&r);
    /* help wins over errors, and no error line is printed */
    RUN(&r, "prog", "--bogus", "--axmodel_num=x", "--help");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, usage);
    run_free(&r);
    RUN(&r, "prog", "--devices", "0", "--help");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, usage);
    run_free(&r);
    free(usage);

    /* help takes no value */
    EXPECT_ERROR("option value is invalid: --help=1", "prog", "--help=1", "--devices", "0");
}

static void test_no_arguments_in_axcl_mode_prints_usage_and_gives_0(void **state)
{
    (void)state;
    char *usage = usage_of("./main_api_axcl_aarch64", EMU_MODE_AXCL);
    parse_run r;
    RUN(&r, "./main_api_axcl_aarch64");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, usage);
    assert_null(strstr(r.err, "need option"));
    run_free(&r);
    free(usage);
}

static void test_no_arguments_in_ax650_mode_runs_with_defaults(void **state)
{
    (void)state;
    setenv(ENV, "--emu-mode ax650", 1);
    parse_run r;
    RUN(&r, "./main_api_ax650");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_int_equal(r.o.mode, EMU_MODE_AX650);
    run_free(&r);
    unsetenv(ENV);
}

static void test_missing_devices_with_other_arguments_needs_option_and_gives_1(void **state)
{
    (void)state;
    EXPECT_ERROR("need option: --devices", "prog", "--axmodel_num", "36");
    EXPECT_ERROR("need option: --devices", "prog", "stray");
}

static void test_ax650_mode_has_no_devices_option(void **state)
{
    (void)state;
    expect_error("undefined option: --devices", EMU_MODE_AX650,
                 (const char *const[]){"prog", "--emu-mode", "ax650", "--devices", "0", NULL});
    expect_error("undefined option: --devices", EMU_MODE_AX650,
                 (const char *const[]){"prog", "--devices=0", "--emu-mode=ax650", NULL});
}

static void test_short_options_and_rest_arguments(void **state)
{
    (void)state;
    EXPECT_ERROR("undefined short option: -x", "prog", "--devices", "0", "-x");
    EXPECT_ERROR("undefined short option: -h", "prog", "-h", "--devices", "0");
    /* grouped: "-?x" sets help first, but the -x error is recorded; help still wins */
    parse_run r;
    RUN(&r, "prog", "-?x");
    assert_int_equal(r.rc, 0);
    assert_starts_with(r.err, "usage: ");
    run_free(&r);
    /* a lone "-" and words that are not options are ignored */
    RUN(&r, "prog", "-", "stray", "--devices", "0", "more");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_string_equal(r.o.devices, "0");
    run_free(&r);
}

/* ---------------------------------------------------------------- usage layout */

static void test_usage_layout_matches_the_vendor_parser(void **state)
{
    (void)state;
    char *usage = usage_of("./main_api_axcl_aarch64", EMU_MODE_AXCL);
    /* first line: required options, then "[options] ... " with its trailing space */
    assert_starts_with(usage, "usage: ./main_api_axcl_aarch64 --devices=string [options] ... \n"
                              "options:\n");
    /* names are padded to the longest name (25) + 4 columns after "--" */
    assert_has_line(usage, "      --system_prompt                system prompt (string [=])");
    assert_has_line(usage, "      --template_filename_axmodel    axmodel path template "
                           "(string [=tinyllama-int8/tinyllama_l%d.axmodel])");
    assert_has_line(usage, "      --axmodel_num                  num of axmodel(for template) "
                           "(int [=22])");
    assert_has_line(usage, "      --use_mmap_load_embed          it can save os memory "
                           "(bool [=0])");
    assert_has_line(usage, "      --devices                      devices id,for example: "
                           "\"0,1,2,3\"  (string)");
    assert_has_line(usage, "  -?, --help                         print this message");
    /* help is the last line; the emulator's options sit between the vendor's and help */
    const char *last = "  -?, --help                         print this message\n";
    size_t n = strlen(usage), m = strlen(last);
    assert_true(n > m && strcmp(usage + n - m, last) == 0);
    const char *devices = strstr(usage, "      --devices ");
    const char *emu_mode_line = strstr(usage, "      --emu-mode ");
    assert_non_null(devices);
    assert_non_null(emu_mode_line);
    assert_true(devices < emu_mode_line);
    assert_non_null(strstr(usage, "      --emu-tokenizer-unreachable    "));
    assert_non_null(strstr(usage, "      --emu-profile                  "));
    assert_non_null(strstr(usage, "(string [=qwen3-4b-pi5])\n"));
    assert_non_null(strstr(usage, "(double [=1])\n"));
    free(usage);

    usage = usage_of("prog", EMU_MODE_AX650);
    assert_starts_with(usage, "usage: prog [options] ... \noptions:\n");
    assert_null(strstr(usage, "--devices "));
    assert_non_null(strstr(usage, "(string [=qwen3-4b-ax650])\n"));
    assert_has_line(usage, "      --system_prompt                system prompt (string [=])");
    free(usage);
}

/* ---------------------------------------------------------------- emulator options */

static void test_every_emu_option_is_parsed(void **state)
{
    (void)state;
    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--emu-mode", "axcl", "--emu-host=0.0.0.0", "--emu-port", "0",
        "--emu-profile=fast", "--emu-time-scale", "0.001", "--emu-init-seconds=2.5", "--emu-dispatch-delay", "0.25",
        "--emu-reply-tokens=40", "--emu-seed", "18446744073709551615", "--emu-max-token-len=4095", "--emu-prefill-max",
        "3072", "--emu-crash-at=12@3", "--emu-hang-at", "7", "--emu-exit-during-init=5:3", "--emu-context-full-wedge",
        "1", "--emu-tokenizer-unreachable=1");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_int_equal(r.o.mode, EMU_MODE_AXCL);
    assert_string_equal(r.o.host, "0.0.0.0");
    assert_int_equal(r.o.port, 0);
    assert_string_equal(r.o.profile, "fast");
    assert_true(r.o.time_scale == 0.001);
    assert_true(r.o.init_seconds == 2.5);
    assert_true(r.o.dispatch_delay == 0.25);
    assert_int_equal(r.o.reply_tokens, 40);
    assert_true(r.o.seed == UINT64_MAX);
    assert_int_equal(r.o.max_token_len, 4095);
    assert_int_equal(r.o.prefill_max, 3072);
    assert_int_equal(r.o.crash_at.token, 12);
    assert_int_equal(r.o.crash_at.generation, 3);
    assert_int_equal(r.o.hang_at.token, 7);
    assert_int_equal(r.o.hang_at.generation, 1);
    assert_int_equal(r.o.exit_init_step, 5);
    assert_int_equal(r.o.exit_init_code, 3);
    assert_true(r.o.context_full_wedge);
    assert_true(r.o.tokenizer_unreachable);
    run_free(&r);

    /* the profile of AX650 mode is only a default: an explicit one stays */
    RUN(&r, "prog", "--emu-profile", "qwen3-4b-pi5", "--emu-mode", "ax650");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.o.profile, "qwen3-4b-pi5");
    run_free(&r);
}

static void test_emu_option_values_are_validated(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "--emu-mode=AXCL",
        "--emu-mode=",
        "--emu-host=",
        "--emu-port=65536",
        "--emu-port=-1",
        "--emu-port=80x",
        "--emu-profile=slow",
        "--emu-profile=",
        "--emu-time-scale=0",
        "--emu-time-scale=-1",
        "--emu-time-scale=abc",
        "--emu-time-scale=nan",
        "--emu-time-scale=inf",
        "--emu-init-seconds=",
        "--emu-dispatch-delay=-0.5",
        "--emu-reply-tokens=-1",
        "--emu-seed=-1",
        "--emu-seed=18446744073709551616",
        "--emu-seed=1.5",
        "--emu-max-token-len=256",
        "--emu-prefill-max=255",
        "--emu-prefill-max=big",
        "--emu-context-full-wedge=true",
        "--emu-tokenizer-unreachable=2",
        "--emu-crash-at=0",
        "--emu-hang-at=x",
        "--emu-exit-during-init=0",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char message[128];
        snprintf(message, sizeof message, "option value is invalid: %s", invalid[i]);
        EXPECT_ERROR(message, "prog", "--devices", "0", invalid[i]);
    }
    EXPECT_ERROR("option needs value: --emu-port", "prog", "--devices", "0", "--emu-port");
    EXPECT_ERROR("undefined option: --emu-bogus", "prog", "--devices", "0", "--emu-bogus=1");

    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--emu-port=65535", "--emu-init-seconds", "-1", "--emu-dispatch-delay=0",
        "--emu-prefill-max=256", "--emu-max-token-len", "257");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.o.port, 65535);
    assert_true(r.o.init_seconds < 0);
    assert_int_equal(r.o.prefill_max, 256);
    assert_int_equal(r.o.max_token_len, 257);
    run_free(&r);
}

static void test_max_token_len_must_exceed_prefill_max(void **state)
{
    (void)state;
    EXPECT_ERROR("option value is invalid: --emu-max-token-len=2048 (must be greater than "
                 "--emu-prefill-max=2048)",
                 "prog", "--devices", "0", "--emu-max-token-len=2048");
    EXPECT_ERROR("option value is invalid: --emu-prefill-max=4096 (must be less than "
                 "--emu-max-token-len=2559)",
                 "prog", "--devices", "0", "--emu-prefill-max=4096");
    EXPECT_ERROR("option value is invalid: --emu-max-token-len=1000 (must be greater than "
                 "--emu-prefill-max=1024)",
                 "prog", "--devices", "0", "--emu-prefill-max=1024", "--emu-max-token-len=1000");
}

static void test_fault_point_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int token, generation;
    } good[] = {{"1", 1, 1}, {"5", 5, 1}, {"5@3", 5, 3}, {"2147483647@1", 2147483647, 1}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        parse_run r;
        RUN(&r, "prog", "--devices", "0", "--emu-crash-at", good[i].text, "--emu-hang-at", good[i].text);
        assert_int_equal(r.rc, -1);
        assert_int_equal(r.o.crash_at.token, good[i].token);
        assert_int_equal(r.o.crash_at.generation, good[i].generation);
        assert_int_equal(r.o.hang_at.token, good[i].token);
        assert_int_equal(r.o.hang_at.generation, good[i].generation);
        run_free(&r);
    }
    static const char *const bad[] = {"0",  "5@0", "5@", "@3", "a",          "5@3@4", "-1",
                                      "+5", " 5",  "5 ", "",   "2147483648", "5:3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char arg[64], message[128];
        snprintf(arg, sizeof arg, "--emu-crash-at=%s", bad[i]);
        snprintf(message, sizeof message, "option value is invalid: %s", arg);
        EXPECT_ERROR(message, "prog", "--devices", "0", arg);
    }

    static const struct {
        const char *text;
        int step, code;
    } exits[] = {{"3", 3, 255}, {"3:0", 3, 0}, {"39:1", 39, 1}, {"1:255", 1, 255}};
    for (size_t i = 0; i < sizeof exits / sizeof exits[0]; i++) {
        parse_run r;
        RUN(&r, "prog", "--devices", "0", "--emu-exit-during-init", exits[i].text);
        assert_int_equal(r.rc, -1);
        assert_int_equal(r.o.exit_init_step, exits[i].step);
        assert_int_equal(r.o.exit_init_code, exits[i].code);
        run_free(&r);
    }
    static const char *const bad_exits[] = {"0", "3:", ":3", "3:256", "3:-1", "3:1:2", "3@1"};
    for (size_t i = 0; i < sizeof bad_exits / sizeof bad_exits[0]; i++) {
        char arg[64], message[128];
        snprintf(arg, sizeof arg, "--emu-exit-during-init=%s", bad_exits[i]);
        snprintf(message, sizeof message, "option value is invalid: %s", arg);
        EXPECT_ERROR(message, "prog", "--devices", "0", arg);
    }
}

/* ---------------------------------------------------------------- AXLLAMA_EMU_ARGS */

static void test_env_args_are_appended_after_argv(void **state)
{
    (void)state;
    setenv(ENV, "  --emu-port 0\t--emu-time-scale=0.01\n --emu-crash-at 3@2 ", 1);
    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--emu-port", "9000", "--emu-time-scale=5");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_int_equal(r.o.port, 0); /* after argv, so it wins */
    assert_true(r.o.time_scale == 0.01);
    assert_int_equal(r.o.crash_at.token, 3);
    assert_int_equal(r.o.crash_at.generation, 2);
    run_free(&r);

    /* the mode may come from the environment: then --devices does not exist */
    setenv(ENV, "--emu-mode=ax650", 1);
    RUN(&r, "prog", "--axmodel_num", "36");
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.o.mode, EMU_MODE_AX650);
    assert_string_equal(r.o.profile, "qwen3-4b-ax650");
    run_free(&r);
    expect_error("undefined option: --devices", EMU_MODE_AX650, (const char *const[]){"prog", "--devices", "0", NULL});

    setenv(ENV, "", 1);
    RUN(&r, "prog", "--devices", "0");
    assert_int_equal(r.rc, -1);
    run_free(&r);
    unsetenv(ENV);
}

static void test_env_args_are_validated(void **state)
{
    (void)state;
    setenv(ENV, "--emu-port 70000", 1);
    EXPECT_ERROR("option value is invalid: --emu-port=70000", "prog", "--devices", "0");
    setenv(ENV, "--emu-seed", 1);
    EXPECT_ERROR("option needs value: --emu-seed", "prog", "--devices", "0");
    setenv(ENV, "--emu-nothing", 1);
    EXPECT_ERROR("undefined option: --emu-nothing", "prog", "--devices", "0");

    /* only --emu-* options there; the message names the variable */
    setenv(ENV, "--devices 0", 1);
    EXPECT_ERROR("AXLLAMA_EMU_ARGS: only --emu-* options are allowed there, not: --devices", "prog", "--axmodel_num",
                 "36");
    setenv(ENV, "--emu-port 1 --help", 1);
    EXPECT_ERROR("AXLLAMA_EMU_ARGS: only --emu-* options are allowed there, not: --help", "prog", "--devices", "0");
    setenv(ENV, "-?", 1);
    EXPECT_ERROR("AXLLAMA_EMU_ARGS: only --emu-* options are allowed there, not: -?", "prog", "--devices", "0");
    setenv(ENV, "stray", 1);
    EXPECT_ERROR("AXLLAMA_EMU_ARGS: only --emu-* options are allowed there, not: stray", "prog", "--devices", "0");

    /* argv's last option never takes its value from the environment */
    setenv(ENV, "--emu-port 0", 1);
    EXPECT_ERROR("option needs value: --system_prompt", "prog", "--devices", "0", "--system_prompt");
    unsetenv(ENV);
}

/* ---------------------------------------------------------------- --emu-think-text */

static void test_think_text_takes_any_plain_text_and_empty_is_the_default_block(void **state)
{
    (void)state;
    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--emu-think-text", "Okay, the user says hi.\n\nLet me greet them. <b>");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.err, "");
    assert_string_equal(r.o.think_text, "Okay, the user says hi.\n\nLet me greet them. <b>");
    run_free(&r);
    /* the later one wins, and an explicit empty value is the default (the empty think block) */
    RUN(&r, "prog", "--devices", "0", "--emu-think-text=first", "--emu-think-text=");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.o.think_text, "");
    run_free(&r);
}

static void test_think_text_with_think_tags_or_special_tokens_is_invalid(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "--emu-think-text=a <think> b",
        "--emu-think-text=done</think>",
        "--emu-think-text=x<|im_end|>",
        "--emu-think-text=<|endoftext|>",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char message[128];
        snprintf(message, sizeof message, "option value is invalid: %s", invalid[i]);
        EXPECT_ERROR(message, "prog", "--devices", "0", invalid[i]);
    }
}

static void test_think_text_from_env_args_is_one_word(void **state)
{
    (void)state;
    /* AXLLAMA_EMU_ARGS is split at white space: one word per value */
    setenv(ENV, "--emu-think-text Reasoning...", 1);
    parse_run r;
    RUN(&r, "prog", "--devices", "0", "--emu-think-text", "from argv");
    assert_int_equal(r.rc, -1);
    assert_string_equal(r.o.think_text, "Reasoning...");
    run_free(&r);
    /* a second word is a stray argument there */
    setenv(ENV, "--emu-think-text two words", 1);
    EXPECT_ERROR(ENV ": only --emu-* options are allowed there, not: words", "prog", "--devices", "0");
    unsetenv(ENV);
}

/* ---------------------------------------------------------------- memory */

static void test_free_is_safe_on_zeroed_partial_and_freed_structs(void **state)
{
    (void)state;
    emu_options o;
    memset(&o, 0, sizeof o);
    emu_options_free(&o);
    o.host = strdup("x"); /* partly filled */
    emu_options_free(&o);
    assert_null(o.host);
    emu_options_free(&o); /* twice */
    emu_options_free(NULL);

    /* after an exit status, o is already freed: freeing again is harmless */
    parse_run r;
    RUN(&r, "prog", "--system_prompt", "hi", "--bogus");
    assert_int_equal(r.rc, 1);
    assert_null(r.o.system_prompt);
    assert_null(r.o.host);
    run_free(&r);
}

int main(void)
{
    unsetenv(ENV);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_in_axcl_mode, clear_env),
        cmocka_unit_test_setup(test_defaults_in_ax650_mode_have_no_devices_and_the_ax650_profile, clear_env),
        cmocka_unit_test_setup(test_both_value_syntaxes_are_accepted, clear_env),
        cmocka_unit_test_setup(test_values_are_taken_verbatim_and_the_last_one_wins, clear_env),
        cmocka_unit_test_setup(test_unknown_flag_prints_undefined_option_and_usage_and_gives_1, clear_env),
        cmocka_unit_test_setup(test_bool_accepts_only_0_and_1, clear_env),
        cmocka_unit_test_setup(test_int_must_be_a_whole_integer, clear_env),
        cmocka_unit_test_setup(test_option_given_last_without_value_needs_value, clear_env),
        cmocka_unit_test_setup(test_help_and_short_help_print_usage_and_give_0, clear_env),
        cmocka_unit_test_setup(test_no_arguments_in_axcl_mode_prints_usage_and_gives_0, clear_env),
        cmocka_unit_test_setup(test_no_arguments_in_ax650_mode_runs_with_defaults, clear_env),
        cmocka_unit_test_setup(test_missing_devices_with_other_arguments_needs_option_and_gives_1, clear_env),
        cmocka_unit_test_setup(test_ax650_mode_has_no_devices_option, clear_env),
        cmocka_unit_test_setup(test_short_options_and_rest_arguments, clear_env),
        cmocka_unit_test_setup(test_usage_layout_matches_the_vendor_parser, clear_env),
        cmocka_unit_test_setup(test_every_emu_option_is_parsed, clear_env),
        cmocka_unit_test_setup(test_emu_option_values_are_validated, clear_env),
        cmocka_unit_test_setup(test_max_token_len_must_exceed_prefill_max, clear_env),
        cmocka_unit_test_setup(test_fault_point_syntax, clear_env),
        cmocka_unit_test_setup(test_env_args_are_appended_after_argv, clear_env),
        cmocka_unit_test_setup(test_env_args_are_validated, clear_env),
        cmocka_unit_test_setup(test_think_text_takes_any_plain_text_and_empty_is_the_default_block, clear_env),
        cmocka_unit_test_setup(test_think_text_with_think_tags_or_special_tokens_is_invalid, clear_env),
        cmocka_unit_test_setup(test_think_text_from_env_args_is_one_word, clear_env),
        cmocka_unit_test_setup(test_free_is_safe_on_zeroed_partial_and_freed_structs, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
