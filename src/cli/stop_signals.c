/* stop_signals: SIGINT / SIGTERM blocked in every thread and taken by one wait. See stop_signals.h. */
#include "cli/stop_signals.h"

#include <pthread.h>
#include <time.h>

void stop_signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int stop_signals_wait(const sigset_t *set)
{
    for (;;) {
        struct timespec slice = {.tv_sec = 1};
        int sig = sigtimedwait(set, NULL, &slice);
        if (sig == SIGINT || sig == SIGTERM)
            return sig;
    }
}
