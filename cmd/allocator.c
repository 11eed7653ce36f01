/*
 * allocator.c -- the memory allocator tally runs on.
 *
 * Built with jemalloc (TALLY_JEMALLOC, the default where its package is installed),
 * every allocation of the process goes through it: tally's, librdkafka's and RocksDB's.
 * Against glibc's malloc it cut tally run's CPU per event by 11–18%
 * (docs/benchmarks.md). Its settings: freed pages go back to the system after about a
 * second (dirty_decay_ms) instead of ten, and for good (muzzy_decay_ms:0, no lazy
 * MADV_FREE stage that leaves them counted as resident until the kernel wants them), so
 * that the resident size the runtime bounds (docs/operations.md, "Memory") follows what
 * is in use. MALLOC_CONF in the environment overrides them.
 */
#include "allocator.h"

#ifdef TALLY_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <stdio.h>

const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";

const char *tl_cmd_allocator(void)
{
    static char name[64];
    const char *v = NULL;
    size_t sz = sizeof(v);
    if (!name[0])
        snprintf(name, sizeof(name), "jemalloc %s",
                 mallctl("version", &v, &sz, NULL, 0) == 0 && v ? v : "?");
    return name;
}
#else
const char *tl_cmd_allocator(void) { return "glibc malloc"; }
#endif
