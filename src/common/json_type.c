/* json_type: names of JSON value types for error messages (see json_type.h). */
#include "common/json_type.h"

const char *json_type_name(const json_t *v, bool integer_apart)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return integer_apart ? "integer" : "number";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "null";
}
