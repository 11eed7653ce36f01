/*
 * markov.h -- Markov-chain attribution over channel (or category) paths, of order 1 to
 * TL_MARKOV_MAX_ORDER (docs/attribution.md, "Markov chain (channels)").
 *
 * A path is start -> s1 -> ... -> sn -> (conversion | null), added with weights: how many
 * journeys that followed it converted, how many did not, and their total conversion value.
 * Consecutive repeats collapse (a > a > b is a > b) for the chain, as ChannelAttribution
 * does. The model keeps only sums: transition weights between states, per-state weights
 * into conversion and null, and the first-touch, last-touch and linear sums of the same
 * paths. tl_markov_removal_effects() turns them into removal effects and credits, exactly
 * (no simulation), from one LU factorisation of I - Q.
 *
 * Order k > 1: a state is a window of k consecutive touches of the path as given (the whole
 * path when shorter; consecutive equal windows are one state), named by its touches
 * joined by TL_MARKOV_SEP, which a channel name therefore cannot contain. The channels are
 * interned too, as states no weight leaves, and carry the first/last/linear sums; the
 * result lists the channels only, and removing one removes every window it is part of.
 *
 * Conventions:
 * - Ownership: tl_markov_new/copy/decode return a model the caller frees with
 *   tl_markov_destroy. State names passed in are copied. A tl_markov_result owns its
 *   arrays and names (they outlive the model); free it with tl_markov_result_free.
 * - Errors: functions returning int give 0 or a negative TL_MARKOV_E* code
 *   (tl_markov_strerror names it). A failed call leaves the model unchanged.
 * - NULL: destroy and result_free accept NULL; every other pointer must be valid.
 * - Bounds: at most TL_MARKOV_MAX_STATES distinct states (start excluded). The solve is
 *   dense: (n+1)^2 doubles (134 MB at the bound) and O(n^3) time (0.4 s at n = 2000,
 *   2.6 s at the bound, one core; docs/benchmarks.md). A path or merge that would intern
 *   more states fails with TL_MARKOV_ETOOMANY and changes nothing; use coarser states
 *   (categories, channel groups) beyond it.
 * - Threading: a model is not shared; distinct models may be used from distinct threads.
 *   The solve calls OpenBLAS/LAPACK, which may use their own threads.
 */
#ifndef TL_MARKOV_H
#define TL_MARKOV_H

#include <stddef.h>
#include <stdint.h>

#include "domain/records.h"
#include "lib/util.h"

#define TL_MARKOV_MAX_STATES 4096
#define TL_MARKOV_MAX_NAME 4096   /* bytes of one channel name */
#define TL_MARKOV_MAX_ORDER 4
#define TL_MARKOV_SEP '\x1f'      /* joins the touches of an order-k state's name */

enum {
    TL_MARKOV_OK = 0,
    TL_MARKOV_EINVAL = -1,     /* bad argument: no states, empty or overlong name, weight
                                * negative or not finite */
    TL_MARKOV_ETOOMANY = -2,   /* more than TL_MARKOV_MAX_STATES states */
    TL_MARKOV_ESOLVE = -3,     /* LAPACK failed (I - Q singular: cannot happen for a chain
                                * built from paths, which all end in conversion or null) */
    TL_MARKOV_ECORRUPT = -4,   /* decode: bytes are not an encoded model (bad magic,
                                * version, checksum, length or content) */
    TL_MARKOV_EORDER = -5,     /* merge: the two chains have different orders */
};
const char *tl_markov_strerror(int rc);

typedef struct tl_markov tl_markov;

tl_markov *tl_markov_new(void);                /* order 1 */
/* A chain of order k (1..TL_MARKOV_MAX_ORDER; NULL otherwise): its states are the last k
 * touches, as ChannelAttribution's markov_model(order = k). */
tl_markov *tl_markov_new_order(int order);
int tl_markov_order(const tl_markov *m);
void tl_markov_destroy(tl_markov *m);
tl_markov *tl_markov_copy(const tl_markov *m);
/* Forgets every path and state (a window that starts over). */
void tl_markov_clear(tl_markov *m);

/* Adds the path states[0..n) (n >= 1, each a non-empty NUL-terminated name) with weights
 * conversions, nulls, value >= 0 and finite. Consecutive repeats collapse for the chain;
 * first/last/linear credits use the path as given (linear: 1/n per touch, as
 * ChannelAttribution's heuristic_models). A path with conversions + nulls == 0 only
 * interns its states. */
int tl_markov_add_path(tl_markov *m, const char *const *states, int n, double conversions,
                       double nulls, double value);

/* dst += src: the model of both sets of paths (windows made of panes). */
int tl_markov_merge(tl_markov *dst, const tl_markov *src);

int tl_markov_states(const tl_markov *m);               /* distinct states, start excluded */
const char *tl_markov_state_name(const tl_markov *m, int i);   /* 0 <= i < states, or NULL */
uint64_t tl_markov_paths(const tl_markov *m);           /* tl_markov_add_path calls */

/* Per state, in interning order (the order states were first seen). */
typedef struct tl_markov_channel {
    const char *name;
    double removal_effect;      /* relative drop of p(start -> conversion) without it */
    double markov_conversions;  /* total conversions * RE / sum RE */
    double markov_value;        /* total value * RE / sum RE */
    double first_conversions, first_value;
    double last_conversions, last_value;
    double linear_conversions, linear_value;
    /* tl_markov_bootstrap's interval (0 without one) */
    double removal_effect_lo, removal_effect_hi;
    double markov_conversions_lo, markov_conversions_hi;
} tl_markov_channel;

typedef struct tl_markov_result {
    int n;
    tl_markov_channel *channels;
    double conversion_probability;  /* p(start -> conversion) in the chain */
    double conversions, nulls, value;   /* totals of the paths */
    uint64_t paths;
    int order;                      /* of the chain */
    int chain_states;               /* its states (order k: the k-touch windows seen) */
    int bootstrap_samples;          /* 0: no interval */
    double bootstrap_level;         /* e.g. 0.9 */
    char *names_;                   /* the names' storage */
} tl_markov_result;

/* Fills r (overwriting it; free with tl_markov_result_free). With no conversion at all
 * every removal effect and credit is 0. On error r is left empty (n = 0). */
int tl_markov_removal_effects(const tl_markov *m, tl_markov_result *r);
void tl_markov_result_free(tl_markov_result *r);
/* The "markov" credit delta of r's channel i (dimension dim) for the window that starts at
 * start and lasts len: its Markov conversions, up from before, with its removal effect
 * and, when r has one, its interval. */
tl_credit_delta tl_markov_credit_delta(const tl_markov_result *r, int i, int64_t start, int64_t len,
                                       tl_dim dim, double before);

/* Adds to r (filled by tl_markov_removal_effects from m) an interval per channel for the
 * removal effect and the Markov conversions: the central `level` (0 < level < 1) of their
 * values over `samples` (>= 2) chains drawn around m. Each state's outgoing weights (to
 * the next states, conversion and null) are redrawn as independent Gamma(w, 1) variates,
 * which normalised is the Dirichlet posterior of its transition probabilities given the
 * counts (a Bayesian bootstrap of each row; the chain keeps sums, not journeys, so rows
 * are what can be resampled). Total conversions stay as observed. The same (m, samples,
 * seed, level) gives the same interval. Cost: samples solves. */
int tl_markov_bootstrap(const tl_markov *m, int samples, uint64_t seed, double level,
                        tl_markov_result *r);

/* The model is state that must survive restarts. tl_markov_encode appends it to out:
 * versioned and checksummed; the same model (same sums, same interning order) always
 * gives the same bytes. tl_markov_decode checks everything (checksum, indices,
 * duplicates, weights finite and >= 0) and returns NULL with *rc = TL_MARKOV_ECORRUPT
 * when anything is wrong (rc may be NULL). */
void tl_markov_encode(const tl_markov *m, tl_buf *out);
tl_markov *tl_markov_decode(const void *data, size_t len, int *rc);

#endif
