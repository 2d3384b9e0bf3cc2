/* Tests for models/model_name.c: Ollama's model-name rules (docs/spec/ollama-api.md §3.3), the display
 * form with the default host, namespace and tag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "models/manifest.h"

static void expect_name(const char *in, const char *want)
{
    char out[512];
    memset(out, 'x', sizeof out);
    if (!model_name_normalize(in, out, sizeof out))
        fail_msg("[%s] rejected", in);
    if (strcmp(out, want) != 0)
        fail_msg("[%s] -> [%s], want [%s]", in, out, want);
}

static void expect_invalid_name(const char *in)
{
    char out[512];
    if (model_name_normalize(in, out, sizeof out))
        fail_msg("[%s] accepted as [%s]", in, out);
}

static void test_name_default_tag_latest(void **state)
{
    (void)state;
    expect_name("llama3.2", "llama3.2:latest");
    expect_name("qwen3:4b", "qwen3:4b");
    expect_name("Qwen3:Q4_K_M", "Qwen3:Q4_K_M");
}

static void test_name_default_host_and_namespace_omitted(void **state)
{
    (void)state;
    expect_name("library/llama3.2", "llama3.2:latest");
    expect_name("registry.ollama.ai/library/llama3.2:latest", "llama3.2:latest");
    expect_name("REGISTRY.OLLAMA.AI/Library/llama3.2", "llama3.2:latest");
}

static void test_name_other_host_or_namespace_kept(void **state)
{
    (void)state;
    expect_name("user/model:tag", "user/model:tag");
    expect_name("registry.ollama.ai/user/model", "user/model:latest");
    expect_name("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M");
    expect_name("example.com/library/m", "example.com/library/m:latest");
    expect_name("localhost:5000/ns/m", "localhost:5000/ns/m:latest");
}

static void test_name_scheme_dropped(void **state)
{
    (void)state;
    expect_name("://h/n/m", "h/n/m:latest");
    expect_name("https://hf.co/org/repo:q8", "hf.co/org/repo:q8");
    expect_name("http://registry.ollama.ai/library/m", "m:latest");
}

static void test_name_invalid_charset_or_shape(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",        ":",          "model:",        ":tag",  "a/",     "/a",     "a//b",  "-model",
        ".model",  "mo del",     "mo$del",        "a:b:c", "ns.x/m", "m:-tag", "m:t/x", "m@sha256:ab",
        "h/n/m/x", "q\xc3\xa9n", "https://model", "h/n/m/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_invalid_name(bad[i]);
    assert_false(model_name_normalize(NULL, (char[8]){0}, 8));
}

static void test_name_length_limits(void **state)
{
    (void)state;
    char part80[81], part81[82], host350[351], host351[352], in[1024], want[1024];
    memset(part80, 'a', 80);
    part80[80] = '\0';
    memset(part81, 'a', 81);
    part81[81] = '\0';
    memset(host350, 'h', 350);
    host350[350] = '\0';
    memset(host351, 'h', 351);
    host351[351] = '\0';
    snprintf(want, sizeof want, "%s:latest", part80);
    expect_name(part80, want);
    expect_invalid_name(part81);
    snprintf(in, sizeof in, "m:%s", part80);
    expect_name(in, in);
    snprintf(in, sizeof in, "m:%s", part81);
    expect_invalid_name(in);
    snprintf(in, sizeof in, "%s/m", part81);
    expect_invalid_name(in);
    snprintf(in, sizeof in, "%s/n/m:t", host350);
    expect_name(in, in);
    snprintf(in, sizeof in, "%s/n/m:t", host351);
    expect_invalid_name(in);
}

static void test_name_output_too_small(void **state)
{
    (void)state;
    char out[8];
    assert_false(model_name_normalize("qwen3", out, sizeof out)); /* "qwen3:latest" needs 13 */
    assert_string_equal(out, "");
    char fits[13];
    assert_true(model_name_normalize("qwen3", fits, sizeof fits));
    assert_string_equal(fits, "qwen3:latest");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_default_tag_latest),
        cmocka_unit_test(test_name_default_host_and_namespace_omitted),
        cmocka_unit_test(test_name_other_host_or_namespace_kept),
        cmocka_unit_test(test_name_scheme_dropped),
        cmocka_unit_test(test_name_invalid_charset_or_shape),
        cmocka_unit_test(test_name_length_limits),
        cmocka_unit_test(test_name_output_too_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
