/*
 * fuzz_model_share.c -- another instance's model update, read from the model topic
 * (model/model.h, tl_model_share_apply; the FTRL delta inside it: model/ftrl.h; the
 * sequence model's after it: model/seq.h).
 *
 * Input: the record, applied under model.kind ftrl and then seq (a small sequence model,
 * dim 4 and 16 buckets, as the seeds' update).
 *
 * Asserted:
 *   - apply returns 0 or -1, and with -1 a message and a model unchanged (no example, no
 *     update counted, one bad record);
 *   - with 0, the model counts the record's examples and its FTRL version moved on; the
 *     offset read is remembered; and the model so changed checkpoints and resumes, with
 *     the same report.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "model/model.h"

static tl_model_cfg mcfg;
static char path[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    fuzz_model_cfg(&mcfg, path, sizeof(path));
    mcfg.seq_dim = 4; /* model.kind=seq: a small sequence model, as the seeds' update */
    mcfg.seq_buckets = 16;
    return 0;
}

static void one_kind(const uint8_t *rec, size_t size, int kind)
{
    char err[512] = "";
    mcfg.kind = kind;
    remove(path);
    tl_model *m = tl_model_new(&mcfg, path, err, sizeof(err));
    FUZZ_CHECK(m != NULL, "a new model: %s", err);
    tl_model_share_start(m);
    int rc = tl_model_share_apply(m, rec, size, 41, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    tl_model_report r;
    tl_model_report_get(m, &r);
    FUZZ_CHECK(tl_model_share_next(m) == 42, "the offset read: %lld",
               (long long)tl_model_share_next(m));
    if (rc != 0) {
        FUZZ_CHECK(err[0], "refused without a message");
        FUZZ_CHECK(r.examples == 0 && r.version == 0 && r.shared_records == 0 && r.shared_bad == 1,
                   "a refused update changed the model: %llu examples, version %llu",
                   (unsigned long long)r.examples, (unsigned long long)r.version);
    } else {
        uint32_t n;
        memcpy(&n, rec + 8, 4);   /* little-endian hosts only, as the encoder */
        FUZZ_CHECK(r.shared_records == 1 && r.shared_examples == n && r.examples == n,
                   "an update of %u examples counted %llu", n, (unsigned long long)r.examples);
        FUZZ_CHECK(tl_model_checkpoint(m) == 0, "cannot checkpoint");
        tl_model *m2 = tl_model_new(&mcfg, path, err, sizeof(err));
        FUZZ_CHECK(m2 != NULL, "a model changed by an update does not resume: %s", err);
        tl_model_report r2;
        tl_model_report_get(m2, &r2);
        FUZZ_CHECK(r2.examples == r.examples && r2.version == r.version &&
                       tl_model_share_next(m2) == 42,
                   "resumed: %llu examples, version %llu", (unsigned long long)r2.examples,
                   (unsigned long long)r2.version);
        tl_model_destroy(m2);
    }
    tl_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *rec = malloc(size ? size : 1);   /* exact size: ASan sees an over-read */
    memcpy(rec, data, size);
    one_kind(rec, size, TL_MODEL_FTRL);
    one_kind(rec, size, TL_MODEL_SEQ);
    free(rec);
    return 0;
}
