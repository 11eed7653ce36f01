/*
 * observe.h -- what `tally run` shows of itself while it runs: the HTTP endpoints
 * (/metrics, /healthz, /readyz, /v1/users/{user_id}; docs/operations.md) and the
 * statistics the processing thread publishes to the metrics once a second.
 */
#ifndef TL_OBSERVE_H
#define TL_OBSERVE_H

#include "lib/config.h"
#include "engine/runtime.h"
#include "engine/source.h"
#include "model/pipeline.h"
#include "sink/sinks.h"

typedef struct tl_observe tl_observe;

/* Starts the HTTP server on http.listen (none when it is empty). NULL with err when it
 * cannot listen. */
tl_observe *tl_observe_start(const tl_config *c, char *err, size_t errlen);

/* What the endpoints and the tick read (borrowed; out_topics: the interest, attribution,
 * credit, dead-letter and intent topics, copied, the last NULL when none; call before
 * tl_runtime_run, and tl_observe_detach before any of them is destroyed). */
void tl_observe_attach(tl_observe *o, tl_runtime *rt, tl_source *src, tl_sink *sink, tl_pipeline *p,
                       const char *topic, const char *const out_topics[6]);
void tl_observe_detach(tl_observe *o);

/* The runtime's tick (tl_runtime_opts.tick): publishes statistics. Processing thread. */
void tl_observe_tick(void *o);

/* Marks the instance as stopping (/readyz fails from then on). Any thread. */
void tl_observe_stopping(tl_observe *o);

void tl_observe_stop(tl_observe *o);        /* NULL is a no-op */

#endif
