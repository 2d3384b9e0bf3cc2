/* json_type: the name of a JSON value's type as error messages print it (jansson values). */
#ifndef AXLLAMA_COMMON_JSON_TYPE_H
#define AXLLAMA_COMMON_JSON_TYPE_H

#include <stdbool.h>

#include <jansson.h>

/* "object", "array", "string", "number", "boolean" or "null"; with integer_apart, an integer is
 * "integer" (JSON Schema's names) rather than "number" (JavaScript's and nlohmann's). */
const char *json_type_name(const json_t *v, bool integer_apart);

#endif
