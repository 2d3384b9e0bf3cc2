/* utf8: UTF-8 scanning, lossy repair and incomplete-tail detection (structure only). */
#include "common/utf8.h"

#include <string.h>

utf8_status utf8_next(const char *str, size_t n, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (b < 0x80) {
        *len = 1;
        return UTF8_OK;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        *len = 1;
        return UTF8_INVALID;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n) {
            *len = k;
            return UTF8_INCOMPLETE;
        }
        unsigned char c = s[k];
        unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
        if (c < min || c > max) {
            *len = k;
            return UTF8_INVALID;
        }
    }
    *len = need + 1;
    return UTF8_OK;
}

bool utf8_is_valid(const char *s, size_t n)
{
    size_t i = 0, len;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        if (utf8_next(s + i, n - i, &len) != UTF8_OK)
            return false;
        i += len;
    }
    return true;
}

void utf8_append_lossy(strbuf *out, const char *s, size_t n)
{
    size_t i = 0, run = 0, len;
    sb_reserve(out, n);
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        if (utf8_next(s + i, n - i, &len) == UTF8_OK) {
            i += len;
            continue;
        }
        sb_append(out, s + run, i - run);
        sb_append(out, UTF8_REPLACEMENT, 3);
        i += len;
        run = i;
    }
    sb_append(out, s + run, n - run);
}

size_t utf8_complete_prefix(const char *s, size_t n)
{
    /* A character is at most 4 bytes: only the last 3 bytes can start an incomplete one. */
    size_t start = n > 3 ? n - 3 : 0;
    for (size_t i = start; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0xC2 || b > 0xF4)
            continue; /* ASCII, continuation or never-valid lead byte */
        size_t len;
        if (utf8_next(s + i, n - i, &len) == UTF8_INCOMPLETE && i + len == n)
            return i;
    }
    return n;
}
