/* cmd_models: `axllama list`, `axllama ps`, `axllama show MODEL` and `axllama stop MODEL`, the
 * ollama CLI's model commands as clients of a running `axllama serve` (/api/tags, /api/ps,
 * /api/show, /api/generate with keep_alive 0), with ollama's output layouts (docs/cli.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/options.h"
#include "common/buf.h"

#define LIST_TIMEOUT_S 30.0

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage_error(const char *msg, const char *usage)
{
    fprintf(stderr, "Error: %s\n\n%s", msg, usage);
    return 2;
}

/* After getopt_long rejected an argument: "Error: unknown flag: --x", the usage, status 2. */
static int unknown_flag(char **argv, const char *usage)
{
    char buf[8], msg[300];
    snprintf(msg, sizeof msg, "unknown flag: %s", options_rejected(argv, buf, sizeof buf));
    return usage_error(msg, usage);
}

/* The flags of list, ps and stop: -h/--help only. -1 to go on (the operands are argv[optind..]),
 * else the exit status. */
static int parse_help_flag(int argc, char **argv, const char *usage)
{
    enum { OPT_HELP = OPTION_LONG_BASE };
    static const struct option longopts[] = {{"help", no_argument, NULL, OPT_HELP}, {0}};
    options_begin();
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt != 'h' && opt != OPT_HELP)
            return unknown_flag(argv, usage);
        fputs(usage, stdout);
        return 0;
    }
    return -1;
}

/* A GET or POST whose JSON answer is wanted. */
static client_result fetch_json(const client *c, const char *method, const char *path, json_t *body, client_resp *r)
{
    client_req req = {.method = method, .path = path, .body = body, .timeout_s = LIST_TIMEOUT_S};
    return client_do(c, &req, r);
}

/* The first 12 characters of a digest, without a "sha256:" prefix. */
static void short_id(const char *digest, char *out, size_t outlen)
{
    if (!digest)
        digest = "";
    if (!strncmp(digest, "sha256:", 7))
        digest += 7;
    snprintf(out, outlen, "%.12s", digest);
}

/* Appends the cells of one row (ncols strings, copied) to a flat cell list. */
static void add_row(char ***cells, size_t *n, size_t *cap, size_t ncols, const char *const *row)
{
    if (*n + ncols > *cap) {
        *cap = (*n + ncols) * 2;
        *cells = xrealloc(*cells, *cap * sizeof **cells);
    }
    for (size_t i = 0; i < ncols; i++)
        (*cells)[(*n)++] = xstrdup(row[i] ? row[i] : "");
}

static void free_cells(char **cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(cells[i]);
    free(cells);
}

/* The start of `list` and `ps`: [--help], at most one PREFIX argument, then GET path. Returns -1
 * with *c and *r to use (and free), or the exit status when the command is over. */
static int get_listing(int argc, char **argv, const char *usage, const char *path, const char **prefix, client *c,
                       client_resp *r)
{
    int st = parse_help_flag(argc, argv, usage);
    if (st >= 0)
        return st;
    if (argc - optind > 1)
        return usage_error("accepts at most 1 arg(s)", usage);
    *prefix = argc - optind == 1 ? argv[optind] : NULL;
    client_init(c);
    if (fetch_json(c, "GET", path, NULL, r) != CLIENT_OK) {
        st = client_fail(c, r);
        client_free(c);
        return st;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */

static const char list_usage[] = "Usage: axllama list [PREFIX]\n\n"
                                 "Lists the models the server has (NAME ID SIZE MODIFIED), optionally only\n"
                                 "those whose name starts with PREFIX. Aliases: ls.\n";

int cmd_list(int argc, char **argv)
{
    const char *prefix;
    client c;
    client_resp r;
    int st = get_listing(argc, argv, list_usage, "/api/tags", &prefix, &c, &r);
    if (st >= 0)
        return st;
    char **cells = NULL;
    size_t n = 0, cap = 0;
    const char *header[] = {"NAME", "ID", "SIZE", "MODIFIED"};
    add_row(&cells, &n, &cap, 4, header);
    double now = wall_now();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r.json, "models"), i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (!name)
            continue;
        if (prefix && strncasecmp(name, prefix, strlen(prefix)))
            continue;
        char id[16], size[32], modified[64] = "Never";
        short_id(json_string_value(json_object_get(m, "digest")), id, sizeof id);
        fmt_human_bytes((int64_t)json_integer_value(json_object_get(m, "size")), size, sizeof size);
        double t;
        if (fmt_parse_time(json_string_value(json_object_get(m, "modified_at")), &t))
            fmt_human_time(t, now, modified, sizeof modified);
        const char *row[] = {name, id, size, modified};
        add_row(&cells, &n, &cap, 4, row);
    }
    fmt_table(stdout, "", 4, (const char *const *)cells, n / 4);
    free_cells(cells, n);
    client_resp_free(&r);
    client_free(&c);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static const char ps_usage[] = "Usage: axllama ps [PREFIX]\n\n"
                               "Lists the loaded model (NAME ID SIZE PROCESSOR CONTEXT UNTIL). While the\n"
                               "runtime is still loading, UNTIL shows \"Loading... k/N\".\n";

/* "100% NPU" (everything in NPU memory), or ollama's CPU/GPU split wording. */
static void processor_text(json_int_t size, json_int_t vram, char *out, size_t outlen)
{
    if (vram == 0)
        snprintf(out, outlen, "100%% CPU");
    else if (vram == size)
        snprintf(out, outlen, "100%% NPU");
    else if (vram > size || size == 0)
        snprintf(out, outlen, "Unknown");
    else {
        long cpu = (long)((double)(size - vram) / (double)size * 100 + 0.5);
        snprintf(out, outlen, "%ld%%/%ld%% CPU/NPU", cpu, 100 - cpu);
    }
}

int cmd_ps(int argc, char **argv)
{
    const char *prefix;
    client c;
    client_resp r;
    int st = get_listing(argc, argv, ps_usage, "/api/ps", &prefix, &c, &r);
    if (st >= 0)
        return st;
    char **cells = NULL;
    size_t n = 0, cap = 0;
    const char *header[] = {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"};
    add_row(&cells, &n, &cap, 6, header);
    double now = wall_now();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r.json, "models"), i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (!name || (prefix && strncmp(name, prefix, strlen(prefix))))
            continue;
        json_int_t size = json_integer_value(json_object_get(m, "size"));
        char id[16], size_s[32], proc[48], ctx[24], until[96] = "Never";
        short_id(json_string_value(json_object_get(m, "digest")), id, sizeof id);
        fmt_human_bytes((int64_t)size, size_s, sizeof size_s);
        processor_text(size, json_integer_value(json_object_get(m, "size_vram")), proc, sizeof proc);
        snprintf(ctx, sizeof ctx, "%lld", (long long)json_integer_value(json_object_get(m, "context_length")));
        json_t *ax = json_object_get(m, "axllama");
        const char *state = json_string_value(json_object_get(ax, "state"));
        const char *progress = json_string_value(json_object_get(ax, "progress"));
        double t;
        if (state && !strcmp(state, "loading"))
            snprintf(until, sizeof until, "Loading...%s%s", progress ? " " : "", progress ? progress : "");
        else if (state && !strcmp(state, "restarting"))
            snprintf(until, sizeof until, "Restarting...");
        else if (state && !strcmp(state, "failed"))
            snprintf(until, sizeof until, "Failed");
        else if (fmt_parse_time(json_string_value(json_object_get(m, "expires_at")), &t)) {
            if (now - t > 0)
                snprintf(until, sizeof until, "Stopping...");
            else
                fmt_human_time(t, now, until, sizeof until);
        }
        const char *row[] = {name, id, size_s, proc, ctx, until};
        add_row(&cells, &n, &cap, 6, row);
    }
    fmt_table(stdout, "", 6, (const char *const *)cells, n / 6);
    free_cells(cells, n);
    client_resp_free(&r);
    client_free(&c);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static const char show_usage[] =
    "Usage: axllama show MODEL [--modelfile | --parameters | --template | --system | --license]\n\n"
    "Shows a model's details (architecture, parameters, context length, quantization,\n"
    "capabilities, parameters, system prompt), or one field of /api/show as is.\n";

/* One section of `ollama show`: "  Title", the rows indented by four spaces, a blank line. */
static void show_section(const char *title, char **cells, size_t n, size_t ncols)
{
    if (!n)
        return;
    printf("  %s\n", title);
    fmt_table(stdout, "", ncols, (const char *const *)cells, n / ncols);
    printf("\n");
}

/* The first n non-blank lines of text (trimmed) as rows {"", line}, "..." after them if more. */
static void head_rows(const char *text, int n, char ***cells, size_t *count, size_t *cap)
{
    int seen = 0;
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *b = p, *e = p + len;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\r'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (e > b) {
            seen++;
            if (seen <= n) {
                char *line = xstrndup(b, (size_t)(e - b));
                const char *row[] = {"", line};
                add_row(cells, count, cap, 2, row);
                free(line);
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    if (seen > n) {
        const char *row[] = {"", "..."};
        add_row(cells, count, cap, 2, row);
    }
}

/* The Parameters section: each line of /api/show's "parameters" split on white space (Go's
 * strings.Fields), one cell per field. */
static void show_parameters(const char *ptext)
{
    if (!ptext || !*ptext)
        return;
    size_t ncols = 1;
    char *copy = xstrdup(ptext);
    for (char *s1 = NULL, *line = strtok_r(copy, "\n", &s1); line; line = strtok_r(NULL, "\n", &s1)) {
        size_t k = 1;
        for (char *s2 = NULL, *f = strtok_r(line, " \t\r", &s2); f; f = strtok_r(NULL, " \t\r", &s2))
            k++;
        if (k > ncols)
            ncols = k;
    }
    free(copy);
    char **cells = NULL;
    size_t n = 0, cap = 0;
    copy = xstrdup(ptext);
    const char **row = xcalloc(ncols, sizeof *row);
    for (char *s1 = NULL, *line = strtok_r(copy, "\n", &s1); line; line = strtok_r(NULL, "\n", &s1)) {
        size_t k = 1;
        for (size_t j = 0; j < ncols; j++)
            row[j] = "";
        for (char *s2 = NULL, *f = strtok_r(line, " \t\r", &s2); f; f = strtok_r(NULL, " \t\r", &s2))
            row[k++] = f;
        if (k > 1)
            add_row(&cells, &n, &cap, ncols, row);
    }
    free(row);
    free(copy);
    show_section("Parameters", cells, n, ncols);
    free_cells(cells, n);
}

static void show_info(json_t *info)
{
    json_t *details = json_object_get(info, "details");
    json_t *mi = json_object_get(info, "model_info");
    char **cells = NULL;
    size_t n = 0, cap = 0;
    const char *arch = json_string_value(json_object_get(mi, "general.architecture"));
    if (!arch)
        arch = json_string_value(json_object_get(details, "family"));
    const char *r1[] = {"", "architecture", arch};
    add_row(&cells, &n, &cap, 3, r1);
    const char *params = json_string_value(json_object_get(details, "parameter_size"));
    const char *r2[] = {"", "parameters", params};
    add_row(&cells, &n, &cap, 3, r2);
    if (arch) {
        char key[160], num[40];
        const char *labels[][2] = {{"context_length", "context length"}, {"embedding_length", "embedding length"}};
        for (size_t i = 0; i < 2; i++) {
            snprintf(key, sizeof key, "%s.%s", arch, labels[i][0]);
            json_t *v = json_object_get(mi, key);
            if (!json_is_number(v))
                continue;
            snprintf(num, sizeof num, "%.15g", json_number_value(v));
            const char *row[] = {"", labels[i][1], num};
            add_row(&cells, &n, &cap, 3, row);
        }
    }
    const char *r3[] = {"", "quantization", json_string_value(json_object_get(details, "quantization_level"))};
    add_row(&cells, &n, &cap, 3, r3);
    show_section("Model", cells, n, 3);
    free_cells(cells, n);

    cells = NULL;
    n = cap = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(info, "capabilities"), i, v)
    {
        const char *row[] = {"", json_string_value(v)};
        add_row(&cells, &n, &cap, 2, row);
    }
    show_section("Capabilities", cells, n, 2);
    free_cells(cells, n);

    show_parameters(json_string_value(json_object_get(info, "parameters")));

    const char *titles[][2] = {{"system", "System"}, {"license", "License"}};
    for (size_t t = 0; t < 2; t++) {
        const char *text = json_string_value(json_object_get(info, titles[t][0]));
        if (!text || !*text)
            continue;
        cells = NULL;
        n = cap = 0;
        head_rows(text, 2, &cells, &n, &cap);
        show_section(titles[t][1], cells, n, 2);
        free_cells(cells, n);
    }
}

int cmd_show(int argc, char **argv)
{
    enum { OPT_HELP = OPTION_LONG_BASE, OPT_VERBOSE, OPT_FIELD };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, OPT_HELP},       {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"modelfile", no_argument, NULL, OPT_FIELD}, {"parameters", no_argument, NULL, OPT_FIELD},
        {"template", no_argument, NULL, OPT_FIELD},  {"system", no_argument, NULL, OPT_FIELD},
        {"license", no_argument, NULL, OPT_FIELD},   {0},
    };
    const char *field = NULL;
    options_begin();
    int opt, index = -1;
    while ((opt = getopt_long(argc, argv, ":hv", longopts, &index)) != -1) {
        if (opt == 'h' || opt == OPT_HELP) {
            fputs(show_usage, stdout);
            return 0;
        }
        if (opt == OPT_FIELD) {
            if (field)
                return usage_error("only one of '--license', '--modelfile', '--parameters', '--system', or "
                                   "'--template' can be specified",
                                   show_usage);
            field = longopts[index].name;
        } else if (opt != 'v' && opt != OPT_VERBOSE) { /* --verbose: /api/show has nothing more to tell */
            return unknown_flag(argv, show_usage);
        }
    }
    if (argc - optind > 1)
        return usage_error("accepts 1 arg(s)", show_usage);
    if (argc - optind < 1)
        return usage_error("accepts 1 arg(s), received 0", show_usage);
    return show_model_info(argv[optind], field);
}

int show_model_info(const char *model, const char *field)
{
    client c;
    client_init(&c);
    json_t *body = json_pack("{ss}", "model", model);
    client_resp r;
    client_result res = fetch_json(&c, "POST", "/api/show", body, &r);
    json_decref(body);
    if (res != CLIENT_OK) {
        int st = client_fail(&c, &r);
        client_free(&c);
        return st;
    }
    if (field) {
        const char *text = json_string_value(json_object_get(r.json, field));
        if (!text || !*text) {
            if (!strcmp(field, "license") || !strcmp(field, "system") || !strcmp(field, "template"))
                printf("No %s was specified for this model.\n", field);
        } else {
            fputs(text, stdout);
            if (text[strlen(text) - 1] != '\n')
                fputc('\n', stdout);
        }
    } else {
        show_info(r.json);
    }
    fflush(stdout);
    client_resp_free(&r);
    client_free(&c);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static const char stop_usage[] = "Usage: axllama stop MODEL\n\n"
                                 "Unloads a running model (a request with keep_alive 0).\n";

/* Whether the /api/ps answer lists `model` (as given, or with ":latest" added). */
static bool ps_has(json_t *ps, const char *model)
{
    char with_tag[512];
    snprintf(with_tag, sizeof with_tag, "%s%s", model, strchr(model, ':') ? "" : ":latest");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(ps, "models"), i, m)
    {
        const char *names[] = {json_string_value(json_object_get(m, "name")),
                               json_string_value(json_object_get(m, "model"))};
        for (size_t k = 0; k < 2; k++)
            if (names[k] && (!strcasecmp(names[k], model) || !strcasecmp(names[k], with_tag)))
                return true;
    }
    return false;
}

int cmd_stop(int argc, char **argv)
{
    int st = parse_help_flag(argc, argv, stop_usage);
    if (st >= 0)
        return st;
    if (argc - optind != 1)
        return usage_error(argc - optind < 1 ? "accepts 1 arg(s), received 0" : "accepts 1 arg(s)", stop_usage);
    const char *model = argv[optind];
    client c;
    client_init(&c);
    client_resp r;
    if (fetch_json(&c, "GET", "/api/ps", NULL, &r) != CLIENT_OK) {
        st = client_fail(&c, &r);
        client_free(&c);
        return st;
    }
    bool running = ps_has(r.json, model);
    client_resp_free(&r);
    if (!running) {
        fprintf(stderr, "Error: couldn't find model \"%s\" to stop\n", model);
        client_free(&c);
        return 1;
    }
    json_t *body = json_pack("{sssisb}", "model", model, "keep_alive", 0, "stream", 0);
    client_result res = fetch_json(&c, "POST", "/api/generate", body, &r);
    json_decref(body);
    st = res == CLIENT_OK ? 0 : client_fail(&c, &r);
    client_resp_free(&r);
    client_free(&c);
    return st;
}
