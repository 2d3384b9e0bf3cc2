/* main: the `axllama` binary: dispatches to its sub-commands (like `ollama`). */
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
    {"import", cmd_import,
     "import DIR [NAME] [--system]      make a model of an AXERA model package (the manifest)"},
    {"run", cmd_run,
     "run MODEL [PROMPT] [--verbose]    chat with a model of the running server (interactive on a terminal)"},
    {"list", cmd_list, "list                              list the models (alias: ls)"},
    {"ls", cmd_list, NULL},
    {"ps", cmd_ps, "ps                                list the loaded model"},
    {"show", cmd_show, "show MODEL                        show a model's details"},
    {"stop", cmd_stop, "stop MODEL                        unload a running model"},
};

static void main_usage(FILE *f)
{
    fprintf(f, "Usage: axllama COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].help)
            fprintf(f, "  %s\n", commands[i].help);
    fprintf(f, "  --version                         print the version\n");
    fprintf(f, "\nThe client commands (run, list, ps, show, stop) talk to `axllama serve` at OLLAMA_HOST.\n"
               "`axllama COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    http_client_global_init(); /* libcurl, once, before any thread starts */
    if (argc < 2) {
        main_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        main_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v") || !strcmp(argv[1], "version")) {
        printf("axllama version %s\n", AXLLAMA_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "axllama: unknown command '%s'\n", argv[1]);
    main_usage(stderr);
    return 2;
}
