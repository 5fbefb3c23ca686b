/*
 * scan.c - the free-run layer for the smallest code (./configure
 * --enable-scan, usually with --enable-small; CATENA_SCAN): the same
 * _catena_run_* interface as index.c, with no index at all.
 *
 * The block table is the only record of the free runs (a FREE start, then
 * TAILs: I1, I2), so a free run carries no header or footer and the heap
 * no class lists; I3 holds trivially (every free run is "indexed" by its
 * table entries).  A search reads the table a 32-bit word (eight blocks) at
 * a time, skipping words that hold no FREE state, as MicroPython's gc.c
 * scans its allocation table.  The price is time, not memory:
 *
 *   fit, largest, smallest   O(N / 8) table words plus one run-length
 *                            read per free run: O(N / 8) in all
 *   release (free)           O(d / 16) for the object's length, plus
 *                            O(L / 8) to find the start of a left
 *                            neighbour run of L blocks
 *   greedy_extents           one O(N / 8) pass per distinct run length
 *                            the chain takes: O(k * N / 8) for k extents
 *   take, take_mid, take_last, insert, unlink   O(run length / 16)
 *
 * Nothing in a free run is ever read or written, so a program that writes
 * into freed memory cannot corrupt the heap's bookkeeping: there is no
 * free-run header to check, and CATENA_ECORRUPT is never reported for one.
 * The guarantee does not change: every free block is found by a scan.
 */
#include "catena_int.h"

/* Table bytes 4w .. 4w+3 (blocks 8w .. 8w+7) as a word with block 8w + j
 * in bits 4j..4j+3, read a byte at a time: the table need not be aligned
 * and the byte order does not matter. */
static uint32_t word8(const catena_heap_t *h, size_t w)
{
    const unsigned char *t = h->table + w * 4;
    return (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
           (uint32_t)t[3] << 24;
}

/* Does word x hold a FREE (zero) nibble? */
static bool has_free(uint32_t x)
{
    return (~(x | x >> 1 | x >> 2 | x >> 3) & 0x11111111u) != 0;
}

/* The first free run start at or after block i, or nblocks; eight blocks
 * per step where the whole word is in the heap. */
static size_t next_free(const catena_heap_t *h, size_t i)
{
    size_t n = h->nblocks;
    while (i < n) {
        CATENA_STEP(h, 1);
        if (!(i & 7) && i + 8 <= n && !has_free(word8(h, i / 8)))
            i += 8;
        else if (block_state(h, i) == ST_FREE)
            return i;
        else
            i++;
    }
    return n;
}

/* Start of the run holding block i (block 0 starts one, I1): back over
 * the TAILs, eight at a time where a whole word is TAIL. */
static size_t start_of(const catena_heap_t *h, size_t i)
{
    while (block_state(h, i) == ST_TAIL) {
        CATENA_STEP(h, 1);
        if ((i & 7) == 7 && i >= 8 && word8(h, i / 8) == ST_TAIL * 0x11111111u)
            i -= 8;
        else
            i--;
    }
    return i;
}

/* Free run lengths are read from the table: a run cannot be corrupt. */
size_t _catena_run_len(catena_heap_t *h, size_t s)
{
    return _catena_run_length(h, s);
}

/* One class: the heap keeps a single (always empty) list head, so that
 * heap.c's layout and the validator's index check need no special case. */
unsigned _catena_bin_of(size_t len)
{
    (void)len;
    return 0;
}

/* Block s (FREE) starts a free run of len blocks: count it.  Also undoes
 * _catena_run_unlink, whose TAIL at s becomes FREE again. */
void _catena_run_insert(catena_heap_t *h, size_t s, size_t len)
{
    if (block_state(h, s) == ST_TAIL)
        TAIL_TO_FREE(h, s);
    h->free_blocks += len;
    h->free_runs++;
}

/* Hide free run s from the searches until _catena_run_insert(s) puts it
 * back: its start becomes a TAIL of the run before it (the table is the
 * index, so that is the only way to take a run out of it).  The caller
 * (a grow counting extents as if its neighbour were taken) restores it
 * before anything else reads the table. */
void _catena_run_unlink(catena_heap_t *h, size_t s)
{
    size_t len = _catena_run_length(h, s);
    FREE_TO_TAIL(h, s);
    h->free_blocks -= len;
    h->free_runs--;
}

/* The first free run (in address order) of at least `want` blocks. */
size_t _catena_run_fit(catena_heap_t *h, size_t want)
{
    for (size_t s = next_free(h, 0); s < h->nblocks;) {
        size_t len = _catena_run_length(h, s);
        if (len >= want)
            return s;
        s = next_free(h, s + len);
    }
    return CATENA_NIL;
}

/* The first longest (`longest`) or first shortest free run; NIL if none. */
static size_t extreme(const catena_heap_t *h, bool longest)
{
    size_t best = CATENA_NIL, bl = 0;
    for (size_t s = next_free(h, 0); s < h->nblocks;) {
        size_t len = _catena_run_length(h, s);
        if (best == CATENA_NIL || (longest ? len > bl : len < bl)) {
            best = s;
            bl = len;
        }
        s = next_free(h, s + len);
    }
    return best;
}

size_t _catena_run_largest(const catena_heap_t *h)
{
    return extreme(h, true);
}

size_t _catena_run_smallest(const catena_heap_t *h)
{
    return extreme(h, false);
}

/* Remove `want` blocks from the start of free run s; the rest stays free.
 * The caller gives block s its new state. */
void _catena_run_take(catena_heap_t *h, size_t s, size_t want)
{
    size_t len = _catena_run_length(h, s);
    CATENA_ASSERT(h, want && want <= len);
    if (len > want)
        TAIL_TO_FREE(h, s + want);
    else
        h->free_runs--;
    h->free_blocks -= want;
}

size_t _catena_run_claim(catena_heap_t *h, size_t want, bool probe)
{
    (void)probe; /* a scan examines every run */
    size_t s = _catena_run_fit(h, want);
    if (s != CATENA_NIL)
        _catena_run_take(h, s, want);
    return s;
}

/* As index.c: `want` blocks from the middle of free run s (len > want),
 * free runs left on both sides; the first taken block becomes `to`. */
size_t _catena_run_take_mid(catena_heap_t *h, size_t s, size_t want,
                            unsigned to)
{
    size_t len = _catena_run_length(h, s), gap = (len - want) / 2;
    if (gap == 0) {
        _catena_run_take(h, s, want);
        FREE_TO_HEAD(h, s, to);
        return s;
    }
    size_t at = s + gap, right = at + want;
    if (right < s + len) {
        TAIL_TO_FREE(h, right);
        h->free_runs++;
    }
    TAIL_TO_HEAD(h, at, to);
    h->free_blocks -= want;
    return at;
}

/* The last block of free run s; the caller gives it its new state. */
size_t _catena_run_take_last(catena_heap_t *h, size_t s)
{
    size_t len = _catena_run_length(h, s);
    if (len == 1)
        h->free_runs--;
    h->free_blocks--;
    return s + len - 1;
}

/* Run [s, s+len) becomes free, merged with free neighbours (I2): a free
 * run after it and s itself become TAILs of the run that starts first. */
void _catena_run_release(catena_heap_t *h, size_t s, size_t len)
{
    CATENA_ASSERT(h, s + len <= h->nblocks);
    size_t r = s + len;
    bool left = s > 0 && block_state(h, start_of(h, s - 1)) == ST_FREE;
    if (r < h->nblocks && block_state(h, r) == ST_FREE) {
        FREE_TO_TAIL(h, r);
        h->free_runs--;
    }
    if (!left) {
        RUN_TO_FREE(h, s);
        h->free_runs++;
    } else if (block_state(h, s) != ST_TAIL) {
        HEAD_TO_TAIL(h, s);
    }
    h->free_blocks += len;
}

/* How many extents take_extents (alloc.c) will cut for `want` blocks: it
 * takes the longest runs first, so the count is the fewest longest runs
 * that hold `want` blocks.  One pass per distinct length used. */
size_t _catena_greedy_extents(catena_heap_t *h, size_t want)
{
    size_t k = 0, below = SIZE_MAX;
    for (;;) {
        size_t m = 0, c = 0;
        for (size_t s = next_free(h, 0); s < h->nblocks;) {
            size_t len = _catena_run_length(h, s);
            if (len < below && len >= m) {
                c = len == m ? c + 1 : 1;
                m = len;
            }
            s = next_free(h, s + len);
        }
        if (!m)
            return SIZE_MAX;
        if (c * m >= want) /* ceil(want / m) of them */
            return k + (want + m - 1) / m;
        k += c;
        want -= c * m;
        below = m;
    }
}
