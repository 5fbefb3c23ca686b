/*
 * mpheap.c - a MicroPython-style heap: 2-bit allocation table, 1-bit
 * finaliser table, first-fit contiguous runs, conservative mark-sweep with a
 * bounded mark stack.  See mpheap.h for the interface and its contracts.
 *
 * Arena layout:
 *
 *     [struct mp_heap][alloc table: N/4 bytes][finaliser table: N/8 bytes]
 *     [padding to B][block 0][block 1] ... [block N-1]
 *
 * Allocation-table entry of a block (2 bits, 4 blocks per byte, block b in
 * bits 2*(b%4)..2*(b%4)+1 of byte b/4):
 *     FREE  the block belongs to no object
 *     HEAD  first block of an object
 *     TAIL  a further block of the object whose HEAD precedes it
 *     MARK  a HEAD reached by the current collection (only during one)
 *
 * The "last free" hint: every block below h->last_free is in use.  It moves
 * up only after a one-block allocation (the block found is the first free
 * block, so everything before it is in use), moves down on free, and is
 * reset to 0 by a sweep.
 */
#include "mpheap.h"

#include <string.h>

enum { AT_FREE = 0u, AT_HEAD = 1u, AT_TAIL = 2u, AT_MARK = 3u };

#define NO_BLOCK SIZE_MAX

struct mp_heap {
    uint8_t *atb;         /* allocation table */
    uint8_t *ftb;         /* finaliser table */
    uint8_t *pool;        /* block 0, aligned to bsize */
    size_t nblocks;
    size_t bsize;         /* B: 16 or 32 */
    unsigned bshift;      /* log2(B) */
    size_t last_free;     /* all blocks below are in use */
    unsigned lock;        /* nesting depth; > 0 forbids alloc/free */
    bool collecting;      /* between mp_collect_start and mp_collect_end */
    bool in_collect_cb;   /* mp_alloc is running the collect callback */
    bool overflow;        /* a push found the mark stack full */
    size_t sp;            /* mark stack depth */
    size_t stack[MP_MARK_STACK];
    const void *moving;   /* object mp_realloc is moving: an implicit root */
    mp_collect_fn collect;
    void *collect_ctx;
    mp_finaliser_fn fin;
    void *fin_ctx;
    size_t collections, failed, gc_freed, overflows;
};

/* ---- tables ---------------------------------------------------------- */

static inline unsigned at_get(const mp_heap_t *h, size_t b)
{
    return ((unsigned)h->atb[b >> 2] >> ((b & 3u) << 1)) & 3u;
}

static inline void at_set(mp_heap_t *h, size_t b, unsigned v)
{
    unsigned sh = (unsigned)((b & 3u) << 1);
    unsigned x = h->atb[b >> 2];
    h->atb[b >> 2] = (uint8_t)((x & ~(3u << sh)) | (v << sh));
}

static inline bool ft_get(const mp_heap_t *h, size_t b)
{
    return (((unsigned)h->ftb[b >> 3] >> (b & 7u)) & 1u) != 0;
}

static inline void ft_set(mp_heap_t *h, size_t b)
{
    h->ftb[b >> 3] = (uint8_t)(h->ftb[b >> 3] | (1u << (b & 7u)));
}

static inline void ft_clear(mp_heap_t *h, size_t b)
{
    h->ftb[b >> 3] = (uint8_t)(h->ftb[b >> 3] & ~(1u << (b & 7u)));
}

static inline uint8_t *block_addr(const mp_heap_t *h, size_t b)
{
    return h->pool + (b << h->bshift);
}

/* Block index of address a when a is the first byte of a block. */
static bool block_of(const mp_heap_t *h, uintptr_t a, size_t *b)
{
    uintptr_t base = (uintptr_t)h->pool;
    if (a < base)
        return false;
    uintptr_t off = a - base;
    if ((off & (uintptr_t)(h->bsize - 1u)) != 0)
        return false;
    off >>= h->bshift;
    if (off >= (uintptr_t)h->nblocks)
        return false;
    *b = (size_t)off;
    return true;
}

/* Block index of a live object's handle p (HEAD, or MARK if `marked_ok`). */
static bool head_of(const mp_heap_t *h, const void *p, bool marked_ok,
                    size_t *b)
{
    if (p == NULL || !block_of(h, (uintptr_t)p, b))
        return false;
    unsigned e = at_get(h, *b);
    return e == AT_HEAD || (marked_ok && e == AT_MARK);
}

/* Blocks of the object whose head is block b. */
static size_t obj_blocks(const mp_heap_t *h, size_t b)
{
    size_t e = b + 1;
    while (e < h->nblocks && at_get(h, e) == AT_TAIL)
        e++;
    return e - b;
}

static size_t blocks_for(const mp_heap_t *h, size_t n)
{
    return (n >> h->bshift) + (size_t)((n & (h->bsize - 1u)) != 0);
}

/* ---- init ------------------------------------------------------------ */

/* Does a heap of n blocks fit between `tables` and `end`?  Stores the pool
 * address in *pool. */
static bool layout_fits(uintptr_t tables, uintptr_t end, size_t n, size_t bs,
                        uintptr_t *pool)
{
    uintptr_t p = tables + (uintptr_t)((n + 3u) / 4u) + (uintptr_t)((n + 7u) / 8u);
    if (p > end || end - p < bs)
        return false;
    p = (p + (uintptr_t)(bs - 1u)) & ~(uintptr_t)(bs - 1u);
    if (p > end || (end - p) / bs < n)
        return false;
    *pool = p;
    return true;
}

mp_heap_t *mp_heap_init(void *arena, size_t size, size_t block_size)
{
    uintptr_t start = (uintptr_t)arena, pool = 0;
    if (arena == NULL || start % sizeof(void *) != 0)
        return NULL;
    if (block_size != 16u && block_size != 32u)
        return NULL;
    if (size < sizeof(mp_heap_t) || size > UINTPTR_MAX - start)
        return NULL;
    uintptr_t tables = start + sizeof(mp_heap_t), end = start + size;
    size_t avail = (size_t)(end - tables);
    /* Each group of 8 blocks costs 8B + 2 + 1 bytes; padding may cost one
     * more block, so start slightly above the estimate and walk down. */
    size_t n = avail / (8u * block_size + 3u) * 8u + 8u;
    while (n > 0 && !layout_fits(tables, end, n, block_size, &pool))
        n--;
    if (n == 0)
        return NULL;

    mp_heap_t *h = arena;
    memset(h, 0, sizeof *h);
    h->atb = (uint8_t *)tables;
    h->ftb = h->atb + (n + 3u) / 4u;
    h->pool = (uint8_t *)pool;
    h->nblocks = n;
    h->bsize = block_size;
    h->bshift = block_size == 16u ? 4u : 5u;
    memset(h->atb, 0, (n + 3u) / 4u);
    memset(h->ftb, 0, (n + 7u) / 8u);
    return h;
}

/* ---- allocation ------------------------------------------------------ */

/* First block of the lowest run of `need` free blocks at or after the hint,
 * or NO_BLOCK.  Whole table bytes are examined at once when possible. */
static size_t find_run(const mp_heap_t *h, size_t need)
{
    size_t i = h->last_free, run = 0, n = h->nblocks;
    if (need > n)
        return NO_BLOCK;
    while (i < n) {
        if ((i & 3u) == 0 && n - i >= 4u) {
            unsigned x = h->atb[i >> 2];
            if (x == 0) { /* four free blocks */
                run += 4u;
                if (run >= need)
                    return i + 4u - run;
                i += 4u;
                continue;
            }
            if (((x | (x >> 1)) & 0x55u) == 0x55u) { /* none free */
                run = 0;
                i += 4u;
                continue;
            }
        }
        if (at_get(h, i) == AT_FREE) {
            if (++run == need)
                return i + 1u - need;
        } else {
            run = 0;
        }
        i++;
    }
    return NO_BLOCK;
}

void *mp_alloc(mp_heap_t *h, size_t n, unsigned flags)
{
    if (n == 0 || h->lock > 0)
        return NULL;
    size_t need = blocks_for(h, n);
    bool collected = false;
    size_t s;
    for (;;) {
        s = find_run(h, need);
        if (s != NO_BLOCK)
            break;
        if (collected || h->collect == NULL || h->in_collect_cb)
            break;
        collected = true;
        h->in_collect_cb = true;
        h->collect(h, h->collect_ctx);
        h->in_collect_cb = false;
        if (h->lock > 0) /* the callback left the heap locked */
            break;
    }
    if (s == NO_BLOCK) {
        h->failed++;
        return NULL;
    }
    at_set(h, s, AT_HEAD);
    for (size_t k = 1; k < need; k++)
        at_set(h, s + k, AT_TAIL);
    if (need == 1)
        h->last_free = s + 1u;
    if (flags & MP_HAS_FINALISER)
        ft_set(h, s);
    uint8_t *p = block_addr(h, s);
    memset(p, 0, need << h->bshift);
    return p;
}

/* Free blocks [from, to) and lower the hint. */
static void free_blocks(mp_heap_t *h, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        at_set(h, k, AT_FREE);
    if (from < h->last_free)
        h->last_free = from;
}

void mp_free(mp_heap_t *h, void *p)
{
    size_t b;
    if (h->lock > 0 || !head_of(h, p, false, &b))
        return;
    ft_clear(h, b);
    free_blocks(h, b, b + obj_blocks(h, b));
}

size_t mp_nbytes(mp_heap_t *h, const void *p)
{
    size_t b;
    if (!head_of(h, p, true, &b))
        return 0;
    return obj_blocks(h, b) << h->bshift;
}

void *mp_realloc(mp_heap_t *h, void *p, size_t n, bool allow_move)
{
    if (p == NULL)
        return mp_alloc(h, n, 0);
    if (n == 0) {
        mp_free(h, p);
        return NULL;
    }
    size_t b;
    if (h->lock > 0 || !head_of(h, p, false, &b))
        return NULL;
    size_t have = obj_blocks(h, b), need = blocks_for(h, n);
    if (need == have)
        return p;
    if (need < have) {
        free_blocks(h, b + need, b + have);
        return p;
    }
    /* Grow in place when the blocks that follow are free. */
    size_t end = b + have, extra = need - have, k = 0;
    if (extra <= h->nblocks - end)
        while (k < extra && at_get(h, end + k) == AT_FREE)
            k++;
    if (k == extra) {
        for (k = 0; k < extra; k++)
            at_set(h, end + k, AT_TAIL);
        memset(block_addr(h, end), 0, extra << h->bshift);
        return p;
    }
    if (!allow_move)
        return NULL;
    /* Move.  A collection run by mp_alloc treats p as a root. */
    h->moving = p;
    void *q = mp_alloc(h, n, ft_get(h, b) ? MP_HAS_FINALISER : 0u);
    h->moving = NULL;
    if (q == NULL)
        return NULL;
    memcpy(q, p, have << h->bshift);
    mp_free(h, p);
    return q;
}

void mp_lock(mp_heap_t *h)
{
    h->lock++;
}

void mp_unlock(mp_heap_t *h)
{
    if (h->lock > 0)
        h->lock--;
}

void mp_set_collect(mp_heap_t *h, mp_collect_fn cb, void *ctx)
{
    h->collect = cb;
    h->collect_ctx = ctx;
}

void mp_set_finaliser(mp_heap_t *h, mp_finaliser_fn fn, void *ctx)
{
    h->fin = fn;
    h->fin_ctx = ctx;
}

/* ---- collection ------------------------------------------------------ */

/* Scan the object at marked head b, and everything its scan pushes, until
 * the mark stack is empty.  Unmarked heads found are marked, then pushed;
 * when the stack is full they stay marked but unscanned and the overflow
 * flag is set, for mp_collect_end's rescan. */
static void scan_from(mp_heap_t *h, size_t b)
{
    for (;;) {
        const uint8_t *p = block_addr(h, b);
        size_t words = (obj_blocks(h, b) << h->bshift) / sizeof(void *);
        for (size_t k = 0; k < words; k++) {
            uintptr_t w;
            size_t c;
            memcpy(&w, p + k * sizeof(void *), sizeof w);
            if (!block_of(h, w, &c) || at_get(h, c) != AT_HEAD)
                continue;
            at_set(h, c, AT_MARK);
            if (h->sp < MP_MARK_STACK) {
                h->stack[h->sp++] = c;
            } else {
                h->overflow = true;
                h->overflows++;
            }
        }
        if (h->sp == 0)
            return;
        b = h->stack[--h->sp];
    }
}

static void mark_root(mp_heap_t *h, const void *p)
{
    size_t b;
    if (!head_of(h, p, false, &b))
        return;
    at_set(h, b, AT_MARK);
    scan_from(h, b);
}

void mp_collect_start(mp_heap_t *h)
{
    if (h->collecting)
        return;
    h->collecting = true;
    h->lock++;
    h->sp = 0;
    h->overflow = false;
    if (h->moving != NULL)
        mark_root(h, h->moving);
}

void mp_collect_root(mp_heap_t *h, void **ptrs, size_t n)
{
    if (!h->collecting)
        return;
    for (size_t i = 0; i < n; i++)
        mark_root(h, ptrs[i]);
}

void mp_collect_end(mp_heap_t *h)
{
    if (!h->collecting)
        return;
    /* Overflow: some marked objects were never scanned.  Rescan every
     * marked object (already-marked children are skipped) until a whole
     * pass completes without overflowing. */
    while (h->overflow) {
        h->overflow = false;
        for (size_t b = 0; b < h->nblocks; b++)
            if (at_get(h, b) == AT_MARK)
                scan_from(h, b);
    }
    /* Sweep.  The finaliser runs before the object's blocks are freed, so
     * it sees the whole object; the heap is still locked. */
    bool dying = false;
    size_t freed = 0;
    for (size_t b = 0; b < h->nblocks; b++) {
        switch (at_get(h, b)) {
        case AT_HEAD:
            if (ft_get(h, b)) {
                ft_clear(h, b);
                if (h->fin != NULL)
                    h->fin(h->fin_ctx, block_addr(h, b));
            }
            at_set(h, b, AT_FREE);
            freed++;
            dying = true;
            break;
        case AT_TAIL:
            if (dying) {
                at_set(h, b, AT_FREE);
                freed++;
            }
            break;
        case AT_MARK:
            at_set(h, b, AT_HEAD);
            dying = false;
            break;
        default:
            break;
        }
    }
    h->gc_freed += freed;
    h->last_free = 0;
    h->collections++;
    h->collecting = false;
    if (h->lock > 0)
        h->lock--;
}

/* ---- statistics ------------------------------------------------------ */

void mp_stats(mp_heap_t *h, struct mp_stats *st)
{
    size_t run = 0;
    memset(st, 0, sizeof *st);
    st->block_size = h->bsize;
    st->total_blocks = h->nblocks;
    for (size_t b = 0; b < h->nblocks; b++) {
        unsigned e = at_get(h, b);
        if (e == AT_FREE) {
            if (run++ == 0)
                st->free_runs++;
            st->free_blocks++;
            if (run > st->largest_free_run)
                st->largest_free_run = run;
            continue;
        }
        run = 0;
        if (e == AT_HEAD || e == AT_MARK)
            st->objects++;
    }
    st->used_blocks = st->total_blocks - st->free_blocks;
    st->collections = h->collections;
    st->failed_allocs = h->failed;
    st->blocks_freed_by_gc = h->gc_freed;
    st->mark_overflows = h->overflows;
}
