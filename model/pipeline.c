/*
 * pipeline.c -- wires the stages for the runtime loop. Both stages read and write the
 * same user record: attribution its journey and timer, features its interest entries.
 */
#include "pipeline.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static tl_rc attribution_process(void *ctx, tl_store *s, tl_user *u, const tl_event *ev,
                                 tl_arena *a, const tl_sink *out)
{
    tl_pipeline *p = ctx;
    tl_rc rc = tl_attribution_apply(&p->attr, s, u, ev, a, out);
    p->astats = p->attr.st;
    return rc;
}

static tl_rc attribution_advance(void *ctx, tl_store *s, int64_t now, tl_arena *a,
                                 const tl_sink *out)
{
    tl_pipeline *p = ctx;
    tl_rc rc = tl_attribution_advance(&p->attr, s, now, a, out);
    p->astats = p->attr.st;
    return rc;
}

static void model_txn_end(void *ctx, int committed)
{
    tl_pipeline *p = ctx;
    if (p->model) tl_model_txn_end(p->model, committed);
}

static int model_checkpoint(void *ctx)
{
    tl_pipeline *p = ctx;
    return p->model ? tl_model_checkpoint(p->model) : 0;
}

static tl_rc features_process(void *ctx, tl_store *s, tl_user *u, const tl_event *ev, tl_arena *a,
                              const tl_sink *out)
{
    tl_pipeline *p = ctx;
    tl_cat_model *cm = tl_model_categories(p->model);
    if (cm) tl_cat_learn(cm, &p->fcfg, u, ev);
    tl_rc rc = tl_features_apply(&p->fcfg, u, ev, a, out, &p->fstats);
    if (rc == TL_OK && cm) rc = tl_cat_update(&p->ccfg, cm, &p->fcfg, u, ev, a, out);
    return rc;
}

int tl_pipeline_init(tl_pipeline *p, const tl_config *c, const char *state_dir, char *err,
                     size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (tl_features_cfg_load(&p->fcfg, c, err, errlen) != 0) return -1;
    if (tl_attr_cfg_load(&p->acfg, c, err, errlen) != 0) return -1;
    if (tl_model_cfg_load(&p->mcfg, c, err, errlen) != 0) return -1;
    if (tl_intent_cfg_load(&p->icfg, c, err, errlen) != 0) return -1;
    if (tl_categories_cfg_load(&p->ccfg, c, err, errlen) != 0) return -1;
    if (p->ccfg.enabled && p->mcfg.enabled && !p->fcfg.dims[TL_DIM_CATEGORY]) {
        snprintf(err, errlen,
                 "categories.enabled needs the users' category interests: add category to "
                 "features.dims (now '%s'), or set categories.enabled=false",
                 p->fcfg.dims_list ? p->fcfg.dims_list : "");
        return -1;
    }
    p->mcfg.cats = p->ccfg;
    if (p->icfg.window_ms == 0) p->icfg.window_ms = p->acfg.lookback_ms;
    if (p->icfg.window_ms <= 0) p->icfg.enabled = 0;   /* a lookback of 0: no window */
    if (p->icfg.enabled && p->mcfg.enabled && p->icfg.window_ms > p->acfg.lookback_ms) {
        /* every scored moment must be decided by its journey's expiry at the latest */
        snprintf(err, errlen,
                 "intent.window.ms (%lld) is longer than attribution.lookback.ms (%lld): make "
                 "it at most that, or set intent.enabled=false",
                 (long long)p->icfg.window_ms, (long long)p->acfg.lookback_ms);
        return -1;
    }
    if (p->mcfg.enabled || p->mcfg.markov_enabled) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/model.bin", state_dir);
        mkdir(state_dir, 0755);
        p->model = tl_model_new(&p->mcfg, path, err, errlen);
        if (!p->model) return -1;
    }
    p->attr =
        (tl_attr_stage){.cfg = &p->acfg, .fc = &p->fcfg, .model = p->model, .intent = &p->icfg};
    p->stages[0] = (tl_stage){.name = "attribution",
                              .ctx = p,
                              .process = attribution_process,
                              .advance = attribution_advance,
                              .checkpoint = model_checkpoint,
                              .txn_end = model_txn_end};
    p->stages[1] = (tl_stage){.name = "features", .ctx = p, .process = features_process};
    p->n_stages = 2;
    return 0;
}

void tl_pipeline_destroy(tl_pipeline *p)
{
    tl_model_destroy(p->model);
    p->model = NULL;
}
