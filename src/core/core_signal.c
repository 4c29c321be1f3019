/*
 * Process signals. The lifecycle signals are blocked in every thread and
 * taken synchronously by the main thread with sigtimedwait, so no handler
 * ever runs inside library code. SIGPIPE and SIGXFSZ are ignored so that a
 * closed socket or a file-size limit come back as errors where they happen.
 */
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <time.h>

#include "outpost/core.h"

static sigset_t lifecycle_set(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    return set;
}

void op_signals_block(void)
{
    sigset_t set = lifecycle_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
}

int op_signals_wait(int timeout_ms)
{
    sigset_t set = lifecycle_set();
    struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
    int sig = sigtimedwait(&set, NULL, &ts);
    return sig < 0 ? 0 : sig;
}
