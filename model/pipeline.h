/*
 * pipeline.h -- the processing stages in their order (features, then attribution),
 * configured from a tl_config, as tl_stage callbacks for the runtime loop.
 */
#ifndef TL_PIPELINE_H
#define TL_PIPELINE_H

#include "core/runtime.h"
#include "features/interest.h"
#include "model/attribution.h"

typedef struct tl_pipeline {
    tl_features_cfg fcfg;
    tl_attr_cfg acfg;
    tl_features_stats fstats;
    tl_attr_stats astats;
    tl_stage stages[2];
    int n_stages;
} tl_pipeline;

/* 0, or -1 with a configuration error in err. */
int tl_pipeline_init(tl_pipeline *p, const tl_config *c, char *err, size_t errlen);

/* Runtime options from the configuration (state.dir, cache, batch sizes). */
void tl_pipeline_runtime_opts(const tl_config *c, tl_runtime_opts *o);

#endif
