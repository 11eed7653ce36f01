/*
 * test_markov_share.c -- model/markov_share.c: one Markov chain fed by several senders,
 * its windows closed on the watermark (the least stream time of every input partition).
 *
 * The journeys are test_markov.c's hand-computed chain with a loop, as single journeys:
 *     A > B > A  once converted, once not
 *     B > C      twice converted, twice not
 *     C          four times not converted
 * whose removal effects are A 4/9, B 1/2, C 2/3 and Markov conversions (3 in all)
 * A 24/29, B 27/29, C 36/29. Two senders hold them: one owns input partitions 0 and 1,
 * the other partition 2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/markov.h"
#include "model/markov_share.h"

static const int64_t H = 3600000;

typedef struct got {
    int n;
    char name[16][8];
    double credit[16], before[16], removal[16];
    int64_t start[16];
} got;

static int collect(void *arg, const tl_credit_delta *d)
{
    got *g = arg;
    assert_true(g->n < 16);
    assert_string_equal(d->method, "markov");
    assert_int_equal(d->dim, TL_DIM_CHANNEL);
    assert_int_equal(d->window_end - d->window_start, H);
    snprintf(g->name[g->n], sizeof(g->name[0]), "%s", d->dim_id);
    g->credit[g->n] = d->credit;
    g->before[g->n] = d->credit_before;
    g->removal[g->n] = d->removal_effect;
    g->start[g->n++] = d->window_start;
    return 0;
}

static int find(const got *g, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->name[i], name)) return i;
    fail_msg("no credit delta for %s", name);
    return -1;
}

static void path(tl_mk_out *o, int64_t at, const char *s, int converted)
{
    const char *st[3];
    int n = 0;
    for (const char *p = s; *p; p++) {
        static const char *const names[] = {"A", "B", "C"};
        st[n++] = names[*p - 'A'];
    }
    assert_int_equal(tl_mk_out_path(o, TL_DIM_CHANNEL, at, st, n, converted), 0);
}

/* Sends what o gathered to the share. */
static void send(tl_mk_out *o, tl_mk_share *s)
{
    tl_buf b = {0};
    char err[256];
    if (tl_mk_out_take(o, &b))
        assert_int_equal(tl_mk_share_add(s, b.data, b.len, err, sizeof(err)), 0);
    tl_buf_free(&b);
}

static void test_two_senders(void **st)
{
    (void)st;
    tl_mk_share_cfg cfg = {.order = 1, .window_ms = H, .n_inputs = 3};
    tl_mk_share *s = tl_mk_share_new(&cfg);
    tl_mk_out *o1 = tl_mk_out_new(1, H), *o2 = tl_mk_out_new(1, H);
    got g = {0};
    path(o1, 10, "ABA", 1);
    path(o1, 20, "ABA", 0);
    path(o2, 30, "BC", 1);
    path(o2, 40, "BC", 1);
    path(o1, 50, "BC", 0);
    path(o2, 60, "BC", 0);
    for (int i = 0; i < 4; i++) path(i % 2 ? o1 : o2, 70 + i, "C", 0);
    tl_mk_out_time(o1, 0, H / 2);
    tl_mk_out_time(o1, 1, 2 * H);
    send(o1, s);
    assert_int_equal(tl_mk_share_close(s, collect, &g), 0);
    assert_int_equal(g.n, 0);   /* partition 2 has not reported */
    tl_mk_out_time(o2, 2, 3 * H);
    send(o2, s);
    assert_int_equal(tl_mk_share_close(s, collect, &g), 0);
    assert_int_equal(g.n, 0);   /* the watermark is partition 0's, H/2 */
    tl_mk_out_time(o1, 0, H);   /* now H: [0, H) closes */
    send(o1, s);
    assert_int_equal(tl_mk_share_close(s, collect, &g), 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(tl_mk_share_windows(s), 1);
    const char *names[] = {"A", "B", "C"};
    const double credit[] = {24.0 / 29, 27.0 / 29, 36.0 / 29}, re[] = {4.0 / 9, 0.5, 2.0 / 3};
    for (int i = 0; i < 3; i++) {
        int k = find(&g, names[i]);
        assert_true(fabs(g.credit[k] - credit[i]) < 1e-12);
        assert_true(fabs(g.removal[k] - re[i]) < 1e-12);
        assert_true(g.before[k] == 0 && g.start[k] == 0);
    }
    /* nothing new: a second close says nothing; a sender with nothing new sends nothing */
    g.n = 0;
    assert_int_equal(tl_mk_share_close(s, collect, &g), 0);
    assert_int_equal(g.n, 0);
    tl_buf b = {0};
    assert_int_equal(tl_mk_out_take(o1, &b), 0);

    /* late: a journey of [0, H) after it closed joins [H, 2H) */
    path(o1, 5, "A", 1);
    path(o2, H + 5, "C", 1);
    send(o1, s);
    send(o2, s);
    assert_int_equal(tl_mk_share_late(s), 1);

    /* the state read back goes on as the original */
    tl_buf_clear(&b);
    assert_true(tl_mk_share_dirty(s));
    tl_mk_share_state(s, &b);
    assert_false(tl_mk_share_dirty(s));
    char err[256];
    tl_mk_share *s2 = tl_mk_share_new(&cfg);
    assert_int_equal(tl_mk_share_restore(s2, b.data, b.len, err, sizeof(err)), 0);
    assert_int_equal(tl_mk_share_late(s2), 1);
    tl_mk_out_time(o1, 0, 2 * H);
    tl_buf_clear(&b);
    assert_int_equal(tl_mk_out_take(o1, &b), 1);
    assert_int_equal(tl_mk_share_add(s, b.data, b.len, err, sizeof(err)), 0);
    assert_int_equal(tl_mk_share_add(s2, b.data, b.len, err, sizeof(err)), 0);
    got g1 = {0}, g2 = {0};
    assert_int_equal(tl_mk_share_close(s, collect, &g1), 0);
    assert_int_equal(tl_mk_share_close(s2, collect, &g2), 0);
    assert_int_equal(g1.n, 3);   /* A and C moved; B's share moved too */
    assert_int_equal(g2.n, g1.n);
    for (int i = 0; i < g1.n; i++) {
        int k = find(&g2, g1.name[i]);
        assert_true(g1.credit[i] == g2.credit[k] && g1.before[i] == g2.before[k]);
        assert_true(g1.start[i] == H);
    }
    /* against one chain of every journey */
    tl_markov *m = tl_markov_new();
    const char *aba[] = {"A", "B", "A"}, *bc[] = {"B", "C"}, *c[] = {"C"}, *a[] = {"A"};
    tl_markov_add_path(m, aba, 3, 1, 1, 0);
    tl_markov_add_path(m, bc, 2, 2, 2, 0);
    tl_markov_add_path(m, c, 1, 0, 4, 0);
    tl_markov_add_path(m, a, 1, 1, 0, 0);
    tl_markov_add_path(m, c, 1, 1, 0, 0);
    tl_markov_result res;
    assert_int_equal(tl_markov_removal_effects(m, &res), TL_MARKOV_OK);
    for (int i = 0; i < res.n; i++) {
        int k = find(&g1, res.channels[i].name);
        assert_true(fabs(g1.credit[k] - res.channels[i].markov_conversions) < 1e-12);
    }
    tl_markov_result_free(&res);
    tl_markov_destroy(m);
    tl_buf_free(&b);
    tl_mk_out_destroy(o1);
    tl_mk_out_destroy(o2);
    tl_mk_share_destroy(s);
    tl_mk_share_destroy(s2);
}

/* Records that do not decode, or that do not fit, are refused whole, with a message. */
static void test_refused(void **st)
{
    (void)st;
    tl_mk_share_cfg cfg = {.order = 1, .window_ms = H, .n_inputs = 1};
    tl_mk_share *s = tl_mk_share_new(&cfg);
    tl_mk_out *o = tl_mk_out_new(1, H), *o2 = tl_mk_out_new(2, H);
    path(o, 10, "AB", 1);
    tl_mk_out_time(o, 0, 5);
    tl_buf b = {0};
    assert_int_equal(tl_mk_out_take(o, &b), 1);
    char err[256];
    for (size_t len = 0; len < b.len; len++) {
        err[0] = 0;
        assert_int_equal(tl_mk_share_add(s, b.data, len, err, sizeof(err)), -1);
        assert_true(err[0] != 0);
    }
    /* a partial is not a state, nor the other way round */
    assert_int_equal(tl_mk_share_restore(s, b.data, b.len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "partial"));
    /* another order */
    path(o2, 10, "AB", 1);
    tl_buf_clear(&b);
    assert_int_equal(tl_mk_out_take(o2, &b), 1);
    assert_int_equal(tl_mk_share_add(s, b.data, b.len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "order"));
    assert_false(tl_mk_share_dirty(s));
    tl_buf_free(&b);
    tl_mk_out_destroy(o);
    tl_mk_out_destroy(o2);
    tl_mk_share_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_senders),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
