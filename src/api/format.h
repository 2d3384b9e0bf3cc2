/* format: structured outputs without constrained decoding. The NPU runtime samples freely, so
 * `format` (Ollama: "json" or a JSON schema) and OpenAI's response_format are honoured by
 *   1. instructing the model through the system prompt (format_instruction(), passed to the
 *      engine as job_request.system_suffix), and
 *   2. validating the reply (format_validate()): it must be one JSON value (surrounding
 *      whitespace and one enclosing ``` / ```json code fence are allowed), and with a schema it
 *      must conform to the supported subset:
 *        type (a string or an array of strings: object, array, string, number, integer, boolean,
 *        null), properties, required, enum, items (one schema), additionalProperties (false or a
 *        schema), const. Other keywords (description, title, minimum, pattern, $defs, $ref,
 *        anyOf, ...) are shown to the model in the instruction but not checked.
 * A reply that does not conform is an error for the API to report, never a 200 with
 * unconstrained text. Pure functions: no I/O, no globals. docs/tools-and-format.md. */
#ifndef AXLLAMA_API_FORMAT_H
#define AXLLAMA_API_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef enum {
    FORMAT_NONE,   /* no constraint */
    FORMAT_JSON,   /* any JSON value */
    FORMAT_SCHEMA, /* a JSON value conforming to schema */
} format_kind;

typedef struct {
    format_kind kind;
    json_t *schema; /* FORMAT_SCHEMA: a reference owned by the spec */
} format_spec;

/* Ollama's `format` (value may be NULL): absent, null or "" -> NONE; "json" -> JSON; an object ->
 * SCHEMA. Anything else: false and Ollama's message
 *   invalid format: "<compact JSON of value>"; expected "json" or a valid JSON Schema object
 * A schema whose supported keywords have the wrong shape is refused too:
 *   invalid format schema: <path>: <problem>      e.g. `$.properties.age: "type" must be a
 *   string or an array of strings` (unknown type names, non-object properties, non-array
 *   required/enum, non-object items ...). */
bool format_from_ollama(const json_t *value, format_spec *out, char *err, size_t errlen);

/* OpenAI's `response_format` (value may be NULL): absent, null or {"type":"text"} -> NONE;
 * {"type":"json_object"} -> JSON; {"type":"json_schema","json_schema":{"schema":{...}}} -> SCHEMA
 * (a missing schema means any JSON). Errors (false):
 *   response_format must be an object
 *   invalid response_format type: "<x>" (must be "text", "json_object" or "json_schema")
 *   response_format json_schema must be an object with a "schema" object
 *   invalid format schema: ... (as above) */
bool format_from_openai(const json_t *response_format, format_spec *out, char *err, size_t errlen);

void format_spec_free(format_spec *f);

/* Another reference to f (the schema is shared; free each with format_spec_free). */
format_spec format_spec_share(const format_spec *f);

/* The instruction to append to the system prompt (caller frees); NULL for NONE:
 *   JSON:   "Respond with valid JSON only: a single JSON value, no other text, no code fences."
 *   SCHEMA: "Respond with valid JSON only: a single JSON value, no other text, no code fences.
 *            The JSON must conform to this JSON schema: <the schema, compact>" */
char *format_instruction(const format_spec *f);

/* Checks a complete reply (the answer text, thinking excluded). true when it conforms (always
 * for NONE); then *json_off / *json_len (may be NULL) locate the JSON text inside reply (the
 * reply without surrounding whitespace and code fence). false with err:
 *   the model's reply is not valid JSON: <parser message> (line L, column C)
 *   the model's reply is not valid JSON: the reply is empty
 *   the model's reply does not match the format schema: <path>: <problem>
 * where path is $ (the whole value), $.key, $[i] ... and problem one of
 *   expected <type>, got <type>        missing required property "<k>"
 *   value is not one of the enum values  value is not the const value
 *   unexpected property "<k>"          (additionalProperties false) */
bool format_validate(const format_spec *f, const char *reply, size_t *json_off, size_t *json_len, char *err,
                     size_t errlen);

#endif
