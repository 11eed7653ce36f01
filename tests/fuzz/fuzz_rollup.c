/*
 * fuzz_rollup.c -- roll-up records read back from Kafka (sink/avro_out.h,
 * tl_avro_get_rollup): the partials the aggregator adds up and the totals a new owner of a
 * partition reads back from the compacted roll-up topic (sink/rollup_agg.c).
 *
 * Input: the record's value (Confluent frame and Avro body).
 *
 * Asserted:
 *   - tl_avro_get_rollup returns 0 or -1, and with -1 a message;
 *   - a record that decodes re-encodes (tl_avro_put_rollup) to bytes that decode to the
 *     same row, whose own re-encoding is the same bytes;
 *   - the row merges into a roll-up of its dimension and window (tl_rollup_merge), and set
 *     over it (tl_rollup_set) leaves the row's sums as read.
 */
#include "fuzz_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "model/rollup.h"
#include "sink/avro_out.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

static int same_row(const tl_rollup_row *a, const tl_rollup_row *b)
{
    if (strcmp(a->id, b->id) || a->window_start != b->window_start ||
        a->purchases != b->purchases || a->touchpoints != b->touchpoints)
        return 0;
    for (int m = 0; m < TL_RU_METHODS; m++)
        if (a->has[m] != b->has[m] ||
            (a->has[m] &&
             (memcmp(&a->conversions[m], &b->conversions[m], 8) ||
              memcmp(&a->value[m], &b->value[m], 8))))
            return 0;
    return !a->has[TL_M_SHAPLEY] || !memcmp(&a->shapley_var, &b->shapley_var, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *rec = malloc(size ? size : 1);   /* exact size: ASan sees an over-read */
    memcpy(rec, data, size);
    char err[256] = "";
    tl_rollup_rec r;
    int rc = tl_avro_get_rollup(rec, size, &r, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_CHECK(rc == 0 || err[0], "refused without a message");
    if (rc == 0) {
        tl_buf e1 = {0}, e2 = {0};
        tl_avro_put_rollup(&e1, r.schema_id, r.dim, r.window, &r.row);
        tl_rollup_rec r2;
        FUZZ_CHECK(tl_avro_get_rollup(e1.data, e1.len, &r2, err, sizeof(err)) == 0,
                   "a decoded record, re-encoded (%zu bytes), does not decode: %s", e1.len, err);
        FUZZ_CHECK(r2.dim == r.dim && r2.window == r.window && same_row(&r.row, &r2.row),
                   "the re-encoded record reads back differently");
        tl_avro_put_rollup(&e2, r2.schema_id, r2.dim, r2.window, &r2.row);
        FUZZ_CHECK(e1.len == e2.len && !memcmp(e1.data, e2.data, e1.len),
                   "two encodings of one record differ");
        tl_rollup *ru = tl_rollup_new(r.dim, r.window, "", err, sizeof(err));
        FUZZ_CHECK(ru != NULL, "%s", err);
        tl_rollup_merge(ru, &r.row);
        tl_rollup_merge(ru, &r2.row);
        tl_rollup_set(ru, &r.row);
        size_t n = 0;
        const tl_rollup_row *rows = tl_rollup_rows(ru, &n);
        FUZZ_CHECK(n == 1 && same_row(&rows[0], &r.row), "set did not leave the row as read");
        tl_rollup_destroy(ru);
        free(r2.row.id);
        free(r.row.id);
        tl_buf_free(&e1);
        tl_buf_free(&e2);
    }
    free(rec);
    return 0;
}
