/*
 * pipeline.h -- the processing stages in their order, configured from a tl_config, as
 * tl_stage callbacks for the runtime loop:
 *
 *   attribution  journeys, rule-based and model-based credits, labels for the model,
 *                journey expiry (timers), Markov windows
 *   features     interest weights and their deltas; with categories.enabled, the category
 *                embeddings learn from the event before it changes the interests, and the
 *                user's next categories are published after
 *
 * Attribution runs first so that what the model learns about a touchpoint (its
 * category's share of the user's interest) is as of before that event, and so that a
 * purchase never informs the features of its own journey.
 */
#ifndef TL_PIPELINE_H
#define TL_PIPELINE_H

#include "engine/runtime.h"
#include "features/interest.h"
#include "model/attribution.h"
#include "model/model.h"

typedef struct tl_pipeline {
    tl_features_cfg fcfg;
    tl_attr_cfg acfg;
    tl_model_cfg mcfg;
    tl_intent_cfg icfg;
    tl_categories_cfg ccfg;
    tl_model *model;             /* NULL when model.enabled and markov.enabled are off */
    tl_attr_stage attr;
    tl_features_stats fstats;
    tl_attr_stats astats;        /* a copy of attr.st, kept current by the stage */
    tl_stage stages[2];
    int n_stages;
} tl_pipeline;

/* 0, or -1 with a configuration error in err. The model resumes from (and checkpoints
 * to) state_dir/model.bin. */
int tl_pipeline_init(tl_pipeline *p, const tl_config *c, const char *state_dir, char *err,
                     size_t errlen);
void tl_pipeline_destroy(tl_pipeline *p);

#endif
