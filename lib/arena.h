/*
 * arena.h -- a bump allocator for per-batch data.
 *
 * Everything a batch decodes (event strings, output records) is allocated from one
 * arena and released at once with tl_arena_reset() when the batch is done. Not
 * thread-safe: an arena belongs to one thread. Allocation never fails silently:
 * tl_arena_alloc() aborts on out-of-memory, like the rest of tally's allocators
 * (see tl_xmalloc in util.h), because a stream processor that runs out of memory
 * cannot make progress anyway and must restart from its last commit.
 */
#ifndef TL_ARENA_H
#define TL_ARENA_H

#include <stddef.h>

typedef struct tl_arena_block tl_arena_block;

typedef struct tl_arena {
    tl_arena_block *head;   /* block being filled */
    tl_arena_block *spare;  /* emptied blocks kept for reuse */
    size_t block_size;
    size_t used_total;      /* bytes handed out since the last reset */
} tl_arena;

void tl_arena_init(tl_arena *a, size_t block_size);
void *tl_arena_alloc(tl_arena *a, size_t n);           /* 8-byte aligned */
char *tl_arena_strndup(tl_arena *a, const char *s, size_t n);
char *tl_arena_strdup(tl_arena *a, const char *s);     /* NULL in, NULL out */
char *tl_arena_printf(tl_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_arena_reset(tl_arena *a);   /* frees nothing, keeps blocks for reuse */
void tl_arena_destroy(tl_arena *a);

#endif
