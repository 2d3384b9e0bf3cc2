/* fuzz_format: structured-output formats (src/api/format.c): decoding Ollama's `format` and
 * OpenAI's `response_format`, the instruction, and the validation of a reply. The input:
 *   byte 0   how the spec is read: bit 0 clear: Ollama's `format` (the JSON value as is); set:
 *            OpenAI's response_format, bit 1 then wraps the value as
 *            {"type":"json_schema","json_schema":{"schema": value}}
 *   then     the spec as JSON text, a NUL, then the reply (up to the next NUL: a C string)
 * Properties (beyond no crash, no leak, no sanitizer report):
 *   - decoding and validation are deterministic (result, message, offsets);
 *   - a refused spec has a message; an accepted one has an instruction exactly when it is not
 *     NONE, and the instruction is valid UTF-8;
 *   - messages are NUL-terminated within their buffer;
 *   - the JSON located in the reply lies inside it; when validation succeeds it is one JSON value;
 *   - conformance depends on the value only: the reply re-serialised compactly, and the located
 *     JSON wrapped in a ```json fence, validate the same way. */
#include <jansson.h>

#include "api/format.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

typedef struct {
    bool ok;
    size_t off, len;
    char err[512];
} verdict;

static verdict validate(const format_spec *f, const char *reply)
{
    verdict v;
    memset(&v, 0, sizeof v);
    memset(v.err, 'x', sizeof v.err);
    v.err[0] = '\0';
    v.ok = format_validate(f, reply, &v.off, &v.len, v.err, sizeof v.err);
    FUZZ_CHECK(memchr(v.err, '\0', sizeof v.err), "the message is not NUL-terminated");
    FUZZ_CHECK(v.ok || v.err[0], "a refused reply has no message");
    FUZZ_CHECK(v.off + v.len <= strlen(reply), "the JSON located at %zu+%zu is outside the reply of %zu bytes", v.off,
               v.len, strlen(reply));
    return v;
}

static bool same_verdict(const verdict *a, const verdict *b)
{
    return a->ok == b->ok && (a->ok || !strcmp(a->err, b->err));
}

static bool decode_spec(uint8_t mode, json_t *value, format_spec *out, char *err, size_t errlen)
{
    if (!(mode & 1))
        return format_from_ollama(value, out, err, errlen);
    if (!(mode & 2))
        return format_from_openai(value, out, err, errlen);
    json_t *rf = json_pack("{s:s, s:{s:O}}", "type", "json_schema", "json_schema", "schema", value);
    bool ok = format_from_openai(rf, out, err, errlen);
    json_decref(rf);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader in = {data, size};
    uint8_t mode = fuzz_byte(&in);
    size_t spec_len;
    const char *spec_text = fuzz_field(&in, 0, &spec_len);
    char *reply = fuzz_field_dup(&in, 0);
    json_t *value = json_loadb(spec_text, spec_len, JSON_DECODE_ANY, NULL);

    format_spec f, f2;
    char err[512] = "", err2[512] = "";
    bool ok = decode_spec(mode, value, &f, err, sizeof err);
    bool ok2 = decode_spec(mode, value, &f2, err2, sizeof err2);
    FUZZ_CHECK(ok == ok2 && !strcmp(err, err2) && f.kind == f2.kind, "decoding the spec is not deterministic");
    format_spec_free(&f2);
    if (!ok) {
        FUZZ_CHECK(err[0], "a refused spec has no message");
        FUZZ_CHECK(f.kind == FORMAT_NONE && !f.schema, "a refused spec left a format");
        goto done;
    }
    FUZZ_CHECK((f.kind == FORMAT_SCHEMA) == (f.schema != NULL), "kind %d with schema %p", (int)f.kind,
               (void *)f.schema);
    char *instruction = format_instruction(&f);
    FUZZ_CHECK((instruction != NULL) == (f.kind != FORMAT_NONE), "instruction %p for kind %d", (void *)instruction,
               (int)f.kind);
    if (instruction)
        FUZZ_CHECK(utf8_is_valid(instruction, strlen(instruction)), "the instruction is not valid UTF-8");
    free(instruction);

    format_spec shared = format_spec_share(&f);
    verdict v = validate(&f, reply), again = validate(&shared, reply);
    format_spec_free(&shared);
    FUZZ_CHECK(same_verdict(&v, &again) && v.off == again.off && v.len == again.len, "validation is not deterministic");
    if (f.kind == FORMAT_NONE) {
        FUZZ_CHECK(v.ok, "NONE refused a reply");
        goto done;
    }

    json_t *parsed = json_loadb(reply + v.off, v.len, JSON_DECODE_ANY, NULL);
    if (v.ok)
        FUZZ_CHECK(parsed, "a valid reply's JSON does not parse: %s", fuzz_show(reply + v.off, v.len));
    if (parsed) {
        char *compact = json_dumps(parsed, JSON_COMPACT | JSON_ENCODE_ANY);
        FUZZ_CHECK(compact, "cannot serialise the reply's JSON");
        verdict c = validate(&f, compact);
        FUZZ_CHECK(same_verdict(&v, &c),
                   "the compact form validates differently:\n  reply   %s (%d: %s)\n  compact %s (%d: %s)",
                   fuzz_show(reply, strlen(reply)), v.ok, v.err, fuzz_show(compact, strlen(compact)), c.ok, c.err);
        free(compact);
        json_decref(parsed);
    }
    strbuf fenced = {0};
    sb_puts(&fenced, "```json\n");
    sb_append(&fenced, reply + v.off, v.len);
    sb_puts(&fenced, "\n```");
    verdict fv = validate(&f, fenced.data);
    FUZZ_CHECK(same_verdict(&v, &fv) && fv.len == v.len,
               "the fenced reply validates differently:\n  reply  %s (%d: %s)\n  fenced (%d: %s)",
               fuzz_show(reply, strlen(reply)), v.ok, v.err, fv.ok, fv.err);
    sb_free(&fenced);
done:
    format_spec_free(&f);
    json_decref(value);
    free(reply);
    return 0;
}
