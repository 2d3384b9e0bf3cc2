/* format: `format` / response_format as a prompt instruction plus a validation of the reply
 * against JSON or a JSON-schema subset. See format.h. */
#include "api/format.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json_type.h"

#define INSTRUCTION_JSON "Respond with valid JSON only: a single JSON value, no other text, no code fences."

static const char *const TYPE_NAMES[] = {"object", "array", "string", "number", "integer", "boolean", "null"};

static void format_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void format_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* JSON-quoted key for paths and messages. */
static void format_path_key(strbuf *path, const char *key)
{
    bool plain = *key != '\0' && !isdigit((unsigned char)*key);
    for (const char *p = key; *p && plain; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    if (plain) {
        sb_printf(path, ".%s", key);
    } else {
        json_t *s = json_string(key);
        char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        sb_printf(path, "[%s]", q ? q : "?");
        free(q);
        json_decref(s);
    }
}

static bool format_known_type(const char *t)
{
    for (size_t i = 0; i < sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]; i++)
        if (!strcmp(t, TYPE_NAMES[i]))
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------ schema check */

/* Cuts path back to len characters (after a sub-schema or sub-value appended its part). */
static void format_path_cut(strbuf *path, size_t len)
{
    path->len = len;
    path->data[len] = '\0';
}

static bool format_check_schema(const json_t *s, strbuf *path, char *err, size_t errlen);

/* Checks the sub-schema sub at path + segment (+ the key, when not NULL). */
static bool format_check_sub_schema(const json_t *sub, strbuf *path, const char *segment, const char *key, char *err,
                                    size_t errlen)
{
    size_t len = path->len;
    sb_puts(path, segment);
    if (key)
        format_path_key(path, key);
    bool ok = format_check_schema(sub, path, err, errlen);
    format_path_cut(path, len);
    return ok;
}

/* "type": one known type name, or an array of them. */
static bool format_check_schema_type(const json_t *type, const strbuf *path, char *err, size_t errlen)
{
    bool ok = json_is_string(type) ? format_known_type(json_string_value(type)) : json_is_array(type);
    for (size_t i = 0; ok && json_is_array(type) && i < json_array_size(type); i++) {
        json_t *t = json_array_get(type, i);
        ok = json_is_string(t) && format_known_type(json_string_value(t));
    }
    if (!ok)
        format_set_err(err, errlen,
                       "invalid format schema: %s: \"type\" must be one of object, array, string, number, integer, "
                       "boolean, null, or an array of them",
                       path->data);
    return ok;
}

static bool format_check_schema(const json_t *s, strbuf *path, char *err, size_t errlen)
{
    if (json_is_boolean(s)) /* true / false schemas: JSON Schema allows them */
        return true;
    if (!json_is_object(s)) {
        format_set_err(err, errlen, "invalid format schema: %s: a schema must be an object", path->data);
        return false;
    }
    json_t *type = json_object_get(s, "type");
    if (type && !format_check_schema_type(type, path, err, errlen))
        return false;
    json_t *props = json_object_get(s, "properties");
    if (props && !json_is_object(props)) {
        format_set_err(err, errlen, "invalid format schema: %s: \"properties\" must be an object", path->data);
        return false;
    }
    const char *key;
    json_t *sub;
    json_object_foreach((json_t *)props, key, sub)
    {
        if (!format_check_sub_schema(sub, path, ".properties", key, err, errlen))
            return false;
    }
    json_t *req = json_object_get(s, "required");
    bool req_ok = !req || json_is_array(req);
    for (size_t i = 0; req && req_ok && i < json_array_size(req); i++)
        req_ok = json_is_string(json_array_get(req, i));
    if (!req_ok) {
        format_set_err(err, errlen, "invalid format schema: %s: \"required\" must be an array of strings", path->data);
        return false;
    }
    json_t *en = json_object_get(s, "enum");
    if (en && !json_is_array(en)) {
        format_set_err(err, errlen, "invalid format schema: %s: \"enum\" must be an array", path->data);
        return false;
    }
    json_t *items = json_object_get(s, "items"); /* tuple items (an array) are shown, not checked */
    if (items && !json_is_array(items) && !format_check_sub_schema(items, path, ".items", NULL, err, errlen))
        return false;
    json_t *ap = json_object_get(s, "additionalProperties");
    return !ap || format_check_sub_schema(ap, path, ".additionalProperties", NULL, err, errlen);
}

static bool format_spec_schema(json_t *schema, format_spec *out, char *err, size_t errlen)
{
    strbuf path = {0};
    sb_puts(&path, "$");
    bool ok = format_check_schema(schema, &path, err, errlen);
    sb_free(&path);
    if (!ok)
        return false;
    out->kind = FORMAT_SCHEMA;
    out->schema = json_incref(schema);
    return true;
}

bool format_from_ollama(const json_t *value, format_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!value || json_is_null(value) || (json_is_string(value) && json_string_length(value) == 0))
        return true;
    if (json_is_string(value) && !strcmp(json_string_value(value), "json")) {
        out->kind = FORMAT_JSON;
        return true;
    }
    if (json_is_object(value))
        return format_spec_schema((json_t *)value, out, err, errlen);
    char *raw = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    /* Go's %q of the raw JSON text */
    strbuf q = {0};
    for (const char *p = raw ? raw : ""; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_putc(&q, '\\');
        sb_putc(&q, *p);
    }
    format_set_err(err, errlen, "invalid format: \"%s\"; expected \"json\" or a valid JSON Schema object",
                   q.data ? q.data : "");
    sb_free(&q);
    free(raw);
    return false;
}

bool format_from_openai(const json_t *rf, format_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!rf || json_is_null(rf))
        return true;
    if (!json_is_object(rf)) {
        format_set_err(err, errlen, "response_format must be an object");
        return false;
    }
    json_t *type = json_object_get(rf, "type");
    const char *t = json_is_string(type) ? json_string_value(type) : NULL;
    if (t && !strcmp(t, "text"))
        return true;
    if (t && !strcmp(t, "json_object")) {
        out->kind = FORMAT_JSON;
        return true;
    }
    if (t && !strcmp(t, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *schema = json_is_object(js) ? json_object_get(js, "schema") : NULL;
        if (!json_is_object(js) || (schema && !json_is_null(schema) && !json_is_object(schema))) {
            format_set_err(err, errlen, "response_format json_schema must be an object with a \"schema\" object");
            return false;
        }
        if (!schema || json_is_null(schema)) {
            out->kind = FORMAT_JSON;
            return true;
        }
        return format_spec_schema(schema, out, err, errlen);
    }
    char *raw = type ? json_dumps(type, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    format_set_err(err, errlen,
                   "invalid response_format type: %s (must be \"text\", \"json_object\" or \"json_schema\")",
                   raw ? raw : "null");
    free(raw);
    return false;
}

void format_spec_free(format_spec *f)
{
    if (!f)
        return;
    json_decref(f->schema);
    memset(f, 0, sizeof *f);
}

format_spec format_spec_share(const format_spec *f)
{
    format_spec copy = *f;
    if (copy.schema)
        json_incref(copy.schema);
    return copy;
}

char *format_instruction(const format_spec *f)
{
    if (!f || f->kind == FORMAT_NONE)
        return NULL;
    strbuf out = {0};
    sb_puts(&out, INSTRUCTION_JSON);
    if (f->kind == FORMAT_SCHEMA) {
        char *schema = json_dumps(f->schema, JSON_COMPACT | JSON_ENCODE_ANY);
        sb_printf(&out, " The JSON must conform to this JSON schema: %s", schema ? schema : "{}");
        free(schema);
    }
    return sb_steal(&out);
}

/* ------------------------------------------------------------------------------------ validation */

static bool format_type_matches(const char *t, const json_t *v)
{
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "integer")) {
        if (json_is_integer(v))
            return true;
        double d = json_is_real(v) ? json_real_value(v) : 0.5;
        return isfinite(d) && d == floor(d); /* 3.0 is an integer in JSON Schema */
    }
    return !strcmp(t, json_type_name(v, true));
}

/* "string" or "string or null" for messages. */
static void format_type_list(strbuf *out, const json_t *type)
{
    if (json_is_string(type)) {
        sb_puts(out, json_string_value(type));
        return;
    }
    for (size_t i = 0; i < json_array_size(type); i++)
        sb_printf(out, "%s%s", i ? " or " : "", json_string_value(json_array_get(type, i)));
}

static bool format_fail_at(const strbuf *path, char *err, size_t errlen, const char *problem)
{
    format_set_err(err, errlen, "the model's reply does not match the format schema: %s: %s", path->data, problem);
    return false;
}

/* A failure whose problem names a property: "<prefix> <key as a JSON string>". */
static bool format_fail_property(const strbuf *path, char *err, size_t errlen, const char *prefix, const char *key)
{
    strbuf msg = {0};
    json_t *ks = json_string(key);
    char *q = json_dumps(ks, JSON_ENCODE_ANY);
    sb_printf(&msg, "%s %s", prefix, q ? q : key);
    free(q);
    json_decref(ks);
    format_fail_at(path, err, errlen, msg.data);
    sb_free(&msg);
    return false;
}

static bool format_check_value(const json_t *s, const json_t *v, strbuf *path, char *err, size_t errlen);

/* The type keyword: v must be of the type, or of one of the types. */
static bool format_check_value_type(const json_t *type, const json_t *v, const strbuf *path, char *err, size_t errlen)
{
    bool ok = false;
    if (json_is_string(type))
        ok = format_type_matches(json_string_value(type), v);
    for (size_t i = 0; !ok && json_is_array(type) && i < json_array_size(type); i++)
        ok = format_type_matches(json_string_value(json_array_get(type, i)), v);
    if (!ok) {
        strbuf msg = {0};
        sb_puts(&msg, "expected ");
        format_type_list(&msg, type);
        sb_printf(&msg, ", got %s", json_type_name(v, true));
        format_fail_at(path, err, errlen, msg.data);
        sb_free(&msg);
    }
    return ok;
}

/* An object value: required, properties, additionalProperties. */
static bool format_check_object(const json_t *s, const json_t *v, strbuf *path, char *err, size_t errlen)
{
    json_t *req = json_object_get(s, "required");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *k = json_string_value(json_array_get(req, i));
        if (!json_object_get(v, k))
            return format_fail_property(path, err, errlen, "missing required property", k);
    }
    json_t *props = json_object_get(s, "properties");
    json_t *ap = json_object_get(s, "additionalProperties");
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)v, key, item)
    {
        json_t *sub = json_object_get(props, key);
        if (!sub && json_is_false(ap))
            return format_fail_property(path, err, errlen, "unexpected property", key);
        if (!sub && json_is_object(ap))
            sub = ap;
        if (!sub)
            continue;
        size_t len = path->len;
        format_path_key(path, key);
        bool ok = format_check_value(sub, item, path, err, errlen);
        format_path_cut(path, len);
        if (!ok)
            return false;
    }
    return true;
}

/* An array value against one items schema. */
static bool format_check_items(const json_t *items, const json_t *v, strbuf *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t len = path->len;
        sb_printf(path, "[%zu]", i);
        bool ok = format_check_value(items, json_array_get(v, i), path, err, errlen);
        format_path_cut(path, len);
        if (!ok)
            return false;
    }
    return true;
}

static bool format_check_value(const json_t *s, const json_t *v, strbuf *path, char *err, size_t errlen)
{
    if (json_is_true(s))
        return true;
    if (json_is_false(s))
        return format_fail_at(path, err, errlen, "no value is allowed here");
    json_t *type = json_object_get(s, "type");
    if (type && !format_check_value_type(type, v, path, err, errlen))
        return false;
    json_t *en = json_object_get(s, "enum");
    if (en) {
        bool found = false;
        for (size_t i = 0; !found && i < json_array_size(en); i++)
            found = json_equal(json_array_get(en, i), (json_t *)v);
        if (!found)
            return format_fail_at(path, err, errlen, "value is not one of the enum values");
    }
    json_t *cst = json_object_get(s, "const");
    if (cst && !json_equal(cst, (json_t *)v))
        return format_fail_at(path, err, errlen, "value is not the const value");
    if (json_is_object(v) && !format_check_object(s, v, path, err, errlen))
        return false;
    json_t *items = json_object_get(s, "items");
    return !(items && !json_is_array(items) && json_is_array(v)) || format_check_items(items, v, path, err, errlen);
}

static bool format_is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* The JSON text inside reply: without surrounding whitespace and one enclosing code fence
 * ("```" or "```json" + newline ... "```"). */
static void format_locate_json(const char *reply, size_t *off, size_t *len)
{
    size_t a = 0, b = strlen(reply);
    while (a < b && format_is_ws(reply[a]))
        a++;
    while (b > a && format_is_ws(reply[b - 1]))
        b--;
    if (b - a >= 6 && !strncmp(reply + a, "```", 3) && !strncmp(reply + b - 3, "```", 3)) {
        size_t p = a + 3;
        while (p < b - 3 && reply[p] != '\n') /* the info string: "json", "JSON", "" */
            p++;
        bool info_ok = true;
        for (size_t i = a + 3; i < p; i++)
            info_ok = info_ok && (isalpha((unsigned char)reply[i]) || format_is_ws(reply[i]));
        if (info_ok && p < b - 3) {
            a = p + 1;
            b -= 3;
            while (a < b && format_is_ws(reply[a]))
                a++;
            while (b > a && format_is_ws(reply[b - 1]))
                b--;
        }
    }
    *off = a;
    *len = b - a;
}

bool format_validate(const format_spec *f, const char *reply, size_t *json_off, size_t *json_len, char *err,
                     size_t errlen)
{
    const char *r = reply ? reply : "";
    size_t off = 0, len = strlen(r);
    if (f && f->kind != FORMAT_NONE)
        format_locate_json(r, &off, &len);
    if (json_off)
        *json_off = off;
    if (json_len)
        *json_len = len;
    if (!f || f->kind == FORMAT_NONE)
        return true;
    if (len == 0) {
        format_set_err(err, errlen, "the model's reply is not valid JSON: the reply is empty");
        return false;
    }
    json_error_t jerr;
    json_t *v = json_loadb(r + off, len, JSON_DECODE_ANY, &jerr);
    if (!v) {
        format_set_err(err, errlen, "the model's reply is not valid JSON: %s (line %d, column %d)", jerr.text,
                       jerr.line, jerr.column);
        return false;
    }
    bool ok = true;
    if (f->kind == FORMAT_SCHEMA) {
        strbuf path = {0};
        sb_puts(&path, "$");
        ok = format_check_value(f->schema, v, &path, err, errlen);
        sb_free(&path);
    }
    json_decref(v);
    return ok;
}
