/*
 * fuzz_model_checkpoint.c -- the model checkpoint (model/model.h: state.dir/model.bin,
 * read by tl_model_new when a pipeline starts): the FTRL weights (tl_ftrl_decode), the
 * progressive metrics (tl_metrics_decode), the Markov chain's sums (tl_markov_decode)
 * and the Markov window, each a length-prefixed blob after the "TLMODEL1" magic.
 *
 * Input: the checkpoint file.
 *
 * Asserted:
 *   - tl_model_new either resumes from the file or refuses it with a message (a
 *     corrupt checkpoint), with markov.order 1 or 2 (by the input's size), under
 *     model.kind seq and then ftrl (the sequence model's state, tl_seq_decode, is the
 *     last blob; ftrl checks its frame and leaves it), with the category embeddings on
 *     (tl_cat_model_decode: the "TLNC" part);
 *   - a resumed model works: it credits a journey (Shapley and removal over the restored
 *     weights), learns from it, reports, lists its Markov credits and closes its Markov
 *     window (tl_model_tick: removal effects over the restored chain, credit deltas to a
 *     sink), and its category embeddings score a user, learn from an event and list the
 *     categories like the user's, without a sanitizer report;
 *   - its checkpoint (tl_model_checkpoint) resumes, and the checkpoint of that is the same
 *     bytes (one encoding per model state).
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "engine/state.h"
#include "lib/util.h"
#include "model/model.h"
#include "sink/sinks.h"

static tl_model_cfg mcfg;
static char path[1024];
static tl_sink *sink;

/* At exit, so LeakSanitizer's check at exit sees only what the inputs leaked. */
static void cleanup(void) { tl_sink_destroy(sink); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    fuzz_model_cfg(&mcfg, path, sizeof(path));
    mcfg.seq_dim = 4; /* model.kind=seq: a small sequence model, so that its state is too */
    mcfg.seq_buckets = 16;
    mcfg.cats = (tl_categories_cfg){.enabled = 1,
                                    .dim = 16,
                                    .max = 1000,
                                    .top = 5,
                                    .candidates = 16,
                                    .threshold = 0.1,
                                    .rate = 0.05};
    sink = tl_avro_sink_new(2, 3, 4, 12, 13);
    atexit(cleanup);
    return 0;
}

/* A journey of n touchpoints ending at ts, in u. */
static void journey(tl_user *u, int n, int64_t ts)
{
    static const char *const cats[] = {"c1", "c2", NULL};
    static const char *const chans[] = {"search", NULL, "email", "social"};
    for (int i = 0; i < n; i++) {
        char eid[32], item[32];
        snprintf(eid, sizeof(eid), "e%d", i);
        snprintf(item, sizeof(item), "i%d", i % 4);
        tl_event ev = {.event_id = eid,
                       .user_id = "u",
                       .item_id = item,
                       .category_id = cats[i % 3],
                       .channel = chans[i % 4],
                       .type = (tl_event_type)(i % 5),
                       .ts = ts - (n - i) * 60000,
                       .dwell_ms = 800 * i,
                       .has_dwell = i % 2};
        tl_user_add_tp(u, &ev, i % 2 ? 0.25f : -1.0f);
    }
}

static void use(tl_model *m)
{
    const int64_t ts = 1700000000000;
    tl_user u;
    memset(&u, 0, sizeof(u));
    u.user_id = "u";
    journey(&u, 5, ts);
    tl_touchpoint tps[5];
    for (int i = 0; i < u.n_tp; i++)
        tps[i] = (tl_touchpoint){.event_id = u.tp[i].event_id,
                                 .item_id = u.tp[i].item_id,
                                 .category_id = u.tp[i].category_id,
                                 .channel = u.tp[i].channel,
                                 .type = (tl_event_type)u.tp[i].type,
                                 .ts = u.tp[i].ts};
    tl_attribution r = {.conversion_event_id = "p",
                        .user_id = "u",
                        .item_id = "i0",
                        .ts = ts,
                        .touchpoints = tps,
                        .n_touchpoints = u.n_tp};
    const char *explanation = "";
    tl_model_credit(m, NULL, u.tp, u.n_tp, &r, fuzz_arena(), &explanation);
    tl_model_learn(m, NULL, u.tp, u.n_tp, 1, ts);
    tl_model_learn(m, NULL, u.tp, 2, 0, ts + 1);
    tl_model_path(m, u.tp, u.n_tp, 1, ts, NULL);
    tl_model_path(m, u.tp, 2, 0, ts + 1, NULL);
    tl_model_report rep;
    tl_model_report_get(m, &rep);
    tl_dim dim;
    const char *names[64];
    double credits[64];
    int n = tl_model_credits(m, &dim, names, credits, 64);
    FUZZ_CHECK(n >= 0 && n <= 64 && (dim == TL_DIM_CHANNEL || dim == TL_DIM_CATEGORY),
               "tl_model_credits: %d, dim %d", n, (int)dim);
    tl_model_tick(m, ts, fuzz_arena(), sink);
    tl_model_tick(m, ts + 48LL * 3600 * 1000, fuzz_arena(), sink);
    tl_cat_model *cm = tl_model_categories(m);
    FUZZ_CHECK(cm != NULL, "no category embeddings with categories.enabled");
    static const char *const own[] = {"c1", "c2", "c3"};
    for (int i = 0; i < 3; i++) {
        tl_interest *e = tl_user_add_interest(&u, TL_DIM_CATEGORY, own[i]);
        e->f = e->h = 1 + i;
        e->t = ts - i * 60000;
    }
    tl_features_cfg fc = {.half_life_ms = 86400000, .alpha = 0.5, .beta = 0.5};
    tl_cat_pred pr;
    tl_cat_predict(cm, &fc, &u, ts, &pr);
    double sum = pr.p_other;
    for (int i = 0; i < pr.n; i++) sum += pr.p[i];
    FUZZ_CHECK(fabs(sum - 1) < 1e-9 || pr.n == 0, "next categories sum to %g", sum);
    tl_nc_entry like[TL_NC_LIKE_MAX];
    tl_cat_like(cm, &u, pr.u, NULL, like, TL_NC_LIKE_MAX);
    tl_event ev = {.event_id = "n",
                   .user_id = "u",
                   .item_id = "i",
                   .category_id = "c2",
                   .type = TL_BROWSE,
                   .ts = ts};
    tl_cat_learn(cm, &fc, &u, &ev);
    u.user_id = NULL;
    tl_user_clear(&u);
    tl_arena_reset(fuzz_arena());
}

/* The file at path under model.kind k: resumed or refused; a resumed model checkpoints,
 * resumes from that, checkpoints the same bytes again, and works. */
static void one_kind(int kind, size_t size)
{
    char err[512] = "";
    mcfg.kind = kind;
    /* markov.order 1 or 2 by the input's size: a chain of the configured order resumes,
     * one of another order is replaced by an empty one */
    mcfg.markov_order = 1 + (int)(size % 2);
    tl_model *m = tl_model_new(&mcfg, path, err, sizeof(err));
    if (!m) {
        FUZZ_CHECK(err[0], "a checkpoint refused without a message");
        return;
    }
    /* Written back as it was resumed, resumed again, written again: the same bytes. */
    FUZZ_CHECK(tl_model_checkpoint(m) == 0, "cannot checkpoint");
    size_t n1, n2;
    char *c1 = fuzz_read_file(path, &n1);
    tl_model *m2 = tl_model_new(&mcfg, path, err, sizeof(err));
    FUZZ_CHECK(m2 != NULL, "a model's own checkpoint does not resume: %s", err);
    FUZZ_CHECK(tl_model_checkpoint(m2) == 0, "cannot checkpoint");
    char *c2 = fuzz_read_file(path, &n2);
    FUZZ_CHECK(c1 && c2 && n1 == n2 && !memcmp(c1, c2, n1),
               "checkpoint, resume, checkpoint: %zu then %zu bytes", n1, n2);
    free(c1);
    free(c2);
    tl_model_destroy(m2);
    use(m);
    tl_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* model.kind seq first: ftrl's checkpoint of the same file leaves the sequence model
     * out, so each kind reads the input itself */
    fuzz_write_file(path, data, size);
    one_kind(TL_MODEL_SEQ, size);
    fuzz_write_file(path, data, size);
    one_kind(TL_MODEL_FTRL, size);
    return 0;
}
