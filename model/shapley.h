/*
 * shapley.h -- game-theoretic credit: Shapley values (exact, sampled, grouped),
 * leave-one-out removal and the normalisation of credits (docs/attribution.md,
 * "Model-based credits").
 *
 * Independent of any model: players are 0..n-1, a coalition is a uint64_t bitmask (bit j
 * set = player j is in), and the game is a value function given as a batch callback, so
 * that the caller scores many coalitions with one matrix-vector product.
 *
 * Conventions
 *  - Return codes: 0 (TL_SHAPLEY_OK) on success; TL_SHAPLEY_EARG (-1) for invalid
 *    arguments (n, samples or groups out of range, a NULL pointer), and then nothing is
 *    written and the callback is not called; TL_SHAPLEY_ENONFINITE (-2) when the game
 *    returned a NaN or an infinity (or finite values whose combination overflowed): the
 *    outputs are written but hold non-finite values, the caller must not use them.
 *    tl_credits_normalise has its own 1/0 contract, below.
 *  - Memory: no function allocates; every buffer lives on the stack, bounded by
 *    TL_SHAPLEY_BATCH (about 25 KB at most). Output arrays are the caller's, of n doubles.
 *  - The callback is called synchronously, from the calling thread, with
 *    1 <= count <= TL_SHAPLEY_BATCH coalitions per call (size the caller's scratch, e.g. a
 *    feature matrix, for TL_SHAPLEY_BATCH rows). `masks` is valid only during the call and
 *    holds only bits of players 0..n-1. It must write v[k] for every k < count and must not
 *    call back into this module with the same buffers. It may be asked for the same
 *    coalition more than once (sampling), so it must be a function of the mask.
 *  - Threading: no global state; every function is reentrant and may run on any number of
 *    threads at once, each with its own callback argument.
 */
#ifndef TL_SHAPLEY_H
#define TL_SHAPLEY_H

#include <stdint.h>

/* Policy: exact Shapley values up to this many players (or groups); sampling beyond. */
#define TL_SHAPLEY_EXACT_MAX 12
/* Hard limit of tl_shapley_exact: 2^20 coalitions, about 10 ms plus the callback. */
#define TL_SHAPLEY_EXACT_LIMIT 20
/* Players in a coalition mask: tl_shapley_sampled, tl_removal, tl_shapley_grouped. */
#define TL_SHAPLEY_MAX_PLAYERS 64
/* Largest number of coalitions passed to one callback. A power of two. */
#define TL_SHAPLEY_BATCH 1024

#define TL_SHAPLEY_OK 0
#define TL_SHAPLEY_EARG (-1)
#define TL_SHAPLEY_ENONFINITE (-2)

/* Fills v[k] = value of coalition masks[k], for k < count. The sampled estimator passes
 * runs of coalitions that each add one player to the one before, so a game can build
 * each value on the last instead of from nothing. */
typedef void (*tl_game_fn)(void *arg, const uint64_t *masks, int count, double *v);

/* Exact Shapley values phi[0..n-1], 1 <= n <= TL_SHAPLEY_EXACT_LIMIT (callers use it up to
 * TL_SHAPLEY_EXACT_MAX by policy). Evaluates each of the 2^n coalitions exactly once, in
 * ascending mask order, in batches of at most TL_SHAPLEY_BATCH, and combines them with
 * the weights |S|!(n-|S|-1)!/n!. v(empty set) need not be 0: sum(phi) = v(N) - v(empty).
 * Accuracy: every weight is 1/(n*C(n-1,|S|)) with an exact integer denominator, so it is
 * the correctly rounded weight (relative error <= 2^-53); the sums are blocked per batch.
 * Measured for values in [0, 1) against a long double reference: max |phi error| 5e-16
 * at n = 12, 3e-15 at n = 20; sum(phi) - (v(N) - v(empty)) within 8e-15 at n = 12,
 * 3e-14 at n = 20. The error scales with max|v|. */
int tl_shapley_exact(int n, tl_game_fn f, void *arg, double *phi);

/* Monte-Carlo permutation sampling (Castro, Gomez, Tejada 2009) for 1 <= n <=
 * TL_SHAPLEY_MAX_PLAYERS: draws ceil(samples/2) random permutations (Fisher-Yates on a
 * splitmix64 stream seeded by `seed`: the same arguments give the same result on every
 * platform) and uses each with its reverse (antithetic pair), so 2*ceil(samples/2)
 * permutations in all. Each permutation contributes every player's marginal gain along
 * it; a pair's contribution is the mean of its two permutations. phi is the mean over
 * pairs, so sum(phi) = v(N) - v(empty) holds for every permutation (up to rounding,
 * ~n*1e-16). stderr_out (may be NULL) gets each player's standard error, the standard
 * deviation of the pair contributions over sqrt(pairs); with a single pair it is
 * unknown and set to +infinity (0 for n = 1, where the value is exact). Coalitions:
 * 2 + 2*(n-1)*ceil(samples/2) evaluations, batched. samples >= 1. */
int tl_shapley_sampled(int n, int samples, uint64_t seed, tl_game_fn f, void *arg, double *phi,
                       double *stderr_out);

/* Leave-one-out removal: out[j] = v(N) - v(N \ {j}), 1 <= n <= TL_SHAPLEY_MAX_PLAYERS;
 * one callback with n + 1 coalitions (N first, then N \ {j} for j = 0..n-1). */
int tl_removal(int n, tl_game_fn f, void *arg, double *out);

/* The least gain (in probability) that raw credits must show to be shared out: below it
 * the model says the touchpoints did not raise the conversion probability. */
#define TL_CREDITS_MIN_MASS 1e-6

/* Turns raw credits (Shapley values or removal effects, in probability) into shares that
 * can never blow up. Default (signed_shares 0): out[j] = max(raw[j], 0) / sum of the
 * positive parts, in [0, 1] and summing to 1: the share of the gain each touchpoint
 * brought, a touchpoint the model says lowered the probability getting 0. Signed
 * (model.credits.signed): out[j] = raw[j] / sum |raw|, in [-1, 1], with absolute values
 * summing to 1, so a harmful touchpoint keeps a negative share. Dividing by the raw total
 * instead (what Shapley's efficiency suggests) gives shares of any size when gains and
 * losses nearly cancel (raw 0.2001 and -0.2: 2001 and -2000). Returns 1 and writes out when the
 * divisor is finite and at least TL_CREDITS_MIN_MASS; returns 0 and leaves out untouched
 * otherwise (also for n < 1 or NULL pointers): the caller then falls back to linear
 * credits and says so. raw and out may be the same array. */
int tl_credits_normalise(int n, const double *raw, double *out, int signed_shares);
/* The divisor tl_credits_normalise uses: sum max(raw, 0), or sum |raw| when signed (NAN
 * when a raw value is not finite). A sampled raw value's standard error over it is its
 * share's (tl_model_credit's shapley_stderr). */
double tl_credits_mass(int n, const double *raw, int signed_shares);

/* Shapley values by groups, for more players than the exact path takes: the game whose
 * players are the groups (a coalition of groups = the union of their members' bits) is
 * solved exactly, and each group's value is split equally among its members.
 * group_of[j] in [0, n_groups) is player j's group, 1 <= n <= TL_SHAPLEY_MAX_PLAYERS,
 * 1 <= n_groups <= TL_SHAPLEY_EXACT_MAX (TL_SHAPLEY_EARG otherwise). A group with no
 * member is a null player of the group game and gets nothing.
 *
 * This is an "Owen-like" shortcut. Its first level is exactly the quotient game of the
 * Owen value (the coalition structure's unions as players). The Owen value would then
 * split a union's value by the Shapley value of the game among its members (with the
 * other unions either wholly in or out); the equal split skips that step. What it loses:
 *  - within a group, every member gets the same credit, even a member that never
 *    changes the value (the null-player property holds for groups, not players);
 *  - it is the Owen value, not the Shapley value, even when members are symmetric:
 *    grouping restricts the orders in which players arrive (a group arrives whole).
 *    E.g. v(S) = 1 iff C in S and (A or B in S): Shapley (1/6, 1/6, 2/3), grouped with
 *    {A,B},{C}: (1/4, 1/4, 1/2).
 * It equals the Shapley value when each group's members are symmetric and the game has
 * no interaction across groups (v(S) = sum over groups g of h_g(S cap g)), in particular
 * when every group has one member. Efficiency holds: sum(phi) = v(N) - v(empty). */
int tl_shapley_grouped(int n, const int *group_of, int n_groups, tl_game_fn f, void *arg,
                       double *phi_players);

#endif
