/*
 * avro_out.h -- Avro binary encoding of tally's output records, with the Confluent
 * frame (magic byte 0, 4-byte big-endian schema id). The field order is that of
 * schemas/2-interest_delta.avsc, 11-attribution.avsc and 7-credit_delta.avsc; the
 * tests decode what this writes with avro-c against those files.
 */
#ifndef TL_AVRO_OUT_H
#define TL_AVRO_OUT_H

#include "domain/records.h"
#include "lib/util.h"
#include "model/rollup.h"

/* Each appends one framed record to out. */
void tl_avro_put_interest(tl_buf *out, int32_t schema_id, const tl_interest_delta *d);
void tl_avro_put_attribution(tl_buf *out, int32_t schema_id, const tl_attribution *r);
void tl_avro_put_credit(tl_buf *out, int32_t schema_id, const tl_credit_delta *c);
void tl_avro_put_intent(tl_buf *out, int32_t schema_id, const tl_intent_delta *d);
void tl_avro_put_next_categories(tl_buf *out, int32_t schema_id, const tl_next_categories *r);
/* A roll-up row of dimension dim and window w (schemas/9-rollup.avsc); its key is
 * tl_avro_rollup_key's. */
void tl_avro_put_rollup(tl_buf *out, int32_t schema_id, tl_ru_dim dim, tl_ru_window w,
                        const tl_rollup_row *row);
/* The key of a roll-up row: dim|window|window_start|dim_id. */
void tl_avro_rollup_key(tl_buf *out, tl_ru_dim dim, tl_ru_window w, const tl_rollup_row *row);

/* A roll-up record read back (tally reads its own partials and totals): the frame's
 * schema id, the dimension, the window, and the row, whose id is a copy the caller
 * frees. 0, or -1 with a message in err (truncated, a length past the end, an unknown
 * dimension, window or method, a window start that is not the window's). */
typedef struct tl_rollup_rec {
    int32_t schema_id;
    tl_ru_dim dim;
    tl_ru_window window;
    tl_rollup_row row;
} tl_rollup_rec;
int tl_avro_get_rollup(const void *data, size_t len, tl_rollup_rec *out, char *err, size_t errlen);

/* The most bytes one framed record can take when every string of an event is at most
 * max_string bytes and a journey at most max_touchpoints touchpoints (ingest.max.string.bytes,
 * attribution.max.touchpoints): the bounds checked against the topics' limits at start
 * (app/bounds.c). */
size_t tl_avro_interest_bound(size_t max_string);
size_t tl_avro_attribution_bound(size_t max_string, size_t max_touchpoints);
size_t tl_avro_credit_bound(size_t max_string);
size_t tl_avro_intent_bound(size_t max_string);
size_t tl_avro_next_categories_bound(size_t max_string);
size_t tl_avro_rollup_bound(size_t max_string);

#endif
