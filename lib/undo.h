/*
 * undo.h -- a journal of what changed since a mark, for taking it back: the first change
 * to each of n indexed values saves a row (the caller's, of a fixed size) with the state
 * the mark left; later changes to the same index save nothing. The learners keep one
 * (model/ftrl.c, model/seq.c, model/categories.c) so that an aborted transaction's
 * learning can be undone.
 *
 * An index costs a byte once the journal has been used (the epoch of its last save, which
 * wraps every 255 marks: the marks are then cleared), a changed index one row.
 * tl_undo_mark starts or restarts the journal (the rows are forgotten), tl_undo_off ends
 * it; while it is off, tl_undo_save saves nothing.
 */
#ifndef TL_UNDO_H
#define TL_UNDO_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_undo {
    unsigned char *mark, epoch; /* mark[i] == epoch: index i saved since the mark */
    size_t n_idx;
    char *rows;
    size_t row_size, n_rows, cap_rows;
    int on;
} tl_undo;

/* Starts (or restarts) the journal over n_idx indexes, with rows of row_size bytes. */
void tl_undo_mark(tl_undo *u, size_t n_idx, size_t row_size);
void tl_undo_off(tl_undo *u);
void tl_undo_free(tl_undo *u);

void *tl_undo_push(tl_undo *u);

/* Before index i changes: where to write its row, if it is the first change since the
 * mark (NULL: off, or saved already). */
static inline void *tl_undo_save(tl_undo *u, size_t i)
{
    if (!u->on || u->mark[i] == u->epoch) return NULL;
    u->mark[i] = u->epoch;
    return tl_undo_push(u);
}

/* The k-th row saved since the mark. */
static inline const void *tl_undo_row(const tl_undo *u, size_t k)
{
    return u->rows + k * u->row_size;
}

#endif
