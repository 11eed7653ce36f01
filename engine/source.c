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

/* items, an array of n slots of size bytes with room for *cap, with room for one more: as
 * it was while there is, else reallocated with twice the room (first: the first room). */
static void *room_for_one(void *items, int n, int *cap, int first, size_t size)
{
    if (n != *cap) return items;
    *cap = *cap ? *cap * 2 : first;
    return tl_xrealloc(items, (size_t)*cap * size);
}

tl_event *tl_batch_push(tl_batch *b)
{
    b->events = room_for_one(b->events, b->n, &b->cap, 1024, sizeof(*b->events));
    tl_event *ev = &b->events[b->n++];
    memset(ev, 0, sizeof(*ev));
    return ev;
}

tl_dlq_record *tl_batch_push_bad(tl_batch *b)
{
    b->bad = room_for_one(b->bad, b->n_bad, &b->cap_bad, 16, sizeof(*b->bad));
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
