/*
 * shutdown.h -- signals and the ordered shutdown of a running tally.
 */
#ifndef TL_APP_SHUTDOWN_H
#define TL_APP_SHUTDOWN_H

#include <signal.h>
#include <stdint.h>

extern volatile sig_atomic_t tl_stop;   /* incremented by SIGINT/SIGTERM */
void tl_app_signals(void);
/* After the first SIGINT/SIGTERM, exits with 1 if the process is still there ms later
 * (shutdown.timeout.ms). A second signal exits at once (130). */
void tl_app_shutdown_timeout(int64_t ms);
/* What the shutdown is doing now (a constant string), named by the watchdog's message if
 * shutdown.timeout.ms passes. */
void tl_app_shutdown_phase(const char *what);

#endif
