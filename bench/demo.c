/*
 * demo.c - the problem and the fix in one screen: a device-sized heap
 * (64 KiB) after a history of small allocations, then bytearray(4000).
 * A MicroPython-style heap refuses it although the free memory is there;
 * catena (same arena, same history) serves it as a chain.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "catena.h"
#include "mpheap.h"

#define ARENA (64 * 1024)
static uint64_t a1[ARENA / 8], a2[ARENA / 8];
static void *p1[4096], *p2[4096];

int main(void)
{
    catena_heap_t *h;
    mp_heap_t *m = mp_heap_init(a1, sizeof a1, catena_block_size());
    if (catena_init(a2, sizeof a2, &h) || !m)
        return 1;
    /* the history: small objects, then every other one dropped */
    size_t n = 0;
    for (; n < 4096; n++) {
        size_t sz = 16 + (n * 37) % 48;
        p1[n] = mp_alloc(m, sz, 0);
        p2[n] = catena_alloc(h, sz);
        if (!p1[n] || !p2[n])
            break;
    }
    for (size_t i = 0; i < n; i += 2) {
        mp_free(m, p1[i]);
        catena_free(h, p2[i]);
    }
    struct mp_stats ms;
    struct catena_stats cs;
    mp_stats(m, &ms);
    catena_stats(h, &cs);
    void *x = mp_alloc(m, 4000, 0);
    void *y = catena_alloc(h, 4000);
    printf("after %zu small objects, half of them freed:\n", n);
    printf("  %-22s free %6zu B, largest run %5zu B: bytearray(4000) %s\n",
           "MicroPython-style heap", ms.free_blocks * ms.block_size,
           ms.largest_free_run * ms.block_size, x ? "ok" : "MemoryError");
    printf("  %-22s free %6zu B, largest run %5zu B: bytearray(4000) %s\n",
           "catena", cs.free_blocks * cs.block_size,
           cs.largest_free_run * cs.block_size,
           y ? (catena_is_contiguous(h, y) ? "ok (contiguous)"
                                           : "ok (chained)")
             : "MemoryError");
    if (y)
        printf("  catena: %zu extents; guaranteed whenever free blocks >= "
               "blocks_for(4000) = %zu\n",
               catena_extents(h, y), catena_blocks_for(4000));
    return y ? 0 : 1;
}
