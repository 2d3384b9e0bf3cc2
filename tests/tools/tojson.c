/* tojson: test driver for api/tojson. Reads a JSON array from stdin and prints, one per line,
 * tojson_dumps() of each element as a JSON string (so that the output is ASCII-safe to compare).
 * Exit code 2 on malformed input. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/tojson.h"

int main(void)
{
    json_error_t err;
    json_t *values = json_loadf(stdin, JSON_DECODE_ANY, &err);
    if (!json_is_array(values)) {
        fprintf(stderr, "tojson: stdin must be a JSON array: %s\n", err.text);
        json_decref(values);
        return 2;
    }
    for (size_t i = 0; i < json_array_size(values); i++) {
        char *text = tojson_dumps(json_array_get(values, i));
        json_t *s = json_string(text);
        char *line = json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        puts(line ? line : "null");
        free(line);
        json_decref(s);
        free(text);
    }
    json_decref(values);
    return 0;
}
