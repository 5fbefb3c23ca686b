/*
 * allocators.c - catena-bench's allocators: the columns of every table.
 * The in-arena heaps run in this process (arena.c), the process
 * allocators each in a driver process of their own (driver.c, process.c).
 */
#define _GNU_SOURCE
#include "ctx.h"

const char *const bench_anames[A_COUNT] = {
    "catena", "catena-contig", "mpheap",   "mpheap-gc",     "catena-gc",
    "glibc",  "jemalloc",      "mimalloc", "catena-preload"};

const char *const bench_adesc[A_COUNT] = {
    "catena, chained (this library)",
    "catena with chaining disabled: contiguous runs only, same index",
    "MicroPython-style heap (bench/mpheap.c), explicit frees",
    "MicroPython-style heap, GC-only: drops clear the reference, collect on "
    "failure then retry",
#if BENCH_CATENA_GC
    "catena, GC-only: drops clear the reference; its collector (lib/gc.c) "
    "runs when an allocation fails, then the allocation is retried",
#else
    "catena, GC-only SIMULATED (no collector in this build): drops are "
    "freed in bulk only when an allocation fails, then retry",
#endif
    "glibc malloc (own process)",
    "jemalloc (own process)",
    "mimalloc (own process)",
    "catena LD_PRELOAD shim (own process, glibc driver)"};

_Static_assert((int)A_CATENA == (int)H_CATENA &&
                   (int)A_CONTIG == (int)H_CONTIG &&
                   (int)A_MPHEAP == (int)H_MPHEAP &&
                   (int)A_MPGC == (int)H_MPGC && (int)A_CATGC == (int)H_CATGC,
               "an in-arena allocator's column is its heap kind");

bool bench_is_arena(int a)
{
    return a <= A_CATGC;
}

bool bench_is_micro(int w)
{
    return w >= W_MICRO1 && w <= W_MICROBIG;
}
