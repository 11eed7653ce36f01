/*
 * test_names.c -- the Kafka names of a deployment (app/names.c), against the names
 * docs/operations.md gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "app/names.h"

/* The names of n in the order of tl_app_names, against want. */
static void assert_names(const tl_app_names *n, const char *const want[8])
{
    const char *got[8] = {n->group,
                          n->changelog,
                          n->transactional_id,
                          n->rollup_group,
                          n->rollup_transactional_id,
                          n->rollup_state,
                          n->partials,
                          n->model};
    for (int i = 0; i < 8; i++) assert_string_equal(got[i], want[i]);
}

static void test_defaults(void **state)
{
    (void)state;
    tl_app_names n;
    char err[256] = "";
    tl_app_settings s = {.instance_id = "host-1"};
    assert_int_equal(tl_app_names_make(&s, &n, err, sizeof(err)), 0);
    const char *const want[8] = {"tally",
                                 "tally-users-changelog",
                                 "tally-tally-host-1",
                                 "tally-rollup",
                                 "tally-tally-host-1-rollup",
                                 "tally-rollup-state",
                                 "tally-rollup-partials",
                                 "tally-model"};
    assert_names(&n, want);
}

static void test_settings(void **state)
{
    (void)state;
    tl_app_names n;
    char err[256] = "";
    tl_app_settings s = {
        .group_id = "shop", .changelog_topic = "cl", .partials_topic = "pt", .instance_id = "a"};
    assert_int_equal(tl_app_names_make(&s, &n, err, sizeof(err)), 0);
    const char *const want[8] = {"shop",
                                 "cl",
                                 "tally-shop-a",
                                 "shop-rollup",
                                 "tally-shop-a-rollup",
                                 "shop-rollup-state",
                                 "pt",
                                 "shop-model"};
    assert_names(&n, want);
    /* empty strings are unset */
    s = (tl_app_settings){
        .group_id = "", .changelog_topic = "", .partials_topic = "", .instance_id = "a"};
    assert_int_equal(tl_app_names_make(&s, &n, err, sizeof(err)), 0);
    assert_string_equal(n.changelog, "tally-users-changelog");
    assert_string_equal(n.partials, "tally-rollup-partials");
}

/* A name that would not fit is an error naming the setting, never a cut name. */
static void test_too_long(void **state)
{
    (void)state;
    tl_app_names n;
    char err[256] = "", group[TL_NAME_MAX];
    memset(group, 'g', sizeof(group) - 10);
    group[sizeof(group) - 10] = '\0';   /* fits alone, not with "-users-changelog" */
    tl_app_settings s = {.group_id = group, .instance_id = "a"};
    assert_int_equal(tl_app_names_make(&s, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "kafka.group.id"));
    s = (tl_app_settings){.changelog_topic = "cl", .instance_id = group};
    assert_int_equal(tl_app_names_make(&s, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "instance.id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
