/*
 * fuzz_category_embedding.c -- a record of categories.embeddings.topic, externally
 * computed category embeddings (model/categories.h, tl_cat_external).
 *
 * Input: the record's value.
 *
 * Asserted:
 *   - it is taken (0) or refused (-1) with a reason; refused ones are counted;
 *   - taken with an embedding, the category's v is those numbers, each within +-1e4, and
 *     it counts as external; taken with null, it does not;
 *   - the model still scores a user of that category, learns from an event in it and lists
 *     the categories like the user's (the probabilities summing to 1), and its checkpoint
 *     part decodes to the same bytes.
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"
#include "model/categories.h"

static tl_categories_cfg cc = {
    .enabled = 1, .dim = 4, .max = 64, .top = 5, .candidates = 16, .threshold = 0.1, .rate = 0.05};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_cat_model *cm = tl_cat_model_new(&cc);
    char err[256] = "";
    tl_cat_stats before, after;
    tl_cat_model_stats(cm, &before);
    int rc = tl_cat_external(cm, data, size, err, sizeof(err));
    tl_cat_model_stats(cm, &after);
    FUZZ_CHECK(rc == 0 || rc == -1, "tl_cat_external: %d", rc);
    FUZZ_CHECK(rc == 0 || (err[0] && after.external_bad == before.external_bad + 1),
               "refused without a reason or a count: \"%s\"", err);
    if (rc == 0) {
        /* the same record, parsed here: the category and its numbers */
        tl_arena a;
        tl_arena_init(&a, 4096);
        char jerr[128];
        const tl_json *j = tl_json_parse((const char *)data, size, &a, jerr, sizeof(jerr));
        FUZZ_CHECK(j != NULL, "taken, but it does not parse: %s", jerr);
        const tl_json *id = tl_json_get(j, "category_id"), *e = tl_json_get(j, "embedding");
        FUZZ_CHECK(id && id->type == TL_JSON_STRING && e, "taken without its fields");
        const float *v, *o;
        float b;
        if (!memchr(id->str, 0, id->len)) {
            FUZZ_CHECK(tl_cat_lookup(cm, id->str, &v, &o, &b) == 0, "taken, not in the table");
            if (e->type == TL_JSON_ARRAY)
                for (int i = 0; i < cc.dim; i++)
                    FUZZ_CHECK(v[i] == (float)tl_json_at(e, (size_t)i)->num && fabsf(v[i]) <= 1e4f,
                               "v[%d] %g", i, (double)v[i]);
        }
        FUZZ_CHECK(after.external == (e->type == TL_JSON_ARRAY), "external %llu",
                   (unsigned long long)after.external);
        /* a user of that category: scored, learned from, like listed */
        tl_user u;
        memset(&u, 0, sizeof(u));
        u.user_id = "u";
        tl_interest *x = tl_user_add_interest(&u, TL_DIM_CATEGORY, "other");
        x->f = x->h = 1;
        x->t = 1000;
        char *cid = tl_xstrndup(id->str, id->len);
        x = tl_user_add_interest(&u, TL_DIM_CATEGORY, cid);
        x->f = x->h = 2;
        x->t = 2000;
        tl_features_cfg fc = {.half_life_ms = 86400000, .alpha = 0.5, .beta = 0.5};
        tl_event ev = {.event_id = "e",
                       .user_id = "u",
                       .item_id = "i",
                       .category_id = "other",
                       .type = TL_BROWSE,
                       .ts = 3000};
        tl_cat_learn(cm, &fc, &u, &ev);
        tl_cat_pred pr;
        tl_cat_predict(cm, &fc, &u, 4000, &pr);
        double sum = pr.p_other;
        for (int i = 0; i < pr.n; i++) sum += pr.p[i];
        FUZZ_CHECK(fabs(sum - 1) < 1e-9, "the probabilities sum to %g", sum);
        tl_nc_entry like[TL_NC_LIKE_MAX];
        tl_cat_like(cm, &u, pr.u, NULL, like, TL_NC_LIKE_MAX);
        tl_buf b1 = {0}, b2 = {0};
        tl_cat_model_encode(cm, &b1);
        tl_cat_model *d = tl_cat_model_decode(&cc, b1.data, b1.len, err, sizeof(err));
        FUZZ_CHECK(d != NULL, "its checkpoint part does not decode: %s", err);
        tl_cat_model_encode(d, &b2);
        FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
                   "checkpoint, decode, checkpoint: %zu then %zu bytes", b1.len, b2.len);
        tl_cat_model_free(d);
        tl_buf_free(&b1);
        tl_buf_free(&b2);
        u.user_id = NULL;
        tl_user_clear(&u);
        free(cid);
        tl_arena_destroy(&a);
    }
    tl_cat_model_free(cm);
    return 0;
}
