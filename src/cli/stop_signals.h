/* stop_signals: how the long-running commands (`axllama serve`, `axllama tokenizer serve`) learn
 * that they must stop. SIGINT and SIGTERM are blocked in the main thread before any other thread
 * starts (so every thread inherits the mask and none is interrupted), then the main thread takes
 * them with one synchronous wait. SIGPIPE is ignored (a client that leaves is an EPIPE). */
#ifndef AXLLAMA_CLI_STOP_SIGNALS_H
#define AXLLAMA_CLI_STOP_SIGNALS_H

#include <signal.h>

/* Blocks SIGINT and SIGTERM in the calling thread (and so in the threads it starts later), ignores
 * SIGPIPE, and writes the blocked set to *set for stop_signals_wait. */
void stop_signals_block(sigset_t *set);

/* Waits for SIGINT or SIGTERM (blocked by stop_signals_block) and returns it. Each wait is a
 * sigtimedwait of at most one second, so a stray wake-up or another signal never ends it early. */
int stop_signals_wait(const sigset_t *set);

#endif
