/* cmd_tokenize: `axllama tokenize --tokenizer DIR [--decode]`: JSON Lines on stdin, one answer line
 * per input line on stdout: {"text": "..."} -> {"ids": [...]}, or with --decode {"ids": [...]} ->
 * {"text": "..."}. Any malformed line stops with a message on stderr and exit status 1. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/buf.h"
#include "tokenizer/tokenizer.h"

static void tokenize_usage(FILE *f)
{
    fprintf(f, "Usage: axllama tokenize --tokenizer DIR [--decode]\n"
               "  Reads JSON Lines on stdin: {\"text\": \"...\"} (or {\"ids\": [...]} with --decode)\n"
               "  and writes one {\"ids\": [...]} (or {\"text\": \"...\"}) line per input line.\n"
               "  DIR holds tokenizer.json and tokenizer_config.json.\n");
}

static bool encode_line(const tokenizer *tok, json_t *req, strbuf *out, const char **why)
{
    json_t *text = json_object_get(req, "text");
    if (!json_is_string(text)) {
        *why = text ? "\"text\" is not a string" : "no \"text\" member";
        return false;
    }
    idvec ids = {0};
    tokenizer_encode(tok, json_string_value(text), json_string_length(text), &ids);
    sb_puts(out, "{\"ids\":[");
    for (size_t i = 0; i < ids.len; i++)
        sb_printf(out, i ? ",%d" : "%d", ids.v[i]);
    sb_puts(out, "]}\n");
    iv_free(&ids);
    return true;
}

static bool decode_line(const tokenizer *tok, json_t *req, strbuf *out, const char **why)
{
    json_t *list = json_object_get(req, "ids"), *v;
    if (!json_is_array(list)) {
        *why = list ? "\"ids\" is not an array" : "no \"ids\" member";
        return false;
    }
    idvec ids = {0};
    size_t i;
    bool ok = true;
    json_array_foreach(list, i, v)
    {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || (size_t)id >= tokenizer_vocab_size(tok)) {
            *why = json_is_integer(v) ? "an id is out of range" : "an id is not an integer";
            ok = false;
            break;
        }
        iv_push(&ids, (int32_t)id);
    }
    strbuf text = {0};
    if (ok)
        ok = tokenizer_decode(tok, ids.v, ids.len, &text);
    if (ok) {
        json_t *ans = json_pack("{s:s%}", "text", text.data ? text.data : "", text.len);
        char *line = json_dumps(ans, JSON_COMPACT | JSON_ENCODE_ANY);
        sb_puts(out, line);
        sb_putc(out, '\n');
        free(line);
        json_decref(ans);
    }
    sb_free(&text);
    iv_free(&ids);
    return ok;
}

/* --tokenizer DIR (or --tokenizer=DIR), --decode, -h/--help. -1 to go on, else the exit status. */
static int parse_tokenize_flags(int argc, char **argv, const char **dir, bool *decode)
{
    enum { OPT_HELP = OPTION_LONG_BASE, OPT_TOKENIZER, OPT_DECODE };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, OPT_HELP},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"decode", no_argument, NULL, OPT_DECODE},
        {0},
    };
    options_begin();
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == 'h' || opt == OPT_HELP) {
            tokenize_usage(stdout);
            return 0;
        }
        if (opt == OPT_TOKENIZER) {
            *dir = optarg;
        } else if (opt == OPT_DECODE) {
            *decode = true;
        } else {
            char buf[8];
            fprintf(stderr, "axllama tokenize: unknown or incomplete option '%s'\n",
                    options_rejected(argv, buf, sizeof buf));
            tokenize_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "axllama tokenize: unknown or incomplete option '%s'\n", argv[optind]);
        tokenize_usage(stderr);
        return 1;
    }
    return -1;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *dir = NULL;
    bool decode = false;
    int st = parse_tokenize_flags(argc, argv, &dir, &decode);
    if (st >= 0)
        return st;
    if (!dir) {
        fprintf(stderr, "axllama tokenize: --tokenizer DIR is required\n");
        tokenize_usage(stderr);
        return 1;
    }
    char err[512];
    tokenizer *tok = tokenizer_load(dir, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "axllama tokenize: %s\n", err);
        return 1;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int status = 0;
    strbuf out = {0};
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        json_error_t je;
        json_t *req = json_loadb(line, len, JSON_ALLOW_NUL, &je);
        const char *why = NULL;
        if (!req) {
            fprintf(stderr, "axllama tokenize: line %ld: invalid JSON: %s\n", lineno, je.text);
            status = 1;
            break;
        }
        sb_clear(&out);
        bool ok =
            json_is_object(req) && (decode ? decode_line(tok, req, &out, &why) : encode_line(tok, req, &out, &why));
        json_decref(req);
        if (!ok) {
            fprintf(stderr, "axllama tokenize: line %ld: %s\n", lineno, why ? why : "expected a JSON object");
            status = 1;
            break;
        }
        fwrite(out.data, 1, out.len, stdout);
    }
    if (fflush(stdout) != 0)
        status = 1;
    sb_free(&out);
    free(line);
    tokenizer_free(tok);
    return status;
}
