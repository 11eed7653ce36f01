/*
 * source.c -- the tl_batch container shared by every source, and tl_source_destroy.
 *
 * Event slots and bad-record slots are plain growable arrays; every string an event
 * points to lives in the batch's arena. Reset keeps all memory, so a steady stream
 * of batches allocates nothing after the first few.
 */
#include "source.h"
#include "lib/util.h"

#include <stdlib.h>
#include <string.h>

void tl_batch_init(tl_batch *b)
{
    memset(b, 0, sizeof(*b));
    tl_arena_init(&b->arena, 256 * 1024);
}

void tl_batch_reset(tl_batch *b)
{
    b->n = 0;
    b->n_bad = 0;
    tl_arena_reset(&b->arena);
}

tl_event *tl_batch_push(tl_batch *b)
{
    TL_GROW(b->events, b->n, b->cap, 1024);
    tl_event *ev = &b->events[b->n++];
    memset(ev, 0, sizeof(*ev));
    return ev;
}

tl_dlq_record *tl_batch_push_bad(tl_batch *b)
{
    TL_GROW(b->bad, b->n_bad, b->cap_bad, 16);
    tl_dlq_record *r = &b->bad[b->n_bad++];
    memset(r, 0, sizeof(*r));
    return r;
}

void tl_batch_destroy(tl_batch *b)
{
    free(b->events);
    free(b->bad);
    tl_arena_destroy(&b->arena);
    memset(b, 0, sizeof(*b));
}

void tl_source_destroy(tl_source *s)
{
    if (s) s->destroy(s->ctx);
}
