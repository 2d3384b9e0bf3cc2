/* main: the `axllama` binary: dispatches to its sub-commands (like `ollama`), `axllama help
 * COMMAND` to a command's own help, and answers ollama's model-management commands (pull, push,
 * rm, cp, create) with what to do instead: axllama's models are vendor packages with a manifest. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "net/http_client.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"tokenize", cmd_tokenize, "tokenize --tokenizer DIR [--decode]   JSON Lines text <-> ids on stdin/stdout"},
    {"tokenizer", cmd_tokenizer,
     "tokenizer serve --tokenizer DIR [--host H] [--port P]   the runtime's tokenizer service"},
    {"serve", cmd_serve,
     "serve [--models DIR]              the Ollama-compatible server (OLLAMA_HOST, default 127.0.0.1:11434)"},
    {"import", cmd_import, "import DIR [NAME] [--system]      make a model of an AXERA model package (the manifest)"},
    {"run", cmd_run,
     "run MODEL [PROMPT] [--verbose]    chat with a model of the running server (interactive on a terminal)"},
    {"list", cmd_list, "list                              list the models (alias: ls)"},
    {"ls", cmd_list, NULL},
    {"ps", cmd_ps, "ps                                list the loaded model"},
    {"show", cmd_show, "show MODEL                        show a model's details"},
    {"stop", cmd_stop, "stop MODEL                        unload a running model"},
};

/* ollama's commands that have no counterpart here, and what to do instead. */
static const struct {
    const char *name, *instead;
} instead_of[] = {
    {"pull", "axllama does not download models: a model is the vendor's model package plus a manifest that "
             "describes it (see docs/models.md). `axllama list` shows the installed models."},
    {"push", "axllama has no registry to push to: it serves the vendor's model packages installed on this "
             "machine."},
    {"rm", "axllama does not delete models: remove the model's manifest from the models directory (or "
           "uninstall its vendor package), then restart `axllama serve` (see docs/models.md)."},
    {"cp", "axllama does not copy models: a model is its manifest file; copy the manifest and give the copy "
           "another \"name\" (see docs/models.md)."},
    {"create", "axllama does not create models from a Modelfile: it runs models compiled for the NPU, each "
               "described by a manifest (see docs/models.md); a system prompt and sampling defaults go into "
               "the manifest."},
};

static void main_usage(FILE *f)
{
    fprintf(f, "Usage: axllama COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].help)
            fprintf(f, "  %s\n", commands[i].help);
    fprintf(f, "  --version                         print the version\n");
    fprintf(f, "\nollama's pull, push, rm, cp and create have no counterpart: models are the vendor's packages,\n"
               "each described by a manifest (`axllama help pull` says more).\n");
    fprintf(f, "\nThe client commands (run, list, ps, show, stop) talk to `axllama serve` at OLLAMA_HOST.\n"
               "`axllama help COMMAND` (or `axllama COMMAND --help`) describes a command.\n");
}

/* Runs the command called name with args (argv[0] = name); -1 when there is none. */
static int main_dispatch(const char *name, int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc, argv);
    for (size_t i = 0; i < sizeof instead_of / sizeof instead_of[0]; i++) {
        if (!strcmp(name, instead_of[i].name)) {
            fprintf(stderr, "Error: %s\n", instead_of[i].instead);
            return 1;
        }
    }
    return -1;
}

/* `axllama help [COMMAND]`: the command's own help (`COMMAND --help`), else the usage. */
static int main_help(int argc, char **argv)
{
    if (argc < 3) {
        main_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof instead_of / sizeof instead_of[0]; i++) {
        if (!strcmp(argv[2], instead_of[i].name)) {
            printf("%s\n", instead_of[i].instead);
            return 0;
        }
    }
    char *help_argv[] = {argv[2], "--help", NULL};
    int status = main_dispatch(argv[2], 2, help_argv);
    if (status >= 0)
        return status;
    fprintf(stderr, "axllama: unknown command '%s'\n", argv[2]);
    main_usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    http_client_global_init(); /* libcurl, once, before any thread starts */
    if (argc < 2) {
        main_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return main_help(argc, argv);
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v") || !strcmp(argv[1], "version")) {
        printf("axllama version %s\n", AXLLAMA_VERSION);
        return 0;
    }
    int status = main_dispatch(argv[1], argc - 1, argv + 1);
    if (status >= 0)
        return status;
    fprintf(stderr, "axllama: unknown command '%s'\n", argv[1]);
    main_usage(stderr);
    return 2;
}
