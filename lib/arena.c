/*
 * arena.c -- bump allocator for per-batch data.
 *
 * Blocks are chained; an allocation larger than a block gets a block of its own.
 * Reset moves every block to the spare list, so steady-state batches allocate
 * nothing from malloc. Alignment is 8 bytes, enough for every record type here.
 * Rejected: one big realloc'd buffer (moving it would invalidate pointers already
 * handed out) and per-object malloc (ten times slower on the replay path).
 */
#include "arena.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_arena_block {
    tl_arena_block *next;
    size_t cap, used;
    _Alignas(8) char data[];
};

void tl_arena_init(tl_arena *a, size_t block_size)
{
    memset(a, 0, sizeof(*a));
    a->block_size = block_size ? block_size : 64 * 1024;
}

static tl_arena_block *arena_new_block(tl_arena *a, size_t need)
{
    tl_arena_block *b = a->spare;
    if (b && b->cap >= need) {
        a->spare = b->next;
    } else {
        size_t cap = need > a->block_size ? need : a->block_size;
        b = tl_xmalloc(sizeof(*b) + cap);
        b->cap = cap;
    }
    b->used = 0;
    b->next = a->head;
    a->head = b;
    return b;
}

void *tl_arena_alloc(tl_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    tl_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) b = arena_new_block(a, n);
    void *p = b->data + b->used;
    b->used += n;
    a->used_total += n;
    return p;
}

char *tl_arena_strndup(tl_arena *a, const char *s, size_t n)
{
    char *p = tl_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *tl_arena_strdup(tl_arena *a, const char *s)
{
    return s ? tl_arena_strndup(a, s, strlen(s)) : NULL;
}

char *tl_arena_printf(tl_arena *a, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return tl_arena_strdup(a, "");
    char *p = tl_arena_alloc(a, (size_t)n + 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

void tl_arena_reset(tl_arena *a)
{
    /* Keep only blocks of the standard size as spares; free oversized ones. */
    tl_arena_block *b = a->head;
    while (b) {
        tl_arena_block *next = b->next;
        if (b->cap == a->block_size) {
            b->next = a->spare;
            a->spare = b;
        } else {
            free(b);
        }
        b = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

void tl_arena_destroy(tl_arena *a)
{
    tl_arena_reset(a);
    tl_arena_block *b = a->spare;
    while (b) {
        tl_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->spare = NULL;
}
