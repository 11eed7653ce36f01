/*
 * categories.h -- learned category embeddings, each user's embedding, and the distribution
 * of the category of a user's next event, published when it moves (docs/attribution.md,
 * "Next categories").
 *
 * Every category seen gets two learned vectors of categories.dim numbers: v, what a user's
 * interest in it says about the user, and o, what it takes for a user to go to it next. A
 * user's embedding u is the mean of the v of the user's strongest categories (at most
 * categories.candidates of them), weighted by their interest weights read now: it decays
 * exactly as the interest weights do, with nothing more kept per user.
 *
 * The next event's category is scored among candidates: the user's strongest categories,
 * and the categories that most often follow the user's last one across all users (a small
 * sketch per category: TL_CAT_SUCC successors with their counts). A candidate c scores
 *
 *   s(c) = a1 share(c) + a2 [c is the last] + a3 follows(last, c) + a4 [c is the user's]
 *          + b(c) + u . o(c)
 *
 * (share: its part of the user's category interest; follows: the sketch's share of the
 * last category's successors going to c), and "a category not listed" scores b_other; the
 * distribution is the softmax of those. The categories "like the user's" are those the user
 * has not been to whose u . o is the largest. At each event with a category, before the event
 * changes the user's interests, the model scores the user and learns from where the user
 * went (the softmax's log-loss, and the embeddings also from a sampled logistic loss of
 * the true category against TL_CAT_NEGATIVES others, as word2vec does), then counts the
 * transition. After the event, the user's new distribution is published as a record when
 * it moved by categories.threshold from the last one published (nextcat.h's distance).
 *
 * The table holds at most categories.max categories; past that new ones are counted and
 * not learned. It is checkpointed with the conversion model (model.bin), and each
 * instance learns its own: it is not shared across instances.
 */
#ifndef TL_CATEGORIES_H
#define TL_CATEGORIES_H

#include "domain/nextcat.h"
#include "domain/user.h"
#include "engine/sink.h"
#include "features/interest.h"
#include "lib/arena.h"
#include "lib/config.h"

#define TL_CAT_SUCC 8
#define TL_CAT_NEGATIVES 3
#define TL_CAT_CAND_MAX 64
#define TL_CAT_FEATURES 5

typedef struct tl_categories_cfg {
    int enabled;
    int dim;            /* categories.dim */
    int max;            /* categories.max */
    int top;            /* categories.top: listed in a record */
    int candidates;     /* categories.candidates: the user's strongest ones scored */
    double threshold;   /* categories.threshold */
    double rate;        /* categories.learning.rate */
    const char *embeddings_topic;   /* categories.embeddings.topic ("": none) */
} tl_categories_cfg;

/* The keys categories.*, filled into tl_categories_cfg. */
extern const tl_config_def tl_categories_config[];
int tl_categories_cfg_load(tl_categories_cfg *cc, const tl_config *c, char *err, size_t errlen);

typedef struct tl_cat_model tl_cat_model;
tl_cat_model *tl_cat_model_new(const tl_categories_cfg *cc);
void tl_cat_model_free(tl_cat_model *cm);
/* "TLNC" | u32 format 1 | its numbers (categories.c). */
void tl_cat_model_encode(const tl_cat_model *cm, tl_buf *out);
/* NULL, with the reason in why, when buf is not exactly one such record or its dimension
 * is not cc's. */
tl_cat_model *tl_cat_model_decode(const tl_categories_cfg *cc, const void *buf, size_t len,
                                  char *why, size_t whylen);

/* A user scored: its candidates, most likely first. */
typedef struct tl_cat_pred {
    int n;
    int32_t idx[TL_CAT_CAND_MAX];     /* in the table */
    float x[TL_CAT_CAND_MAX][TL_CAT_FEATURES];
    double s[TL_CAT_CAND_MAX], p[TL_CAT_CAND_MAX];
    double s_other, p_other;
    int32_t last;                     /* the user's last category in the table, or -1 */
    /* the strongest categories the embedding is the mean of, with their weights */
    int n_k;
    int32_t k_idx[TL_CAT_CAND_MAX];
    double k_w[TL_CAT_CAND_MAX], k_sum;
    int64_t k_t[TL_CAT_CAND_MAX];     /* their entries' last events */
    float u[TL_NC_DIM_MAX];
} tl_cat_pred;

/* Scores user u at time at (the interest weights read then; fc gives their decay). */
void tl_cat_predict(tl_cat_model *cm, const tl_features_cfg *fc, const tl_user *u, int64_t at,
                    tl_cat_pred *pr);

/* Before event ev changes u's interests: scores u, learns from ev's category, counts the
 * transition from u's last category (nothing for an event without a category). */
void tl_cat_learn(tl_cat_model *cm, const tl_features_cfg *fc, const tl_user *u,
                  const tl_event *ev);

/* After ev changed u's interests: a next_categories record to out when the user's view
 * moved by the threshold from the last one published, which u then keeps. */
tl_rc tl_cat_update(const tl_categories_cfg *cc, tl_cat_model *cm, const tl_features_cfg *fc,
                    tl_user *u, const tl_event *ev, tl_arena *a, const tl_sink *out);

/* "Categories like the user's": those with the most affinity u . o(c) > 0 to the user's
 * embedding u (the embedding part of their score as the user's next category), among
 * those the user has no interest entry for and, with listed, that it does not list: at most
 * n, into out (the affinity in p), most first. Returns the count. One matrix-vector
 * product over the table (OpenBLAS). */
int tl_cat_like(tl_cat_model *cm, const tl_user *user, const float *u, const tl_nc_view *listed,
                tl_nc_entry *out, int n);

/* An externally computed embedding (a record of categories.embeddings.topic): a JSON
 * object {"category_id": "...", "embedding": [categories.dim numbers] or null}. The numbers
 * become the category's v, which learning then leaves as they are (its o and bias still
 * learn, so the scores learn to use them); null gives v back to learning (as it is). 0, or
 * -1 with the reason in err (not JSON, no category_id, another length, a number out of
 * +-1e4, the table full). The vectors are not checkpointed: the topic is read again from
 * its start at each start. */
int tl_cat_external(tl_cat_model *cm, const void *json, size_t len, char *err, size_t errlen);

/* A category's learned numbers (v, o: dim floats; b), for reports and tests: 0, or -1
 * when the table does not have it. And the scores' weights a and b_other. */
int tl_cat_lookup(const tl_cat_model *cm, const char *id, const float **v, const float **o,
                  float *b);
void tl_cat_model_weights(const tl_cat_model *cm, double a[TL_CAT_FEATURES], double *b_other);
/* The name of table index x (len bytes, not NUL-terminated). */
const char *tl_cat_name(const tl_cat_model *cm, int32_t x, uint32_t *len);

/* Taking back an aborted transaction's learning (processing.guarantee=exactly_once, as
 * the conversion model does: model.h). After tl_cat_undo_start, the first learning step
 * of each transaction marks a journal: each category's numbers are saved at their first
 * change, and the categories the transaction adds are remembered. tl_cat_txn_end(cm, 0)
 * puts every learned number, the scores' weights, the step count and the statistics back
 * as the mark left them and drops the added categories; 1 keeps them. Externally computed
 * embeddings (tl_cat_external) are not learning: those read during the transaction are
 * applied again after an undo. NULL is accepted. */
void tl_cat_undo_start(tl_cat_model *cm);
void tl_cat_txn_end(tl_cat_model *cm, int committed);

typedef struct tl_cat_stats {
    uint64_t categories, unlearned;   /* in the table; events whose category did not fit */
    uint64_t external;                /* categories whose v is external (tl_cat_external) */
    uint64_t external_bad;            /* records tl_cat_external refused */
    uint64_t scored;                  /* events scored before learning from them */
    uint64_t hit1, hit5;              /* their category was the first, or in the first 5 */
    uint64_t last_hit;                /* ... was the user's last category (a baseline) */
    double logloss;                   /* sum of -log p of where they went ("other" for a
                                       * category not listed) */
} tl_cat_stats;
void tl_cat_model_stats(const tl_cat_model *cm, tl_cat_stats *st);

#endif
