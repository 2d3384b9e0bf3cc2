/* commands: the sub-commands of the `axllama` binary, one function each (argv[0] is the
 * sub-command name). Each returns the process exit status. */
#ifndef AXLLAMA_CLI_COMMANDS_H
#define AXLLAMA_CLI_COMMANDS_H

#define AXLLAMA_VERSION "0.1.0"

int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv); /* `axllama tokenizer serve ...` */
int cmd_serve(int argc, char **argv);     /* `axllama serve [--models DIR]` */

#endif
