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

/* The names of n in the order of tl_app_names, against want; a failure names the case. */
static void assert_names(const char *what, const tl_app_names *n, const char *const want[8])
{
    const char *got[8] = {n->group,
                          n->changelog,
                          n->transactional_id,
                          n->rollup_group,
                          n->rollup_transactional_id,
                          n->rollup_state,
                          n->partials,
                          n->model};
    for (int i = 0; i < 8; i++)
        if (strcmp(got[i], want[i]) != 0)
            fail_msg("%s: name %d is \"%s\", expected \"%s\"", what, i, got[i], want[i]);
}

/* The names made from each case's settings: the defaults, each setting given, and
 * empty strings, which are unset. */
static void test_names(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        tl_app_settings s;
        const char *const want[8];
    } cases[] = {
        {"defaults",
         {.instance_id = "host-1"},
         {"tally", "tally-users-changelog", "tally-tally-host-1", "tally-rollup",
          "tally-tally-host-1-rollup", "tally-rollup-state", "tally-rollup-partials",
          "tally-model"}},
        {"settings",
         {.group_id = "shop", .changelog_topic = "cl", .partials_topic = "pt", .instance_id = "a"},
         {"shop", "cl", "tally-shop-a", "shop-rollup", "tally-shop-a-rollup", "shop-rollup-state",
          "pt", "shop-model"}},
        {"empty strings",
         {.group_id = "", .changelog_topic = "", .partials_topic = "", .instance_id = "a"},
         {"tally", "tally-users-changelog", "tally-tally-a", "tally-rollup", "tally-tally-a-rollup",
          "tally-rollup-state", "tally-rollup-partials", "tally-model"}},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        tl_app_names n;
        char err[256] = "";
        assert_int_equal(tl_app_names_make(&cases[k].s, &n, err, sizeof(err)), 0);
        assert_names(cases[k].what, &n, cases[k].want);
    }
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
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
