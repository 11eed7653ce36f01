/*
 * bench_attribution.c -- the model's costs, one thread, no broker:
 *   - model updates per second (tl_model_learn: the example's sparse vector, the FTRL
 *     step, metrics), and
 *   - attribution latency per purchase: the whole model-based credit of one purchase
 *     (tl_model_credit: the touchpoints' contributions, Shapley over the coalitions,
 *     removal, normalising, the sentence), median and p99, for purchases with 50
 *     touchpoints (sampled Shapley, model.shapley.samples permutations) and with 12
 *     (exact 12-player Shapley).
 *
 *   bench_attribution [--purchases N] [--updates N]
 * Prints key=value lines (run it three times; docs/benchmarks.md quotes the medians).
 */
#include "lib/arena.h"
#include "lib/rng.h"
#include "lib/util.h"
#include "model/model.h"
#include "bench_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gen_rng rng;   /* seeded in main */
static uint64_t next(void) { return rng_next(&rng); }

/* n touchpoints over `cats` categories, an hour apart, types mostly browse. */
static void journey(tl_journey_tp *tps, int n, int cats, char (*ids)[4][16])
{
    for (int i = 0; i < n; i++) {
        memset(&tps[i], 0, sizeof(tps[i]));
        snprintf(ids[i][0], 16, "e%d", i);
        snprintf(ids[i][1], 16, "i%" PRIu64, next() % 1000);
        snprintf(ids[i][2], 16, "c%d", i % cats);
        snprintf(ids[i][3], 16, "ch%" PRIu64, next() % 4);
        tps[i].event_id = ids[i][0];
        tps[i].item_id = ids[i][1];
        tps[i].category_id = ids[i][2];
        tps[i].channel = ids[i][3];
        uint64_t r = next() % 100;
        tps[i].type = r < 85 ? TL_BROWSE
            : r < 92         ? TL_ADD_TO_CART
            : r < 97         ? TL_FAVORITE
                             : TL_CLICK;
        tps[i].ts = 1700000000000LL + (int64_t)i * 3600000;
        tps[i].share = (float)(next() % 100) / 100.0f;
        tps[i].propensity = -1;
        tps[i].dwell_ms = (int32_t)(next() % 120000);
    }
}

static void latency(tl_model *m, int n, int cats, int purchases, const char *label)
{
    tl_journey_tp tps[64];
    char ids[64][4][16];
    double *us = tl_xmalloc((size_t)purchases * sizeof(double));
    tl_arena a;
    tl_arena_init(&a, 1 << 16);
    for (int k = 0; k < purchases; k++) {
        journey(tps, n, cats, ids);
        tl_attribution r = {.conversion_event_id = "p",
                            .user_id = "u",
                            .item_id = "i",
                            .ts = tps[n - 1].ts + 60000,
                            .n_touchpoints = n};
        const char *expl = "";
        int64_t t0 = tl_mono_ns();
        tl_model_credit(m, NULL, tps, n, &r, &a, &expl);
        us[k] = (double)(tl_mono_ns() - t0) / 1e3;
        tl_arena_reset(&a);
    }
    qsort(us, (size_t)purchases, sizeof(double), bench_cmp_double);
    printf("case=%s touchpoints=%d categories=%d purchases=%d median_us=%.1f p99_us=%.1f\n", label,
           n, cats, purchases, us[purchases / 2], us[(int)(purchases * 0.99)]);
    tl_arena_destroy(&a);
    free(us);
}

int main(int argc, char **argv)
{
    int purchases = 2000, updates = 200000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--purchases")) purchases = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--updates")) updates = atoi(argv[i + 1]);
    }
    tl_model_cfg mc = {.enabled = 1,
                       .alpha = 0.1,
                       .beta = 1,
                       .l2 = 0.1,
                       .ipw_clip = 20,
                       .shapley_exact_max = 12,
                       .shapley_samples = 512,
                       .metrics_window = 10000,
                       .markov_dim = -1};
    rng_seed(&rng, 88172645463325252ULL);
    char err[256];
    tl_model *m = tl_model_new(&mc, NULL, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Updates: journeys of 1..20 touchpoints, label 1 when there is an add-to-cart. */
    tl_journey_tp tps[64];
    char ids[64][4][16];
    int64_t t0 = tl_mono_ns();
    for (int k = 0; k < updates; k++) {
        int n = 1 + (int)(next() % 20);
        journey(tps, n, 5, ids);
        int label = 0;
        for (int i = 0; i < n; i++) label |= tps[i].type == TL_ADD_TO_CART;
        tl_model_learn(m, NULL, tps, n, label && next() % 4 != 0, tps[n - 1].ts);
    }
    double secs = (double)(tl_mono_ns() - t0) / 1e9;
    printf("case=updates updates=%d seconds=%.3f updates_per_s=%.0f\n", updates, secs,
           updates / secs);
    latency(m, 50, 12, purchases, "50_touchpoints_12_categories");
    latency(m, 12, 12, purchases, "12_touchpoints");
    tl_model_destroy(m);
    return 0;
}
