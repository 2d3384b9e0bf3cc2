/* process: the child-process plumbing under the supervisor (process.c): program lookup, the
 * environment, fork + exec with a synchronous exec-failure report, a pseudo-terminal, bounded
 * reaping, and capturing a command's output. Internal to src/supervisor/. */
#ifndef AXLLAMA_SUPERVISOR_PROCESS_H
#define AXLLAMA_SUPERVISOR_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PROCESS_KILL_WAIT_S 5.0            /* SIGKILL until reaped */
#define PROCESS_EXEC_REPORT_TIMEOUT_S 10.0 /* fork until exec */

/* Copies src into dst (size n > 0), cut at a UTF-8 character boundary if it does not fit. */
void process_copy_text(char *dst, size_t n, const char *src);
/* The same into err (when err is not NULL). */
void process_set_error(char *err, size_t errlen, const char *msg);
/* Frees a NULL-terminated list of strings and the list. */
void process_free_strings(char **list);

/* "status 3" or "killed by SIGABRT". */
void process_describe_status(int status, char *out, size_t n);
/* Waits up to timeout_s for pid to end; true with *status if it did. */
bool process_reap_within(pid_t pid, double timeout_s, int *status);
/* The program to exec: a name with a '/' is a path (a relative one is taken relative to the current
 * directory); a bare name is looked up in PATH. NULL with errno set if there is nothing to run. */
char *process_resolve(const char *name);
/* The inherited environment with the KEY=VALUE entries of extra added (replacing the same keys);
 * free with process_free_strings. */
char **process_environment(const char *const *extra);
/* Forks and execs path (argv[0] is shown in messages as `shown`) in workdir (NULL: the current
 * one), in its own process group with SIGKILL as its parent-death signal. stdin is /dev/null;
 * stdout and stderr go to out_fd and err_fd (-1: /dev/null). Returns the pid once exec succeeded,
 * or -1 with a message in err ("cannot run <shown>: <reason>"). */
pid_t process_spawn(const char *shown, const char *path, char *const argv[], char *const envp[], const char *workdir,
                    int out_fd, int err_fd, char *err, size_t errlen);
/* A pseudo-terminal for a child's stdout (raw mode, 200x50): the vendor's printf log is then
 * line-buffered. False if none is available. */
bool process_open_pty(int *master_fd, int *slave_fd);
/* Runs argv[0] (looked up in PATH) and returns its stdout (at most max_bytes bytes), or NULL if it
 * cannot run or does not finish within timeout_s (it is killed then). */
char *process_run_and_capture(char *const argv[], double timeout_s, size_t max_bytes);

#endif
