/*
 * markov_share.h -- one Markov chain for every instance, its windows closed on a
 * watermark (docs/attribution.md, "One chain across instances").
 *
 * Senders (each instance's pipeline, through the Kafka sink) gather the journeys closed
 * in a transaction per window of their close time, and their input partitions' stream
 * times, and send them as one record (tl_mk_out_take) with the key "markov" to the roll-up
 * partials topic: one partition, so one aggregator owns the chain (sink/rollup_agg.c).
 * The owner (tl_mk_share) keeps the chain of the windows closed so far, the windows still
 * open, and the latest stream time of every input partition. The watermark is the least of
 * them, known once every input partition has reported one. A window closes when the
 * watermark reaches its end: its journeys join the chain, the removal effects are solved,
 * and each channel whose credit moved gets a credit delta.
 *
 * Why the answer does not depend on the instances: a journey belongs to the window of its
 * close time (its purchase, or its expiry), and a partition's stream time reaches that time
 * only in the transaction that closes the journey or later, so when the watermark passes a
 * window's end every journey of that window has arrived, whichever instance owned which
 * partition. Counts add up exactly; the solve follows the chain's state order, so removal
 * effects agree to rounding (about 1e-15). A journey of a window already closed (an input
 * partition whose events are out of time order) joins the next window to close, counted
 * as late.
 *
 * The owner's state is one record (tl_mk_share_state), written to a compacted state topic
 * in the owner's transaction and read back by the next owner (tl_mk_share_restore).
 */
#ifndef TL_MARKOV_SHARE_H
#define TL_MARKOV_SHARE_H

#include <stdint.h>

#include "domain/records.h"
#include "lib/util.h"

#define TL_MK_KEY "markov"

/* ---- senders ------------------------------------------------------------------------ */

typedef struct tl_mk_out tl_mk_out;

tl_mk_out *tl_mk_out_new(int order, int64_t window_ms);
void tl_mk_out_destroy(tl_mk_out *o);
/* A journey closed at `at`: 0, or a tl_markov error (the journey is left out). */
int tl_mk_out_path(tl_mk_out *o, int dim, int64_t at, const char *const *states, int n,
                   int converted);
/* Input partition p's stream time (the latest is sent). */
void tl_mk_out_time(tl_mk_out *o, int32_t p, int64_t t);
/* Encodes what was gathered since the last take into out (appended) and forgets it: 1,
 * or 0 when there is nothing new to send (no journey, no stream time that moved). */
int tl_mk_out_take(tl_mk_out *o, tl_buf *out);
/* Forgets what was gathered, and that stream times were sent (an aborted transaction:
 * they are sent again). */
void tl_mk_out_clear(tl_mk_out *o);

/* ---- the owner ---------------------------------------------------------------------- */

typedef struct tl_mk_share_cfg {
    int order;              /* markov.order */
    int64_t window_ms;      /* markov.window.ms */
    int n_inputs;           /* input partitions: all must have reported a stream time */
    int bootstrap;          /* markov.bootstrap.samples (0: no interval) */
    double level;           /* markov.bootstrap.level */
} tl_mk_share_cfg;

typedef struct tl_mk_share tl_mk_share;

tl_mk_share *tl_mk_share_new(const tl_mk_share_cfg *cfg);
void tl_mk_share_destroy(tl_mk_share *s);
/* A sender's record. 0, or -1 with a message (it does not decode, or its chains are of
 * another order or dimension); nothing of a refused record is kept. */
int tl_mk_share_add(tl_mk_share *s, const void *data, size_t len, char *err, size_t errlen);
/* Closes every window the watermark has passed, calling emit for each credit delta (its
 * strings valid during the call). 0, or emit's first non-zero return. */
int tl_mk_share_close(tl_mk_share *s, int (*emit)(void *arg, const tl_credit_delta *d), void *arg);
/* Whether the state changed since the last tl_mk_share_state. */
int tl_mk_share_dirty(const tl_mk_share *s);
/* The state as one record, appended to out; clears the dirty mark. */
void tl_mk_share_state(tl_mk_share *s, tl_buf *out);
/* Replaces the state with one read back. 0, or -1 with a message (the state is then
 * empty: a fresh chain). */
int tl_mk_share_restore(tl_mk_share *s, const void *data, size_t len, char *err, size_t errlen);
/* Journeys that arrived for a window already closed, and windows closed. */
uint64_t tl_mk_share_late(const tl_mk_share *s);
uint64_t tl_mk_share_windows(const tl_mk_share *s);
/* Journeys the chain refused (more states than it takes). */
uint64_t tl_mk_share_dropped(const tl_mk_share *s);

#endif
