/* tokenizer_bench: measures the C tokenizer through its public API (tokenizer/tokenizer.h):
 * load time (best of 5 loads), single-thread encode throughput over every chunk of a JSON Lines
 * file ({"text": ...} per line, streamed one line at a time so the corpus does not count in the
 * memory figures), total tokens, and resident memory. Prints one JSON line on stdout.
 * Usage: tokenizer_bench --tokenizer DIR --chunks FILE.jsonl */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"
#include "tokenizer/tokenizer.h"

#define LOAD_REPEATS 5

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB). */
static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)ru.ru_maxrss / 1024.0;
}

/* Current resident set size in MiB, from /proc/self/statm; -1 where that is unavailable. */
static double current_rss_mib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1.0;
    unsigned long total_pages = 0, resident_pages = 0;
    int fields = fscanf(f, "%lu %lu", &total_pages, &resident_pages);
    fclose(f);
    if (fields != 2)
        return -1.0;
    return (double)resident_pages * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void usage(void)
{
    fprintf(stderr, "usage: tokenizer_bench --tokenizer DIR --chunks FILE.jsonl\n");
}

typedef struct {
    size_t chunks;
    size_t bytes;
    size_t tokens;
    double encode_seconds;
} encode_totals;

/* Encodes every line's "text" of path in order; returns false (message on stderr) on bad input. */
static bool encode_chunks(const tokenizer *tok, const char *path, encode_totals *totals)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tokenizer_bench: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t line_len;
    idvec ids = {0};
    bool ok = true;
    size_t line_no = 0;
    while ((line_len = getline(&line, &line_cap, f)) >= 0) {
        line_no++;
        if (line_len == 0 || (line_len == 1 && line[0] == '\n'))
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)line_len, JSON_ALLOW_NUL, &jerr);
        json_t *text = obj ? json_object_get(obj, "text") : NULL;
        if (!json_is_string(text)) {
            fprintf(stderr, "tokenizer_bench: %s line %zu: expected {\"text\": string}%s%s\n", path, line_no,
                    obj ? "" : ": ", obj ? "" : jerr.text);
            json_decref(obj);
            ok = false;
            break;
        }
        const char *s = json_string_value(text);
        size_t n = json_string_length(text);
        iv_clear(&ids);
        double t0 = now_seconds();
        tokenizer_encode(tok, s, n, &ids);
        totals->encode_seconds += now_seconds() - t0;
        totals->chunks++;
        totals->bytes += n;
        totals->tokens += ids.len;
        json_decref(obj);
    }
    if (ok && ferror(f)) {
        fprintf(stderr, "tokenizer_bench: error reading %s\n", path);
        ok = false;
    }
    free(line);
    iv_free(&ids);
    fclose(f);
    return ok;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *chunks_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--chunks") && i + 1 < argc)
            chunks_path = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (!dir || !chunks_path) {
        usage();
        return 2;
    }

    json_t *load_times = json_array();
    double best_load = -1.0;
    tokenizer *tok = NULL;
    for (int i = 0; i < LOAD_REPEATS; i++) {
        tokenizer_free(tok);
        char err[256] = "";
        double t0 = now_seconds();
        tok = tokenizer_load(dir, err, sizeof err);
        double seconds = now_seconds() - t0;
        if (!tok) {
            fprintf(stderr, "tokenizer_bench: cannot load tokenizer from %s: %s\n", dir, err);
            json_decref(load_times);
            return 1;
        }
        json_array_append_new(load_times, json_real(seconds));
        if (best_load < 0 || seconds < best_load)
            best_load = seconds;
    }
    double rss_after_load = current_rss_mib();
    double peak_after_load = peak_rss_mib();

    encode_totals totals = {0};
    bool ok = encode_chunks(tok, chunks_path, &totals);
    tokenizer_free(tok);
    if (!ok) {
        json_decref(load_times);
        return 1;
    }

    double mb_per_s = totals.encode_seconds > 0 ? (double)totals.bytes / 1e6 / totals.encode_seconds : 0.0;
    json_t *report = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:o, s:f, s:f, s:f}", "impl", "axllama", "chunks",
                               (json_int_t)totals.chunks, "bytes", (json_int_t)totals.bytes, "tokens",
                               (json_int_t)totals.tokens, "encode_s", totals.encode_seconds, "mb_per_s", mb_per_s,
                               "load_s", best_load, "load_s_all", load_times, "rss_after_load_mib", rss_after_load,
                               "peak_rss_after_load_mib", peak_after_load, "peak_rss_mib", peak_rss_mib());
    if (!report) {
        fprintf(stderr, "tokenizer_bench: cannot build the report\n");
        return 1;
    }
    char *line = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(report);
    if (!line) {
        fprintf(stderr, "tokenizer_bench: cannot serialise the report\n");
        return 1;
    }
    puts(line);
    free(line);
    return 0;
}
