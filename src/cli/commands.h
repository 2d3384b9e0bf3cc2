/* commands: the sub-commands of the `axllama` binary, one function each (argv[0] is the
 * sub-command name). Each returns the process exit status. */
#ifndef AXLLAMA_CLI_COMMANDS_H
#define AXLLAMA_CLI_COMMANDS_H

#define AXLLAMA_VERSION "0.1.0"

int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv); /* `axllama tokenizer serve ...` */
int cmd_serve(int argc, char **argv);     /* `axllama serve [--models DIR]` */
int cmd_import(int argc, char **argv);    /* `axllama import DIR [NAME]`: a vendor package -> a manifest */

/* Clients of a running server (OLLAMA_HOST), like the ollama CLI: */
int cmd_run(int argc, char **argv);  /* `axllama run MODEL [PROMPT]` (cmd_run.c) */
int cmd_list(int argc, char **argv); /* `axllama list` (cmd_models.c, also list/ps/show/stop) */
int cmd_ps(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_stop(int argc, char **argv);

/* `axllama show MODEL` output (field NULL), or one /api/show field as is ("modelfile",
 * "parameters", "template", "system", "license"). Returns the exit status. */
int show_model_info(const char *model, const char *field);

#endif
