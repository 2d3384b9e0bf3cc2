/* Tests for api/format (format / response_format decoding, the instruction text, validation of
 * replies against JSON and the schema subset, exact error texts) and api/tojson (Python
 * json.dumps(ensure_ascii=False) output; tests/template/tojson_test.py compares it with Python
 * itself on random values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/format.h"
#include "api/tojson.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

/* format_from_ollama on the JSON text; returns the kind, or -1 with err. */
static int ollama_kind(const char *text, char *err, size_t n)
{
    json_t *v = text ? J(text) : NULL;
    format_spec f;
    bool ok = format_from_ollama(v, &f, err, n);
    json_decref(v);
    int kind = ok ? (int)f.kind : -1;
    format_spec_free(&f);
    return kind;
}

static void test_ollama_format_values(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ollama_kind(NULL, err, sizeof err), FORMAT_NONE);
    assert_int_equal(ollama_kind("null", err, sizeof err), FORMAT_NONE);
    assert_int_equal(ollama_kind("\"\"", err, sizeof err), FORMAT_NONE);
    assert_int_equal(ollama_kind("\"json\"", err, sizeof err), FORMAT_JSON);
    assert_int_equal(ollama_kind("{\"type\":\"object\"}", err, sizeof err), FORMAT_SCHEMA);
    assert_int_equal(ollama_kind("{}", err, sizeof err), FORMAT_SCHEMA);
    assert_int_equal(ollama_kind("123", err, sizeof err), -1);
    assert_string_equal(err, "invalid format: \"123\"; expected \"json\" or a valid JSON Schema object");
    assert_int_equal(ollama_kind("\"xml\"", err, sizeof err), -1);
    assert_string_equal(err, "invalid format: \"\\\"xml\\\"\"; expected \"json\" or a valid JSON Schema object");
    assert_int_equal(ollama_kind("[1]", err, sizeof err), -1);
    assert_string_equal(err, "invalid format: \"[1]\"; expected \"json\" or a valid JSON Schema object");
}

static void test_bad_schemas_are_refused_with_a_path(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ollama_kind("{\"type\":\"float\"}", err, sizeof err), -1);
    assert_string_equal(err, "invalid format schema: $: \"type\" must be one of object, array, string, number, "
                             "integer, boolean, null, or an array of them");
    assert_int_equal(ollama_kind("{\"properties\":{\"a\":{\"type\":5}}}", err, sizeof err), -1);
    assert_string_equal(err, "invalid format schema: $.properties.a: \"type\" must be one of object, array, string, "
                             "number, integer, boolean, null, or an array of them");
    assert_int_equal(ollama_kind("{\"properties\":[]}", err, sizeof err), -1);
    assert_string_equal(err, "invalid format schema: $: \"properties\" must be an object");
    assert_int_equal(ollama_kind("{\"required\":[1]}", err, sizeof err), -1);
    assert_string_equal(err, "invalid format schema: $: \"required\" must be an array of strings");
    assert_int_equal(ollama_kind("{\"enum\":\"a\"}", err, sizeof err), -1);
    assert_string_equal(err, "invalid format schema: $: \"enum\" must be an array");
    assert_int_equal(ollama_kind("{\"items\":{\"items\":3}}", err, sizeof err), -1);
    assert_string_equal(err, "invalid format schema: $.items.items: a schema must be an object");
    assert_int_equal(
        ollama_kind("{\"type\":[\"string\",\"null\"],\"description\":\"x\",\"minimum\":\"whatever\"}", err, sizeof err),
        FORMAT_SCHEMA); /* unchecked keywords are left alone */
}

static int openai_kind(const char *text, char *err, size_t n)
{
    json_t *v = text ? J(text) : NULL;
    format_spec f;
    bool ok = format_from_openai(v, &f, err, n);
    json_decref(v);
    int kind = ok ? (int)f.kind : -1;
    format_spec_free(&f);
    return kind;
}

static void test_openai_response_format_values(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(openai_kind(NULL, err, sizeof err), FORMAT_NONE);
    assert_int_equal(openai_kind("{\"type\":\"text\"}", err, sizeof err), FORMAT_NONE);
    assert_int_equal(openai_kind("{\"type\":\"json_object\"}", err, sizeof err), FORMAT_JSON);
    assert_int_equal(
        openai_kind("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\"}}}", err,
                    sizeof err),
        FORMAT_SCHEMA);
    assert_int_equal(openai_kind("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}", err, sizeof err),
                     FORMAT_JSON);
    assert_int_equal(openai_kind("\"json\"", err, sizeof err), -1);
    assert_string_equal(err, "response_format must be an object");
    assert_int_equal(openai_kind("{\"type\":\"yaml\"}", err, sizeof err), -1);
    assert_string_equal(
        err, "invalid response_format type: \"yaml\" (must be \"text\", \"json_object\" or \"json_schema\")");
    assert_int_equal(openai_kind("{\"type\":\"json_schema\"}", err, sizeof err), -1);
    assert_string_equal(err, "response_format json_schema must be an object with a \"schema\" object");
    assert_int_equal(
        openai_kind("{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":1}}}", err, sizeof err), -1);
    assert_true(strncmp(err, "invalid format schema: $: ", 26) == 0);
}

static void test_instruction_text(void **state)
{
    (void)state;
    format_spec none = {FORMAT_NONE, NULL}, js = {FORMAT_JSON, NULL};
    assert_null(format_instruction(&none));
    char *t = format_instruction(&js);
    assert_string_equal(t, "Respond with valid JSON only: a single JSON value, no other text, no code fences.");
    free(t);
    format_spec sc = {FORMAT_SCHEMA, J("{\"type\": \"object\", \"required\": [\"a\"]}")};
    t = format_instruction(&sc);
    assert_string_equal(t, "Respond with valid JSON only: a single JSON value, no other text, no code fences. "
                           "The JSON must conform to this JSON schema: {\"type\":\"object\",\"required\":[\"a\"]}");
    free(t);
    format_spec_free(&sc);
}

/* Validates reply against the schema text ("json" = FORMAT_JSON); returns err ("" when valid). */
static const char *check(const char *schema, const char *reply)
{
    static char err[512];
    format_spec f = {FORMAT_JSON, NULL};
    if (strcmp(schema, "json")) {
        f.kind = FORMAT_SCHEMA;
        f.schema = J(schema);
    }
    err[0] = '\0';
    if (format_validate(&f, reply, NULL, NULL, err, sizeof err))
        err[0] = '\0';
    else if (!err[0])
        strcpy(err, "(no message)");
    format_spec_free(&f);
    return err;
}

static void test_json_mode_accepts_any_json_value_only(void **state)
{
    (void)state;
    assert_string_equal(check("json", "{\"a\": 1}"), "");
    assert_string_equal(check("json", "  [1, 2]\n"), "");
    assert_string_equal(check("json", "\"s\""), "");
    assert_string_equal(check("json", "```json\n{\"a\": 1}\n```"), "");
    assert_string_equal(check("json", "```\n[]\n```\n"), "");
    assert_string_equal(check("json", "Hello"),
                        "the model's reply is not valid JSON: invalid token near 'Hello' (line 1, column 5)");
    assert_string_equal(
        check("json", "{\"a\": 1} trailing"),
        "the model's reply is not valid JSON: end of file expected near 'trailing' (line 1, column 17)");
    assert_string_equal(check("json", " \n"), "the model's reply is not valid JSON: the reply is empty");
    assert_string_equal(check("json", "Sure! ```json\n{}\n```"),
                        "the model's reply is not valid JSON: invalid token near 'Sure' (line 1, column 4)");
}

static void test_none_accepts_anything(void **state)
{
    (void)state;
    format_spec f = {FORMAT_NONE, NULL};
    char err[64];
    size_t off = 9, len = 9;
    assert_true(format_validate(&f, "prose", &off, &len, err, sizeof err));
    assert_int_equal(off, 0);
    assert_int_equal(len, 5);
}

static void test_the_json_text_is_located_inside_fences(void **state)
{
    (void)state;
    format_spec f = {FORMAT_JSON, NULL};
    char err[64];
    size_t off, len;
    const char *reply = "\n```json\n{\"a\": 1}\n```\n";
    assert_true(format_validate(&f, reply, &off, &len, err, sizeof err));
    assert_int_equal(len, 8);
    assert_memory_equal(reply + off, "{\"a\": 1}", 8);
}

static void test_schema_types(void **state)
{
    (void)state;
    assert_string_equal(check("{\"type\":\"object\"}", "{}"), "");
    assert_string_equal(check("{\"type\":\"object\"}", "[]"),
                        "the model's reply does not match the format schema: $: expected object, got array");
    assert_string_equal(check("{\"type\":\"integer\"}", "3"), "");
    assert_string_equal(check("{\"type\":\"integer\"}", "3.0"), "");
    assert_string_equal(check("{\"type\":\"integer\"}", "3.5"),
                        "the model's reply does not match the format schema: $: expected integer, got number");
    assert_string_equal(check("{\"type\":\"number\"}", "3"), "");
    assert_string_equal(check("{\"type\":[\"string\",\"null\"]}", "null"), "");
    assert_string_equal(check("{\"type\":[\"string\",\"null\"]}", "true"),
                        "the model's reply does not match the format schema: $: expected string or null, got boolean");
    assert_string_equal(check("{\"type\":\"boolean\"}", "false"), "");
    /* beyond long long: still a whole number (and no overflowing cast) */
    assert_string_equal(check("{\"type\":\"integer\"}", "1e300"), "");
    assert_string_equal(check("{\"type\":\"integer\"}", "1.5e300"), "");
}

/* Tuple "items" (an array of schemas) is accepted and shown to the model, not checked. */
static void test_tuple_items_are_accepted_unchecked(void **state)
{
    (void)state;
    assert_string_equal(check("{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", "[1, \"a\"]"), "");
    assert_string_equal(check("{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", "{}"),
                        "the model's reply does not match the format schema: $: expected array, got object");
}

static void test_schema_properties_required_enum_items(void **state)
{
    (void)state;
    const char *person =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
        "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]}},"
        "\"mood\":{\"const\":\"ok\"}},\"required\":[\"name\",\"age\"]}";
    assert_string_equal(check(person, "{\"name\":\"Ann\",\"age\":30,\"tags\":[\"a\",\"b\"],\"extra\":1}"), "");
    assert_string_equal(check(person, "{\"name\":\"Ann\"}"),
                        "the model's reply does not match the format schema: $: missing required property \"age\"");
    assert_string_equal(check(person, "{\"name\":7,\"age\":1}"),
                        "the model's reply does not match the format schema: $.name: expected string, got integer");
    assert_string_equal(
        check(person, "{\"name\":\"A\",\"age\":1,\"tags\":[\"a\",\"c\"]}"),
        "the model's reply does not match the format schema: $.tags[1]: value is not one of the enum values");
    assert_string_equal(check(person, "{\"name\":\"A\",\"age\":1,\"mood\":\"bad\"}"),
                        "the model's reply does not match the format schema: $.mood: value is not the const value");
    const char *closed = "{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":false}";
    assert_string_equal(check(closed, "{\"a\":1}"), "");
    assert_string_equal(check(closed, "{\"a\":1,\"b c\":2}"),
                        "the model's reply does not match the format schema: $: unexpected property \"b c\"");
    const char *typed_extra = "{\"additionalProperties\":{\"type\":\"number\"}}";
    assert_string_equal(check(typed_extra, "{\"x y\":\"s\"}"),
                        "the model's reply does not match the format schema: $[\"x y\"]: expected number, got string");
    assert_string_equal(check("{\"enum\":[1,{\"a\":[2]}]}", "{\"a\": [2]}"), "");
    assert_string_equal(check("{\"items\":{\"type\":\"string\"}}", "\"not an array: items do not apply\""), "");
}

/* ---- tojson */

static char *dumps(const char *text)
{
    json_t *v = J(text);
    char *s = tojson_dumps(v);
    json_decref(v);
    return s;
}

static void expect_dumps(const char *in, const char *want)
{
    char *got = dumps(in);
    if (strcmp(got, want))
        fail_msg("tojson(%s) = %s, want %s", in, got, want);
    free(got);
}

static void test_tojson_separators_order_and_unicode(void **state)
{
    (void)state;
    expect_dumps("{\"z\":1,\"a\":[1,2,{\"k\":null}],\"m\":true}",
                 "{\"z\": 1, \"a\": [1, 2, {\"k\": null}], \"m\": true}");
    expect_dumps("{}", "{}");
    expect_dumps("[]", "[]");
    expect_dumps("\"für \\u2028 ✓ \\ud83d\\ude00\"", "\"für \xe2\x80\xa8 ✓ \xf0\x9f\x98\x80\"");
    expect_dumps("\"q\\\" b\\\\ n\\n r\\r t\\t b\\b f\\f \\u0001 \\u001f \\u007f /\"",
                 "\"q\\\" b\\\\ n\\n r\\r t\\t b\\b f\\f \\u0001 \\u001f \x7f /\"");
    expect_dumps("-12345678901234", "-12345678901234");
}

static void test_tojson_reals_as_python_repr(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"1.0", "1.0"},
        {"0.1", "0.1"},
        {"2.5", "2.5"},
        {"-0.0", "-0.0"},
        {"100.0", "100.0"},
        {"1e-05", "1e-05"},
        {"0.0001", "0.0001"},
        {"1.5e-07", "1.5e-07"},
        {"1e16", "1e+16"},
        {"1e15", "1000000000000000.0"},
        {"123456789.125", "123456789.125"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"5e-324", "5e-324"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"12345678901234567890.0", "1.2345678901234567e+19"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_dumps(cases[i][0], cases[i][1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ollama_format_values),
        cmocka_unit_test(test_bad_schemas_are_refused_with_a_path),
        cmocka_unit_test(test_openai_response_format_values),
        cmocka_unit_test(test_instruction_text),
        cmocka_unit_test(test_json_mode_accepts_any_json_value_only),
        cmocka_unit_test(test_none_accepts_anything),
        cmocka_unit_test(test_the_json_text_is_located_inside_fences),
        cmocka_unit_test(test_schema_types),
        cmocka_unit_test(test_tuple_items_are_accepted_unchecked),
        cmocka_unit_test(test_schema_properties_required_enum_items),
        cmocka_unit_test(test_tojson_separators_order_and_unicode),
        cmocka_unit_test(test_tojson_reals_as_python_repr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
