/*
 * shutdown.c -- how a running tally stops: SIGINT and SIGTERM only increment tl_stop (a
 * second signal exits at once, 130), the loops see it and do the ordered shutdown, and a
 * watchdog exits the process when shutdown.timeout.ms passes first, naming the phase it
 * was in.
 */
#include "shutdown.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t tl_stop = 0;
static int stop_pipe[2] = {-1, -1};   /* the handler tells the shutdown watchdog */

static void on_signal(int sig)
{
    (void)sig;
    if (tl_stop++ >= 1) {
        static const char m[] = "tally: second signal: exiting now\n";
        ssize_t w = write(2, m, sizeof(m) - 1);
        (void)w;
        _exit(130);
    }
    if (stop_pipe[1] >= 0) {
        char c = 1;
        ssize_t w = write(stop_pipe[1], &c, 1);
        (void)w;
    }
}

void tl_app_signals(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* SIGHUP reopens log.file when there is one; otherwise it must not end the process
     * (a service manager's reload). */
    if (sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGHUP, SIG_IGN);
}

static const char *_Atomic shutdown_phase = "starting";

void tl_app_shutdown_phase(const char *what)
{
    atomic_store_explicit(&shutdown_phase, what, memory_order_release);
}

static void *shutdown_watchdog(void *arg)
{
    int64_t ms = *(int64_t *)arg;
    free(arg);
    char c;
    while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {}
    tl_sleep_ms(ms);
    TL_LOG_ERROR("run",
                 "shutdown.timeout.ms=%" PRId64 " passed before the shutdown finished (it "
                 "was %s); exiting now (the next start resumes from the last commit)",
                 ms, atomic_load_explicit(&shutdown_phase, memory_order_acquire));
    _exit(1);
    return NULL;
}

void tl_app_shutdown_timeout(int64_t ms)
{
    if (stop_pipe[0] >= 0 || pipe(stop_pipe) != 0) return;
    int64_t *arg = tl_xmalloc(sizeof(*arg));
    *arg = ms;
    pthread_t th;
    if (pthread_create(&th, NULL, shutdown_watchdog, arg) != 0) {
        free(arg);
        return;
    }
    pthread_detach(th);
}
