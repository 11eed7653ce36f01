/*
 * test_undo.c -- lib/undo.h: the first change to an index since a mark saves a row, later
 * ones do not, also across the epochs' wrap (every 255 marks); off saves nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/undo.h"

static void test_first_change_per_mark(void **state)
{
    (void)state;
    tl_undo u;
    memset(&u, 0, sizeof(u));
    assert_null(tl_undo_save(&u, 0)); /* never marked: off */
    for (int round = 0; round < 600; round++) { /* past two wraps of the epochs */
        tl_undo_mark(&u, 8, sizeof(int));
        assert_int_equal(u.n_rows, 0);
        for (int k = 0; k < 3; k++)
            for (size_t i = (size_t)round % 2; i < 8; i += 2) {
                int *row = tl_undo_save(&u, i);
                if (k == 0) {
                    if (!row) fail_msg("round %d: index %zu not saved", round, i);
                    *row = (int)i;
                } else if (row) {
                    fail_msg("round %d: index %zu saved twice", round, i);
                }
            }
        assert_int_equal(u.n_rows, 4);
        for (size_t k = 0; k < 4; k++)
            assert_int_equal(*(const int *)tl_undo_row(&u, k), (int)(2 * k + (size_t)round % 2));
    }
    tl_undo_off(&u);
    assert_null(tl_undo_save(&u, 1));
    assert_int_equal(u.n_rows, 0);
    tl_undo_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_change_per_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
