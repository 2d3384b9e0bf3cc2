/* tojson: Python's json.dumps(ensure_ascii=False) in C. See tojson.h. */
#include "api/tojson.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static void put_string(strbuf *out, const char *s, size_t n)
{
    sb_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_puts(out, "\\\""); break;
        case '\\': sb_puts(out, "\\\\"); break;
        case '\n': sb_puts(out, "\\n"); break;
        case '\r': sb_puts(out, "\\r"); break;
        case '\t': sb_puts(out, "\\t"); break;
        case '\b': sb_puts(out, "\\b"); break;
        case '\f': sb_puts(out, "\\f"); break;
        default:
            if (c < 0x20)
                sb_printf(out, "\\u%04x", c);
            else
                sb_putc(out, (char)c);
        }
    }
    sb_putc(out, '"');
}

/* repr(float): the shortest %.{p}e rendering that reads back as d, laid out as Python does
 * (positional for -4 <= exponent < 16, else d.ddde+XX). */
static void put_real(strbuf *out, double d)
{
    if (isnan(d)) {
        sb_puts(out, "NaN");
        return;
    }
    if (isinf(d)) {
        sb_puts(out, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char buf[64];
    for (int p = 0; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf: [-]D[.DDD]e[+-]XX */
    const char *q = buf;
    bool neg = *q == '-';
    if (neg)
        q++;
    char digits[32];
    size_t nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q != '.')
            digits[nd++] = *q;
    digits[nd] = '\0';
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') /* %.{p}e never pads, but keep it safe */
        digits[--nd] = '\0';
    if (neg)
        sb_putc(out, '-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            sb_puts(out, "0.");
            for (int i = -1; i > exp; i--)
                sb_putc(out, '0');
            sb_puts(out, digits);
        } else if ((size_t)exp + 1 >= nd) {
            sb_puts(out, digits);
            for (size_t i = nd; i < (size_t)exp + 1; i++)
                sb_putc(out, '0');
            sb_puts(out, ".0");
        } else {
            sb_append(out, digits, (size_t)exp + 1);
            sb_putc(out, '.');
            sb_puts(out, digits + exp + 1);
        }
    } else {
        sb_putc(out, digits[0]);
        if (nd > 1) {
            sb_putc(out, '.');
            sb_puts(out, digits + 1);
        }
        sb_printf(out, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
}

static void put_value(strbuf *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        sb_putc(out, '{');
        bool first = true;
        const char *key;
        size_t key_len;
        json_t *item;
        json_object_keylen_foreach((json_t *)v, key, key_len, item)
        {
            if (!first)
                sb_puts(out, ", ");
            first = false;
            put_string(out, key, key_len);
            sb_puts(out, ": ");
            put_value(out, item);
        }
        sb_putc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        sb_putc(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sb_puts(out, ", ");
            put_value(out, json_array_get(v, i));
        }
        sb_putc(out, ']');
        break;
    }
    case JSON_STRING: put_string(out, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: sb_printf(out, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: put_real(out, json_real_value(v)); break;
    case JSON_TRUE: sb_puts(out, "true"); break;
    case JSON_FALSE: sb_puts(out, "false"); break;
    case JSON_NULL: sb_puts(out, "null"); break;
    }
}

char *tojson_dumps(const json_t *value)
{
    strbuf out = {0};
    sb_puts(&out, "");
    if (value)
        put_value(&out, value);
    else
        sb_puts(&out, "null");
    return sb_steal(&out);
}
