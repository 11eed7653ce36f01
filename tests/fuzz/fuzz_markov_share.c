/*
 * fuzz_markov_share.c -- the shared Markov chain's records read back from Kafka
 * (model/markov_share.h): a sender's partial (tl_mk_share_add) on the partials topic, and
 * the owner's state (tl_mk_share_restore) on the state topic.
 *
 * Input: one selector byte (bit 0: a state, else a partial; bits 1-2: input partitions
 * 1 to 4), then the record.
 *
 * Asserted:
 *   - add and restore return 0 or -1, and with -1 a message;
 *   - what was taken closes without failing (every credit delta finite, method markov),
 *     and its state, written and read back, writes the same bytes again.
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "model/markov_share.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

static int check_delta(void *arg, const tl_credit_delta *d)
{
    (void)arg;
    FUZZ_CHECK(isfinite(d->credit) && isfinite(d->credit_before) && d->dim_id &&
                   !strcmp(d->method, "markov"),
               "a credit delta that is not finite or not Markov's");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    uint8_t *rec = malloc(size - 1 ? size - 1 : 1);   /* exact size: ASan sees an over-read */
    memcpy(rec, data + 1, size - 1);
    tl_mk_share_cfg cfg = {
        .order = 1 + (sel >> 3) % 2, .window_ms = 3600000, .n_inputs = 1 + ((sel >> 1) & 3)};
    tl_mk_share *s = tl_mk_share_new(&cfg);
    char err[256] = "";
    int rc = sel & 1 ? tl_mk_share_restore(s, rec, size - 1, err, sizeof(err))
                     : tl_mk_share_add(s, rec, size - 1, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_CHECK(rc == 0 || err[0], "refused without a message");
    if (rc == 0) {
        FUZZ_CHECK(tl_mk_share_close(s, check_delta, NULL) == 0, "close failed");
        tl_buf a = {0}, b = {0};
        tl_mk_share_state(s, &a);
        tl_mk_share *t = tl_mk_share_new(&cfg);
        FUZZ_CHECK(tl_mk_share_restore(t, a.data, a.len, err, sizeof(err)) == 0,
                   "a state written does not read back: %s", err);
        tl_mk_share_state(t, &b);
        FUZZ_CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len),
                   "a state read back writes different bytes");
        tl_mk_share_destroy(t);
        tl_buf_free(&a);
        tl_buf_free(&b);
    }
    tl_mk_share_destroy(s);
    free(rec);
    return 0;
}
