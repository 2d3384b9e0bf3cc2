/* run_script: the vendor's run scripts (see run_script.h): a shell lexer good enough for them (quotes,
 * backslashes, continuations, comments, command separators, redirections), the runtime's command
 * among the script's commands, and its flags sorted into what main_api_* takes. */
#include "models/run_script.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_MAX_AXMODELS 1000

/* ------------------------------------------------------------------------------------ words */

static void words_push(rs_words *w, const char *s)
{
    w->v = xrealloc(w->v, (w->n + 2) * sizeof *w->v);
    w->v[w->n++] = xstrdup(s);
    w->v[w->n] = NULL;
}

void rs_words_free(rs_words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    w->v = NULL;
    w->n = 0;
}

/* ------------------------------------------------------------------------------------ run scripts */

typedef struct {
    rs_words words;
    bool *expanded; /* per word: holds $ or ` (a shell expansion axllama cannot do) */
    int line;       /* where the command starts (1-based) */
} sh_command;

typedef struct {
    sh_command *v;
    size_t n;
    /* the command being read */
    sh_command cur;
    strbuf word;
    bool in_word, word_quoted, word_expanded, discard_next;
    int line;
} sh_lexer;

static void lexer_finish_word(sh_lexer *lx)
{
    if (!lx->in_word)
        return;
    if (lx->discard_next) { /* a redirection's target */
        lx->discard_next = false;
    } else {
        sh_command *c = &lx->cur;
        if (c->words.n == 0)
            c->line = lx->line;
        c->expanded = xrealloc(c->expanded, (c->words.n + 1) * sizeof *c->expanded);
        c->expanded[c->words.n] = lx->word_expanded;
        words_push(&c->words, lx->word.data ? lx->word.data : "");
    }
    sb_clear(&lx->word);
    lx->in_word = lx->word_quoted = lx->word_expanded = false;
}

static void lexer_finish_command(sh_lexer *lx)
{
    lexer_finish_word(lx);
    lx->discard_next = false;
    if (lx->cur.words.n == 0)
        return;
    lx->v = xrealloc(lx->v, (lx->n + 1) * sizeof *lx->v);
    lx->v[lx->n++] = lx->cur;
    memset(&lx->cur, 0, sizeof lx->cur);
}

static void sh_command_free(sh_command *c)
{
    rs_words_free(&c->words);
    free(c->expanded);
}

static void lexer_free(sh_lexer *lx)
{
    for (size_t i = 0; i < lx->n; i++)
        sh_command_free(&lx->v[i]);
    free(lx->v);
    sh_command_free(&lx->cur);
    sb_free(&lx->word);
}

static void lexer_putc(sh_lexer *lx, char c)
{
    sb_putc(&lx->word, c);
    lx->in_word = true;
}

static bool word_all_digits(const strbuf *w)
{
    if (!w->len)
        return false;
    for (size_t i = 0; i < w->len; i++)
        if (!isdigit((unsigned char)w->data[i]))
            return false;
    return true;
}

/* A double-quoted string from s (just after the opening quote); returns the position after the
 * closing quote, or NULL when it is not closed. */
static const char *lex_double_quoted(sh_lexer *lx, const char *s)
{
    lx->in_word = lx->word_quoted = true;
    for (;;) {
        char c = *s;
        if (!c)
            return NULL;
        if (c == '"')
            return s + 1;
        if (c == '\\' && s[1] && strchr("$`\"\\\n", s[1])) {
            if (s[1] == '\n')
                lx->line++;
            else
                sb_putc(&lx->word, s[1]);
            s += 2;
            continue;
        }
        if (c == '$' || c == '`')
            lx->word_expanded = true;
        if (c == '\n')
            lx->line++;
        sb_putc(&lx->word, c);
        s++;
    }
}

/* Splits a script into commands of words (see rs_command). */
static bool lex_script(const char *text, sh_lexer *lx, char *err, size_t errlen)
{
    lx->line = 1;
    const char *s = text;
    while (*s) {
        char c = *s;
        if (c == '\\') {
            if (s[1] == '\n') { /* line continuation */
                lx->line++;
                s += 2;
            } else if (s[1]) {
                lexer_putc(lx, s[1]);
                lx->word_quoted = true;
                s += 2;
            } else {
                s++;
            }
        } else if (c == '\'') {
            const char *end = strchr(s + 1, '\'');
            if (!end) {
                snprintf(err, errlen, "line %d: a single quote is not closed", lx->line);
                return false;
            }
            for (const char *p = s + 1; p < end; p++)
                lx->line += *p == '\n';
            sb_append(&lx->word, s + 1, (size_t)(end - s - 1));
            lx->in_word = lx->word_quoted = true;
            s = end + 1;
        } else if (c == '"') {
            int start = lx->line;
            s = lex_double_quoted(lx, s + 1);
            if (!s) {
                snprintf(err, errlen, "line %d: a double quote is not closed", start);
                return false;
            }
        } else if (c == '$' || c == '`') {
            lx->word_expanded = true;
            lexer_putc(lx, c);
            s++;
        } else if (c == '#' && !lx->in_word) {
            while (*s && *s != '\n')
                s++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            lexer_finish_word(lx);
            s++;
        } else if (c == '\n' || c == ';' || c == '&' || c == '|') {
            lexer_finish_command(lx);
            lx->line += c == '\n';
            s++;
        } else if (c == '>' || c == '<') {
            if (lx->in_word && !lx->word_quoted && word_all_digits(&lx->word)) { /* 2>&1: the fd number */
                sb_clear(&lx->word);
                lx->in_word = lx->word_expanded = false;
            } else {
                lexer_finish_word(lx);
            }
            s++;
            if (*s == '>' || *s == '<' || *s == '&' || *s == '|')
                s++;
            lx->discard_next = true; /* the file or fd it goes to */
        } else {
            lexer_putc(lx, c);
            s++;
        }
    }
    lexer_finish_command(lx);
    return true;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* VAR=value before a command. */
static bool is_assignment(const char *w)
{
    if (!(isalpha((unsigned char)w[0]) || w[0] == '_'))
        return false;
    for (const char *p = w; *p; p++) {
        if (*p == '=')
            return true;
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    }
    return false;
}

bool rs_command(const char *text, rs_words *args, char **program, char *err, size_t errlen)
{
    memset(args, 0, sizeof *args);
    *program = NULL;
    sh_lexer lx = {0};
    bool ok = lex_script(text, &lx, err, errlen);
    const sh_command *found = NULL;
    size_t first = 0;
    for (size_t i = 0; ok && i < lx.n && !found; i++) {
        const sh_command *c = &lx.v[i];
        size_t k = 0;
        while (k < c->words.n && (is_assignment(c->words.v[k]) || !strcmp(c->words.v[k], "exec")))
            k++;
        if (k < c->words.n && !strncmp(base_name(c->words.v[k]), "main", 4)) {
            found = c;
            first = k;
        }
    }
    if (ok && !found) {
        snprintf(err, errlen, "no command in it runs a main_* binary");
        ok = false;
    }
    for (size_t i = first; ok && i < found->words.n; i++)
        if (found->expanded[i]) {
            snprintf(err, errlen,
                     "line %d: the command uses a shell expansion in \"%s\", which axllama cannot expand (it reads "
                     "run scripts literally)",
                     found->line, found->words.v[i]);
            ok = false;
        }
    if (ok) {
        *program = xstrdup(found->words.v[first]);
        for (size_t i = first + 1; i < found->words.n; i++)
            words_push(args, found->words.v[i]);
        if (!args->v)
            args->v = xcalloc(1, sizeof *args->v);
    }
    lexer_free(&lx);
    return ok;
}

/* ------------------------------------------------------------------------------------ flags */

typedef enum { VF_STRING, VF_INT, VF_BOOL } vf_type;

/* main_api_*'s flags (spec/runtime-protocol.md §4.1). */
static const struct {
    const char *name;
    vf_type type;
    bool added_by_axllama;
} known_flags[] = {
    {"system_prompt", VF_STRING, false},
    {"template_filename_axmodel", VF_STRING, false},
    {"axmodel_num", VF_INT, false},
    {"url_tokenizer_model", VF_STRING, true},
    {"filename_post_axmodel", VF_STRING, false},
    {"filename_tokens_embed", VF_STRING, false},
    {"tokens_embed_num", VF_INT, false},
    {"tokens_embed_size", VF_INT, false},
    {"use_mmap_load_embed", VF_BOOL, false},
    {"devices", VF_STRING, true},
};

static bool words_contain(const rs_words *w, const char *s)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->v[i], s))
            return true;
    return false;
}

/* A whole number from 1 to max. */
static bool parse_count(const char *s, long max, long *out)
{
    if (!*s || strlen(s) > 9)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *out = strtol(s, NULL, 10);
    return *out >= 1 && *out <= max;
}

/* The pattern holds exactly one printf conversion, and it is %d. */
static bool template_pattern_ok(const char *s)
{
    const char *pct = strchr(s, '%');
    return pct && pct[1] == 'd' && !strchr(pct + 1, '%');
}

static bool flag_value_ok(const char *name, vf_type type, const char *value, char *err, size_t errlen)
{
    long n;
    if (type == VF_INT && !parse_count(value, !strcmp(name, "axmodel_num") ? RS_MAX_AXMODELS : INT_MAX, &n)) {
        snprintf(err, errlen, "--%s must be a whole number from 1 to %d, not \"%s\"", name,
                 !strcmp(name, "axmodel_num") ? RS_MAX_AXMODELS : INT_MAX, value);
        return false;
    }
    if (type == VF_BOOL && strcmp(value, "0") && strcmp(value, "1")) {
        snprintf(err, errlen, "--%s must be 0 or 1 (the runtime takes nothing else), not \"%s\"", name, value);
        return false;
    }
    if (!strcmp(name, "template_filename_axmodel") && !template_pattern_ok(value)) {
        snprintf(err, errlen,
                 "--template_filename_axmodel \"%s\" must hold %%d (the layer number) once, and no "
                 "other %%",
                 value);
        return false;
    }
    if (type == VF_STRING && !*value && strcmp(name, "system_prompt")) {
        snprintf(err, errlen, "--%s is empty", name);
        return false;
    }
    return true;
}

bool rs_flags_parse(const rs_words *args, rs_flags *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->args.v = xcalloc(1, sizeof *out->args.v);
    out->dropped.v = xcalloc(1, sizeof *out->dropped.v);
    rs_words seen = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < args->n; i++) {
        const char *w = args->v[i];
        if (strncmp(w, "--", 2) || !w[2]) {
            snprintf(err, errlen, "unexpected argument \"%s\" (the runtime takes --name value pairs)", w);
            ok = false;
            break;
        }
        const char *eq = strchr(w, '=');
        char *name = eq ? xstrndup(w + 2, (size_t)(eq - w - 2)) : xstrdup(w + 2);
        const char *value = eq ? eq + 1 : NULL;
        if (!value && i + 1 < args->n)
            value = args->v[++i];
        if (!value) {
            snprintf(err, errlen, "--%s has no value", name);
            ok = false;
        }
        size_t k = 0, n_known = sizeof known_flags / sizeof known_flags[0];
        while (ok && k < n_known && strcmp(known_flags[k].name, name))
            k++;
        strbuf flag = {0};
        sb_printf(&flag, "--%s", name);
        if (ok && (k == n_known || known_flags[k].added_by_axllama)) {
            if (!words_contain(&out->dropped, flag.data))
                words_push(&out->dropped, flag.data);
        } else if (ok && words_contain(&seen, name)) {
            snprintf(err, errlen, "--%s is given twice", name);
            ok = false;
        } else if (ok && flag_value_ok(name, known_flags[k].type, value, err, errlen)) {
            words_push(&seen, name);
            words_push(&out->args, flag.data);
            words_push(&out->args, value);
            if (!strcmp(name, "system_prompt"))
                out->system_prompt = xstrdup(value);
            else if (!strcmp(name, "template_filename_axmodel"))
                out->template_filename = xstrdup(value);
            else if (!strcmp(name, "filename_post_axmodel"))
                out->post_filename = xstrdup(value);
            else if (!strcmp(name, "filename_tokens_embed"))
                out->embed_filename = xstrdup(value);
            else if (!strcmp(name, "axmodel_num"))
                out->axmodel_num = atoi(value);
        } else {
            ok = false;
        }
        sb_free(&flag);
        free(name);
    }
    rs_words_free(&seen);
    static const char *const required[] = {"template_filename_axmodel", "axmodel_num", "filename_post_axmodel",
                                           "filename_tokens_embed"};
    const bool have[] = {out->template_filename, out->axmodel_num > 0, out->post_filename, out->embed_filename};
    for (size_t i = 0; ok && i < sizeof required / sizeof required[0]; i++)
        if (!have[i]) {
            snprintf(err, errlen, "the command has no --%s (the runtime needs it to find the model)", required[i]);
            ok = false;
        }
    if (!ok)
        rs_flags_free(out);
    return ok;
}

void rs_flags_free(rs_flags *f)
{
    rs_words_free(&f->args);
    rs_words_free(&f->dropped);
    free(f->system_prompt);
    free(f->template_filename);
    free(f->post_filename);
    free(f->embed_filename);
    memset(f, 0, sizeof *f);
}

/* The layer file of a pattern with one %d (checked by rs_flags_parse). */
char *rs_layer_file(const char *pattern, int layer)
{
    const char *pct = strstr(pattern, "%d");
    strbuf sb = {0};
    sb_append(&sb, pattern, (size_t)(pct - pattern));
    sb_printf(&sb, "%d%s", layer, pct + 2);
    return sb_steal(&sb);
}
