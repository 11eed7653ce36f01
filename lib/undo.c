/*
 * undo.c -- the journal of undo.h.
 */
#include "undo.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void tl_undo_mark(tl_undo *u, size_t n_idx, size_t row_size)
{
    if (!u->mark) {
        u->mark = tl_xcalloc(n_idx ? n_idx : 1, sizeof(*u->mark));
        u->n_idx = n_idx;
        u->row_size = row_size;
    }
    if (++u->epoch == 0) { /* wrapped: no index may look saved */
        memset(u->mark, 0, u->n_idx * sizeof(*u->mark));
        u->epoch = 1;
    }
    u->n_rows = 0;
    u->on = 1;
}

void tl_undo_off(tl_undo *u)
{
    u->on = 0;
    u->n_rows = 0;
}

void tl_undo_free(tl_undo *u)
{
    free(u->mark);
    free(u->rows);
    memset(u, 0, sizeof(*u));
}

void *tl_undo_push(tl_undo *u)
{
    if (u->n_rows == u->cap_rows) {
        u->cap_rows = u->cap_rows ? u->cap_rows * 2 : 256;
        u->rows = tl_xrealloc(u->rows, u->cap_rows * u->row_size);
    }
    return u->rows + u->n_rows++ * u->row_size;
}
