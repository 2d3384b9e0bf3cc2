/* model_name: Ollama's model-name rules (types/model/name.go): [host/][namespace/]model[:tag], the
 * display form with the defaults left out. See models/manifest.h. */
#include "models/manifest.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_DEFAULT_HOST "registry.ollama.ai"
#define NAME_DEFAULT_NAMESPACE "library"
#define NAME_DEFAULT_TAG "latest"

typedef enum { PART_HOST, PART_NAMESPACE, PART_MODEL, PART_TAG } name_part_kind;

typedef struct {
    const char *p;
    size_t n;
} span;

static bool is_alnum_or_underscore(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool name_part_valid(name_part_kind kind, span s)
{
    size_t max = kind == PART_HOST ? 350 : 80;
    if (s.n < 1 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (i == 0) {
            if (!is_alnum_or_underscore(c))
                return false;
            continue;
        }
        if (c == '_' || c == '-')
            continue;
        if (c == '.') {
            if (kind == PART_NAMESPACE)
                return false;
            continue;
        }
        if (c == ':') {
            if (kind != PART_HOST)
                return false;
            continue;
        }
        if (!is_alnum_or_underscore(c))
            return false;
    }
    return true;
}

static const char *last_byte(span s, char c)
{
    for (size_t i = s.n; i > 0; i--)
        if (s.p[i - 1] == c)
            return s.p + i - 1;
    return NULL;
}

static bool span_equal_fold(span s, const char *lit)
{
    return strlen(lit) == s.n && strncasecmp(s.p, lit, s.n) == 0;
}

bool model_name_normalize(const char *name, char *out, size_t outlen)
{
    if (!name || !out || outlen == 0)
        return false;
    span s = {name, strlen(name)};
    span host = {NAME_DEFAULT_HOST, strlen(NAME_DEFAULT_HOST)};
    span ns = {NAME_DEFAULT_NAMESPACE, strlen(NAME_DEFAULT_NAMESPACE)};
    span model, tag = {NAME_DEFAULT_TAG, strlen(NAME_DEFAULT_TAG)};
    if (memchr(s.p, '@', s.n))
        return false; /* digests are not supported */

    /* "/" cannot be in a tag, so a ':' after the last '/' starts the tag */
    const char *colon = last_byte(s, ':'), *slash = last_byte(s, '/');
    if (colon && (!slash || colon > slash)) {
        tag = (span){colon + 1, (size_t)(s.p + s.n - colon - 1)};
        s.n = (size_t)(colon - s.p);
        if (tag.n == 0 || s.n == 0)
            return false;
    }
    slash = last_byte(s, '/');
    if (!slash) {
        model = s;
    } else {
        model = (span){slash + 1, (size_t)(s.p + s.n - slash - 1)};
        s.n = (size_t)(slash - s.p);
        if (model.n == 0 || s.n == 0)
            return false;
        slash = last_byte(s, '/');
        if (!slash) {
            ns = s;
        } else {
            ns = (span){slash + 1, (size_t)(s.p + s.n - slash - 1)};
            s.n = (size_t)(slash - s.p);
            if (ns.n == 0 || s.n == 0)
                return false;
            host = s;
            for (size_t i = 0; i + 3 <= s.n; i++) {
                if (memcmp(s.p + i, "://", 3) == 0) { /* a scheme is dropped */
                    host = (span){s.p + i + 3, s.n - i - 3};
                    break;
                }
            }
        }
    }
    if (!name_part_valid(PART_HOST, host) || !name_part_valid(PART_NAMESPACE, ns) ||
        !name_part_valid(PART_MODEL, model) || !name_part_valid(PART_TAG, tag))
        return false;

    int n;
    if (!span_equal_fold(host, NAME_DEFAULT_HOST))
        n = snprintf(out, outlen, "%.*s/%.*s/%.*s:%.*s", (int)host.n, host.p, (int)ns.n, ns.p, (int)model.n, model.p,
                     (int)tag.n, tag.p);
    else if (!span_equal_fold(ns, NAME_DEFAULT_NAMESPACE))
        n = snprintf(out, outlen, "%.*s/%.*s:%.*s", (int)ns.n, ns.p, (int)model.n, model.p, (int)tag.n, tag.p);
    else
        n = snprintf(out, outlen, "%.*s:%.*s", (int)model.n, model.p, (int)tag.n, tag.p);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return false;
    }
    return true;
}
