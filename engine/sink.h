/*
 * sink.h -- where the stages' output records go: Kafka (sink/kafka_sink.c), a JSON-lines
 * file (sink/jsonl_sink.c), Avro-encoding only (benchmarks), or memory (tests).
 *
 * A sink is a struct of callbacks filled with designated initialisers. The emit_*
 * callbacks are called from the processing thread, in processing order; they must
 * copy what they keep. flush() blocks until every record emitted so far is durable
 * at the destination (acknowledged by Kafka, written to the file) or timeout_ms
 * passes. Only after a record is durable may the runtime commit the state and input
 * offsets it reflects: that ordering is what makes delivery at-least-once.
 */
#ifndef TL_SINK_H
#define TL_SINK_H

#include "domain/records.h"

/* Stage results. The runtime, not the stage, owns retry and dead-lettering. */
typedef enum tl_rc {
    TL_OK = 0,
    TL_RETRY = 1,
    TL_ERROR = -1
} tl_rc;

typedef struct tl_sink {
    const char *name;
    void *ctx;
    tl_rc (*emit_interest)(void *ctx, const tl_interest_delta *d);
    tl_rc (*emit_attribution)(void *ctx, const tl_attribution *a);
    tl_rc (*emit_credit)(void *ctx, const tl_credit_delta *c);
    tl_rc (*emit_dlq)(void *ctx, const tl_dlq_record *r);
    /* Optional: a sink without it publishes no intent (model/intent.h). */
    tl_rc (*emit_intent)(void *ctx, const tl_intent_delta *d);
    /* Optional: a sink without it publishes no next categories (model/categories.h). */
    tl_rc (*emit_next_categories)(void *ctx, const tl_next_categories *r);
    tl_rc (*flush)(void *ctx, int timeout_ms);
    /* Optional, for sinks that acknowledge asynchronously (Kafka): serves
     * acknowledgements without blocking, and tells how many records were emitted so
     * far and how many of them, counted from the first, are acknowledged. TL_ERROR
     * once a record failed for good. With it, the runtime keeps processing while
     * outputs are in flight; without it, it calls flush() after every batch. */
    tl_rc (*progress)(void *ctx, uint64_t *emitted, uint64_t *acked);
    /* Optional, exactly-once (a transactional Kafka sink): begin() opens a transaction
     * before a batch; emit_state() sends a changelog record (the full state of key, value
     * NULL for none) for input partition `partition` in it; commit() adds the input
     * offsets (next[p], -1: none) and commits, and reports in changelog_next[p] the offset
     * after the last changelog record the transaction wrote to partition p (-1: none).
     * TL_ERROR from commit means the transaction was aborted or the producer fenced. */
    tl_rc (*begin)(void *ctx);
    tl_rc (*emit_state)(void *ctx, int32_t partition, const char *key, const void *value,
                        size_t len);
    tl_rc (*commit)(void *ctx, const int64_t *next, int n, int64_t *changelog_next);
    /* Optional, one Markov chain for every instance (the Kafka sink with rollup.topic):
     * emit_path() takes a journey closed at time `at` (its purchase, or its expiry), as the
     * chain's states over dimension dim (TL_DIM_CHANNEL or TL_DIM_CATEGORY), instead of the
     * instance's own chain, which the model then does not keep; stream_time() is told each
     * input partition's stream time before a batch's outputs are made durable (before
     * commit(), or before the batch's mark at at_least_once). */
    tl_rc (*emit_path)(void *ctx, int dim, int64_t at, const char *const *states, int n,
                       int converted);
    void (*stream_time)(void *ctx, int32_t partition, int64_t t);
    void (*destroy)(void *ctx);
} tl_sink;

#endif
