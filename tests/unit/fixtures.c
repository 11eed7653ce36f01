/*
 * fixtures.c -- the shared unit-test set-ups declared in fixtures.h.
 */
#define _GNU_SOURCE   /* nftw, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "fixtures.h"
#include "memsink.h"

int fx_mkdtemp(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/%s_XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

char fx_tmpdir[64];

int fx_setup_tmpdir(void **state)
{
    (void)state;
    return fx_mkdtemp(fx_tmpdir, sizeof(fx_tmpdir), "tally_test");
}

int fx_teardown_tmpdir(void **state)
{
    (void)state;
    return fx_rm_rf(fx_tmpdir);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int fx_rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return access(dir, F_OK) == 0 ? -1 : 0;
}

const char *fx_write_file_n(const char *dir, const char *name, const void *data, size_t len)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

const char *fx_write_file(const char *dir, const char *name, const char *text)
{
    return fx_write_file_n(dir, name, text, strlen(text));
}

char *fx_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    tl_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) tl_buf_append(&b, chunk, n);
    fclose(f);
    tl_buf_append(&b, "", 0);
    if (len) *len = b.len;
    return b.data;
}

void fx_same_bytes_free(tl_buf *a, tl_buf *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
    tl_buf_free(a);
    tl_buf_free(b);
}

void fx_user_init(tl_user *u, const char *id)
{
    memset(u, 0, sizeof(*u));
    u->user_id = tl_xstrdup(id);
}

void fx_user_fini(tl_user *u)
{
    tl_user_clear(u);
    free(u->user_id);
    u->user_id = NULL;
}

void fx_stage_open(memsink *ms, tl_arena *arena, tl_user *u, const char *id)
{
    ms_init(ms);
    tl_arena_init(arena, 4096);
    fx_user_init(u, id);
}

void fx_stage_close(memsink *ms, tl_arena *arena, tl_user *u)
{
    ms_free(ms);
    tl_arena_destroy(arena);
    fx_user_fini(u);
}

tl_event fx_event(const char *id, const char *user, const char *item, const char *category,
                  const char *channel, tl_event_type type, int64_t ts)
{
    tl_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.event_id = id;
    ev.user_id = user;
    ev.item_id = item;
    ev.category_id = category;
    ev.channel = channel;
    ev.type = type;
    ev.ts = ts;
    return ev;
}

tl_attr_cfg fx_attr_cfg(void)
{
    const int64_t day = 86400000;
    tl_attr_cfg ac;
    memset(&ac, 0, sizeof(ac));
    ac.lookback_ms = 7 * day;
    ac.max_touchpoints = 50;
    ac.reset_on_conversion = 1;
    ac.time_decay_half_life_ms = 7.0 * day;
    ac.touch_mask = (1u << TL_IMPRESSION) | (1u << TL_BROWSE) | (1u << TL_CLICK) |
        (1u << TL_FAVORITE) | (1u << TL_ADD_TO_CART);
    return ac;
}

tl_features_cfg fx_features_cfg(double half_life_ms, double alpha, double beta)
{
    tl_features_cfg fc;
    memset(&fc, 0, sizeof(fc));
    fc.half_life_ms = half_life_ms;
    fc.alpha = alpha;
    fc.beta = beta;
    const double heat[TL_EVENT_TYPE_COUNT] = {0.1, 1, 2, 3, 4, 5};
    memcpy(fc.heat, heat, sizeof(heat));
    fc.epsilon = 1e-6;
    fc.dims[TL_DIM_CATEGORY] = 1;
    return fc;
}

uint64_t fx_xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

void fx_expect_exact_record(const void *rec, size_t len, fx_decodes_fn decodes)
{
    for (size_t n = 0; n < len; n++) {
        char *cut = tl_xmalloc(n ? n : 1);
        memcpy(cut, rec, n);
        int decoded = decodes(cut, n);
        free(cut);
        if (decoded) fail_msg("decoded a record of %zu bytes truncated to %zu", len, n);
    }
    char *pad = tl_xmalloc(len + 1);
    memcpy(pad, rec, len);
    pad[len] = 0;
    int decoded = decodes(pad, len + 1);
    free(pad);
    if (decoded) fail_msg("decoded a record of %zu bytes with a trailing byte", len);
}

void fx_near(double got, double want, double tol, const char *what)
{
    double diff = got - want;   /* NaN fails both comparisons */
    if (!(diff <= tol && -diff <= tol)) fail_msg("%s: got %.17g, expected %.17g", what, got, want);
}

tl_model_cfg fx_model_cfg(void)
{
    const int64_t hour = 3600000;
    tl_model_cfg mc;
    memset(&mc, 0, sizeof(mc));
    mc.enabled = 1;
    mc.alpha = 0.1;
    mc.beta = 1;
    mc.l1 = 0.01;
    mc.l2 = 0.1;
    mc.ipw = 1;
    mc.ipw_clip = 20;
    mc.shapley_exact_max = 12;
    mc.shapley_samples = 512;
    mc.metrics_window = 10000;
    mc.markov_enabled = 0;
    mc.markov_window_ms = hour;
    mc.markov_dim = -1;
    mc.control_interval_ms = 6 * hour;
    mc.controls_max = 256;
    mc.average_eta = 1;   /* model.credits.average.eta's default */
    return mc;
}
