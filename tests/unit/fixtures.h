/*
 * fixtures.h -- set-ups shared by the unit tests (implemented in fixtures.c, linked
 * into every test_*.c): a temporary directory made and removed with everything in
 * it, files written there and read back, a user record, a stage's sink, arena and user,
 * an event, and the stage configurations the documentation gives as defaults.
 */
#ifndef TALLY_TEST_FIXTURES_H
#define TALLY_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "domain/event.h"
#include "engine/state.h"
#include "lib/arena.h"
#include "features/interest.h"
#include "model/attribution.h"

struct memsink;

/* The temporary directory of the running test: fx_setup_tmpdir (a cmocka setup) makes
 * it, fx_teardown_tmpdir (its teardown) removes it and everything in it, also after a
 * failed test, and fails when it cannot. */
extern char fx_tmpdir[64];
int fx_setup_tmpdir(void **state);
int fx_teardown_tmpdir(void **state);

/* A cmocka test entry run between the file's own setup() and teardown(), and one run
 * in a fresh fx_tmpdir. */
#define FX_TEST(test) cmocka_unit_test_setup_teardown(test, setup, teardown)
#define FX_TMPDIR_TEST(test)                                                                       \
    cmocka_unit_test_setup_teardown(test, fx_setup_tmpdir, fx_teardown_tmpdir)

/* Makes a fresh directory /tmp/<tag>_XXXXXX into dir (at least 64 bytes); 0 or -1. */
int fx_mkdtemp(char *dir, size_t size, const char *tag);

/* Removes dir and everything below it; 0 when it is gone, -1 otherwise. */
int fx_rm_rf(const char *dir);

/* Writes len bytes to dir/name (failing the test when it cannot); returns the path in a
 * static buffer, valid until the next call. */
const char *fx_write_file_n(const char *dir, const char *name, const void *data, size_t len);
const char *fx_write_file(const char *dir, const char *name, const char *text);

/* The whole file, NUL-terminated, malloc'd; its length in *len when len is not NULL.
 * Fails the test when the file cannot be read. */
char *fx_slurp(const char *path, size_t *len);

/* a and b hold the same bytes (the test fails where they differ); then both are freed. */
void fx_same_bytes_free(tl_buf *a, tl_buf *b);

/* A user record with nothing in it but a copy of id; fx_user_fini frees it all. */
void fx_user_init(tl_user *u, const char *id);
void fx_user_fini(tl_user *u);

/* What a stage test starts from: an empty memory sink, an arena and the user id. */
void fx_stage_open(struct memsink *ms, tl_arena *arena, tl_user *u, const char *id);
void fx_stage_close(struct memsink *ms, tl_arena *arena, tl_user *u);

/* An event with only these fields set (the strings are not copied). */
tl_event fx_event(const char *id, const char *user, const char *item, const char *category,
                  const char *channel, tl_event_type type, int64_t ts);

/* The attribution defaults of docs/attribution.md, written out: lookback 7 days, 50
 * touchpoints, reset on conversion, time-decay half-life 7 days, every type but
 * PURCHASE a touch. */
tl_attr_cfg fx_attr_cfg(void);

/* The interest defaults of docs/interests.md but for the three given: heat IMPRESSION
 * 0.1, BROWSE 1, CLICK 2, FAVORITE 3, ADD_TO_CART 4, PURCHASE 5; epsilon 1e-6; the
 * category dimension only. */
tl_features_cfg fx_features_cfg(double half_life_ms, double alpha, double beta);

/* The next number of Marsaglia's xorshift64 (shifts 13, 7, 17) from *state, which must
 * not be 0: a fixed, reproducible stream for the tests that draw at random. */
uint64_t fx_xorshift64(uint64_t *state);

/* Decodes the len bytes at data, frees what it made and says whether it decoded (1) or
 * refused them (0). */
typedef int (*fx_decodes_fn)(const void *data, size_t len);

/* The len bytes of an encoded record are refused when cut short anywhere (each prefix
 * copied to a buffer of exactly its size, so that a read past its end is caught by ASan)
 * and with one byte more; fails the test naming the first that decodes. */
void fx_expect_exact_record(const void *rec, size_t len, fx_decodes_fn decodes);

/* Fails the test, naming what, unless got is within tol of want. */
void fx_near(double got, double want, double tol, const char *what);

/* The model the model tests start from: FTRL alpha 0.1, beta 1, l1 0.01, l2 0.1;
 * inverse-propensity weights clipped at 20; exact Shapley values up to 12 touchpoints,
 * 512 samples beyond; metrics over 10000 examples; no warm-up; control moments on a
 * 6-hour grid, at most 256 a gap; average eta 1; the Markov chain off (a 1-hour window,
 * its dimension the channel when known). */
tl_model_cfg fx_model_cfg(void);

#endif
