/*
 * pipeline.c -- wires the stages for the runtime loop. Both stages read and write the
 * same user record: features its interest entries, attribution its journey.
 */
#include "pipeline.h"

#include <string.h>

static tl_rc features_process(void *ctx, tl_user *u, const tl_event *ev, tl_arena *a,
                              const tl_sink *out)
{
    tl_pipeline *p = ctx;
    return tl_features_apply(&p->fcfg, u, ev, a, out, &p->fstats);
}

static tl_rc attribution_process(void *ctx, tl_user *u, const tl_event *ev, tl_arena *a,
                                 const tl_sink *out)
{
    tl_pipeline *p = ctx;
    return tl_attribution_apply(&p->acfg, u, ev, a, out, &p->astats);
}

int tl_pipeline_init(tl_pipeline *p, const tl_config *c, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (tl_features_cfg_load(&p->fcfg, c, err, errlen) != 0) return -1;
    if (tl_attr_cfg_load(&p->acfg, c, err, errlen) != 0) return -1;
    p->stages[0] = (tl_stage){.name = "features", .ctx = p, .process = features_process};
    p->stages[1] = (tl_stage){.name = "attribution", .ctx = p, .process = attribution_process};
    p->n_stages = 2;
    return 0;
}

void tl_pipeline_runtime_opts(const tl_config *c, tl_runtime_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->state_dir = tl_config_str(c, "state.dir");
    o->cache_bytes = (size_t)tl_config_int(c, "state.cache.mb") << 20;
    o->batch_max_events = (int)tl_config_int(c, "batch.max.events");
    o->batch_max_ms = (int)tl_config_int(c, "commit.interval.ms");
    o->flush_timeout_ms = (int)tl_config_int(c, "sink.flush.timeout.ms");
    o->state_flush_ms = (int)tl_config_int(c, "state.flush.interval.ms");
}
