/*
 * allocator.h -- the memory allocator the process runs on (allocator.c). Its own header,
 * so that the benchmarks built beside tally link the same allocator with its settings.
 */
#ifndef TL_CMD_ALLOCATOR_H
#define TL_CMD_ALLOCATOR_H

/* The allocator the process runs on, e.g. "jemalloc 5.3.0-..." or "glibc malloc". */
const char *tl_cmd_allocator(void);

#endif
