/* display: sizes, relative times, Go durations, RFC 3339 parsing and aligned tables for the CLI
 * (see display.h; the rules are those of ollama's format package and `ollama list`). */
#include "cli/display.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fmt_human_bytes(int64_t b, char *out, size_t outlen)
{
    const double kib = 1024.0, mib = kib * 1024, gib = mib * 1024, tib = gib * 1024;
    double value, db = (double)b;
    const char *unit;
    if (db >= tib) {
        value = db / tib;
        unit = "TB";
    } else if (db >= gib) {
        value = db / gib;
        unit = "GB";
    } else if (db >= mib) {
        value = db / mib;
        unit = "MB";
    } else if (db >= kib) {
        value = db / kib;
        unit = "KB";
    } else {
        snprintf(out, outlen, "%lld B", (long long)b);
        return;
    }
    if (value >= 10 || value == trunc(value))
        snprintf(out, outlen, "%lld %s", (long long)value, unit);
    else
        snprintf(out, outlen, "%.1f %s", value, unit);
}

/* humanDuration of ollama's format package. */
static void human_duration(double d, char *out, size_t outlen)
{
    long long seconds = (long long)d;
    if (seconds < 1) {
        snprintf(out, outlen, "Less than a second");
        return;
    }
    if (seconds == 1) {
        snprintf(out, outlen, "1 second");
        return;
    }
    if (seconds < 60) {
        snprintf(out, outlen, "%lld seconds", seconds);
        return;
    }
    long long minutes = (long long)(d / 60);
    if (minutes == 1) {
        snprintf(out, outlen, "About a minute");
        return;
    }
    if (minutes < 60) {
        snprintf(out, outlen, "%lld minutes", minutes);
        return;
    }
    long long hours = (long long)llround(d / 3600);
    if (hours == 1)
        snprintf(out, outlen, "About an hour");
    else if (hours < 48)
        snprintf(out, outlen, "%lld hours", hours);
    else if (hours < 24 * 7 * 2)
        snprintf(out, outlen, "%lld days", hours / 24);
    else if (hours < 24 * 30 * 2)
        snprintf(out, outlen, "%lld weeks", hours / 24 / 7);
    else if (hours < 24 * 365 * 2)
        snprintf(out, outlen, "%lld months", hours / 24 / 30);
    else
        snprintf(out, outlen, "%lld years", (long long)(d / 3600 / 24 / 365));
}

void fmt_human_time(double t, double now, char *out, size_t outlen)
{
    double delta = now - t;
    if ((long long)(delta / 3600) / 24 / 365 < -20) {
        snprintf(out, outlen, "Forever");
        return;
    }
    char d[64];
    human_duration(fabs(delta), d, sizeof d);
    snprintf(out, outlen, "%s %s", d, delta < 0 ? "from now" : "ago");
}

/* "<int>[.<frac without trailing zeros>]" of v / 10^digits. */
static size_t put_fixed(char *buf, size_t cap, uint64_t v, int digits)
{
    uint64_t scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    int n = snprintf(buf, cap, "%llu", (unsigned long long)(v / scale));
    uint64_t frac = v % scale;
    if (frac && digits > 0) {
        char f[24];
        snprintf(f, sizeof f, "%0*llu", digits, (unsigned long long)frac);
        size_t len = strlen(f);
        while (len && f[len - 1] == '0')
            f[--len] = '\0';
        n += snprintf(buf + n, cap > (size_t)n ? cap - (size_t)n : 0, ".%s", f);
    }
    return (size_t)n;
}

void fmt_go_duration(uint64_t ns, char *out, size_t outlen)
{
    char num[64];
    if (ns == 0) {
        snprintf(out, outlen, "0s");
    } else if (ns < 1000) {
        snprintf(out, outlen, "%lluns", (unsigned long long)ns);
    } else if (ns < 1000000) {
        put_fixed(num, sizeof num, ns, 3);
        snprintf(out, outlen, "%s\xc2\xb5s", num);
    } else if (ns < 1000000000) {
        put_fixed(num, sizeof num, ns, 6);
        snprintf(out, outlen, "%sms", num);
    } else {
        uint64_t secs = ns / 1000000000, h = secs / 3600, m = (secs / 60) % 60;
        put_fixed(num, sizeof num, (secs % 60) * 1000000000 + ns % 1000000000, 9);
        if (h)
            snprintf(out, outlen, "%lluh%llum%ss", (unsigned long long)h, (unsigned long long)m, num);
        else if (m)
            snprintf(out, outlen, "%llum%ss", (unsigned long long)m, num);
        else
            snprintf(out, outlen, "%ss", num);
    }
}

bool fmt_parse_time(const char *s, double *out)
{
    if (!s)
        return false;
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &used) != 6 ||
        used == 0)
        return false;
    const char *p = s + used;
    double frac = 0;
    if (*p == '.') {
        char *end;
        frac = strtod(p, &end);
        p = end;
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = 0, om = 0;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return false;
        offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *out = (double)t - (double)offset + frac;
    return *p == '\0';
}

void fmt_table(FILE *f, const char *indent, size_t ncols, const char *const *cells, size_t nrows)
{
    size_t *width = calloc(ncols ? ncols : 1, sizeof *width);
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];
            size_t len = v ? strlen(v) : 0;
            if (len > width[c])
                width[c] = len;
        }
    for (size_t r = 0; r < nrows; r++) {
        fputs(indent ? indent : "", f);
        for (size_t c = 0; c < ncols; c++) {
            const char *v = cells[r * ncols + c];
            fprintf(f, "%-*s    ", (int)width[c], v ? v : "");
        }
        fputc('\n', f);
    }
    free(width);
}
