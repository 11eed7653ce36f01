/*
 * records.h -- tally's output records (schemas/2-interest_delta.avsc, 11-attribution.avsc,
 * 7-credit_delta.avsc, 12-intent_delta.avsc, 13-next_categories.avsc) and the dead-letter record.
 *
 * Records are produced by the stages and handed to a sink (sink.h). All pointers are
 * borrowed: they stay valid only for the duration of the sink call; a sink that keeps
 * a record must copy (encode) it.
 */
#ifndef TL_RECORDS_H
#define TL_RECORDS_H

#include <stdint.h>
#include "event.h"
#include "nextcat.h"

typedef enum tl_dim {
    TL_DIM_CATEGORY = 0,
    TL_DIM_ITEM,
    TL_DIM_CHANNEL,
    TL_DIM_COUNT
} tl_dim;
const char *tl_dim_name(tl_dim d);     /* "category", "item", "channel" */
int tl_dim_parse(const char *s);       /* -1 if unknown */

typedef struct tl_interest_delta {
    const char *user_id;
    tl_dim dim;
    const char *dim_id;
    const char *event_id;
    int64_t ts;               /* as_of */
    double f, h;
    double weight_before, weight_after, decay_part, evidence_part;
    int32_t rank;
    const char *explanation;
} tl_interest_delta;

typedef struct tl_touchpoint {
    const char *event_id;
    const char *item_id;
    const char *category_id;  /* may be NULL */
    const char *channel;      /* may be NULL */
    const char *campaign;     /* may be NULL */
    tl_event_type type;
    int64_t ts;
} tl_touchpoint;

/* The attribution methods, in the order they appear in the credits map. */
typedef enum tl_method {
    TL_M_LAST_TOUCH = 0,
    TL_M_FIRST_TOUCH,
    TL_M_LINEAR,
    TL_M_TIME_DECAY,
    TL_M_POSITION_BASED,
    TL_M_SHAPLEY,
    TL_M_REMOVAL,
    TL_M_COUNT
} tl_method;
const char *tl_method_name(tl_method m);

/* An attribution's explanation is cut to this many bytes (at a UTF-8 boundary), so that the
 * record's size has a bound (sink/avro_out.h); it is about 3 KB at most with the default
 * string bounds, so the cut only matters with long strings. */
#define TL_EXPLANATION_MAX 4096

typedef struct tl_attribution {
    const char *conversion_event_id;
    const char *user_id;
    const char *item_id;
    const char *category_id;  /* may be NULL */
    int64_t ts;
    double value;             /* valid when has_value */
    int has_value;
    const tl_touchpoint *touchpoints;
    int n_touchpoints;
    /* credits[m] has n_touchpoints entries when has_method[m], else is unused */
    const double *credits[TL_M_COUNT];
    unsigned char has_method[TL_M_COUNT];
    double p_conversion, p_baseline;   /* valid when has_model */
    int64_t model_version;
    int has_model;
    /* With has_model, per model method (shapley, removal): "ok", or why its credits are
     * linear ("fallback_linear", "warming_up", "no_negatives"); NULL for the others. */
    const char *model_status[TL_M_COUNT];
    /* With sampled Shapley credits (status ok): each share's standard error from the
     * sampling (n_touchpoints entries); NULL when exact or not the model's. */
    const double *shapley_stderr;
    const char *explanation;
} tl_attribution;

typedef struct tl_credit_delta {
    int64_t window_start, window_end;
    tl_dim dim;
    const char *dim_id;
    const char *method;
    double credit, credit_before, conversions;
    double removal_effect;    /* valid when has_removal_effect */
    int has_removal_effect;
    double credit_lo, credit_hi, interval_level;   /* valid when has_interval */
    int has_interval;
} tl_credit_delta;

/* A user's purchase intent moved (model/intent.h): p, the model's probability of a purchase
 * within window_ms after ts, now; previous, the last one published for the user (0 for
 * the first). */
typedef struct tl_intent_delta {
    const char *user_id;
    const char *event_id;     /* the event that moved it; NULL when time did (the journey
                               * aged out) */
    int64_t ts;
    int64_t window_ms;
    double p, previous;
    int64_t model_version;
    const char *explanation;
} tl_intent_delta;

/* A user's next-category view moved (model/categories.h): the categories its next event is
 * most likely in, the user's embedding and the categories like the user's (view), how far
 * it moved from the last one published (0..1), and a sentence. */
typedef struct tl_next_categories {
    const char *user_id;
    const char *event_id;     /* the event that moved it */
    int64_t ts;
    const tl_nc_view *view;
    double moved;
    const char *explanation;
} tl_next_categories;

/* Why a record went to the dead-letter topic; each reason is counted separately. */
typedef enum tl_dlq_reason {
    TL_DLQ_NOT_FRAMED = 0,    /* no Confluent magic byte / too short */
    TL_DLQ_UNKNOWN_SCHEMA,    /* schema id not found in the registry or directory */
    TL_DLQ_INCOMPATIBLE_SCHEMA,/* writer schema cannot be resolved to the reader schema */
    TL_DLQ_MALFORMED,         /* Avro body does not decode */
    TL_DLQ_MISSING_FIELD,     /* a required field is absent or empty */
    TL_DLQ_BAD_TIMESTAMP,     /* ts outside the configured bounds */
    TL_DLQ_OVERSIZED,         /* record larger than ingest.max.record.bytes */
    TL_DLQ_BAD_VALUE,         /* other invalid value (negative dwell, NaN value, ...) */
    TL_DLQ_BAD_STRING,        /* a string longer than ingest.max.string.bytes, not UTF-8,
                               * or holding a NUL byte */
    TL_DLQ_KEY_MISMATCH,      /* the record's key is not its user_id (ingest.key.mismatch) */
    TL_DLQ_REASON_COUNT
} tl_dlq_reason;
const char *tl_dlq_reason_name(tl_dlq_reason r);   /* "not_framed", ... */

typedef struct tl_dlq_record {
    tl_dlq_reason reason;
    const char *error;        /* one sentence, for the header "tally.error" */
    const char *topic;        /* source */
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t payload_len;   /* the original bytes, or their start */
    size_t key_total, payload_total;           /* the original sizes: more than key_len or
                                                * payload_len when the source cut them
                                                * (header "tally.truncated") */
} tl_dlq_record;

/* The most of an input record's key a dead letter keeps. */
#define TL_DLQ_MAX_KEY_BYTES 4096

#endif
