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
 *   fit                      O(N / 8) table words plus one run-length
 *                            read per free run: O(N / 8) in all
 *   release (free)           O(d / 16) for the object's length, plus
 *                            O(L / 8) to find the start of a left
 *                            neighbour run of L blocks
 *   a chain's extents and    one pass in address order over the
 *   nodes (greedy_extents,   table: O(N / 8 + k + nodes) for k extents
 *   take_extent, take_node)  (below)
 *   take, insert, unlink     O(run length / 16)
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

/* The FREE (zero) nibbles of word x: bit 4j set iff nibble j is 0. */
static uint32_t free_nibbles(uint32_t x)
{
    return ~(x | x >> 1 | x >> 2 | x >> 3) & 0x11111111u;
}

/* Does word x hold a FREE nibble? */
static bool has_free(uint32_t x)
{
    return free_nibbles(x) != 0;
}

/* The first free run start at or after block i, or nblocks: a word (eight
 * blocks) per step where the whole word is in the heap, its first FREE
 * nibble found within the word. */
static size_t next_free(const catena_heap_t *h, size_t i)
{
    size_t n = h->nblocks;
    while (i < n) {
        CATENA_STEP(h, 1);
        if ((i | 7) < n) {
            uint32_t z = free_nibbles(word8(h, i / 8)) >> (4 * (i & 7));
            if (z) {
                while (!(z & 1)) {
                    z >>= 4;
                    i++;
                }
                return i;
            }
            i = (i | 7) + 1;
        } else if (block_state(h, i) == ST_FREE) {
            return i;
        } else {
            i++;
        }
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

/* Length of the run at s: one nibble read for a one-block run (a
 * fragmented heap's usual free run), else the word-wise count, which on
 * v6-M costs a 64-bit scan through libgcc. */
static size_t len_at(const catena_heap_t *h, size_t s)
{
    if (s + 1 >= h->nblocks || block_state(h, s + 1) != ST_TAIL)
        return 1;
    return _catena_run_length(h, s);
}

/* Free run lengths are read from the table: a run cannot be corrupt. */
size_t _catena_run_len(catena_heap_t *h, size_t s)
{
    return len_at(h, s);
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
    size_t len = len_at(h, s);
    FREE_TO_TAIL(h, s);
    h->free_blocks -= len;
    h->free_runs--;
}

/* The first free run (in address order) of at least `want` blocks. */
size_t _catena_run_fit(catena_heap_t *h, size_t want)
{
    for (size_t s = next_free(h, 0); s < h->nblocks;) {
        size_t len = len_at(h, s);
        if (len >= want)
            return s;
        s = next_free(h, s + len);
    }
    return CATENA_NIL;
}

/* Remove `want` blocks from the start of free run s; the rest stays free.
 * The caller gives block s its new state. */
void _catena_run_take(catena_heap_t *h, size_t s, size_t want)
{
    size_t len = len_at(h, s);
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

/* A chain's extents are taken in one pass in address order and its nodes
 * in one pass down from the top: the guarantee counts k <= d extents, so
 * any choice of runs keeps it, and this one costs O(N / 8 + k + nodes)
 * where taking the longest runs first would cost a scan per extent.  *cur
 * is where the extents' pass goes on: every free block before it has been
 * taken.  The nodes come from the free blocks left, wherever they are:
 * the caller counted them (free_blocks >= d + nodes). */

/* How many extents _catena_run_take_extent will cut for `want` blocks:
 * the free runs in address order up to the one that completes `want`.
 * One pass, O(N / 8). */
size_t _catena_greedy_extents(catena_heap_t *h, size_t want)
{
    size_t k = 0;
    for (size_t s = next_free(h, 0); s < h->nblocks;) {
        size_t len = len_at(h, s);
        k++;
        if (len >= want)
            return k;
        want -= len;
        s = next_free(h, s + len);
    }
    return SIZE_MAX;
}

/* The next extent of a chain: the front of the first free run at or
 * after *cur, up to `want` blocks (`room`, index.c's way to leave a
 * growing tail space, has no use in address order: the rest of the run
 * follows the extent). */
size_t _catena_run_take_extent(catena_heap_t *h, size_t *cur, size_t want,
                               bool room, size_t *len)
{
    (void)room;
    size_t s = next_free(h, *cur), end = s + len_at(h, s);
    if (end > s + want) {
        end = s + want;
        TAIL_TO_FREE(h, end); /* the rest stays a free run */
    } else {
        h->free_runs--;
    }
    h->free_blocks -= end - s;
    FREE_TO_HEAD(h, s, ST_EXT);
    *cur = end;
    *len = end - s;
    return s;
}

/* The highest free run start below block c, or NIL: eight blocks per
 * step where a whole word holds no FREE state. */
static size_t prev_free(const catena_heap_t *h, size_t c)
{
    while (c > 0) {
        CATENA_STEP(h, 1);
        if (!(c & 7) && !has_free(word8(h, c / 8 - 1)))
            c -= 8;
        else if (block_state(h, --c) == ST_FREE)
            return c;
    }
    return CATENA_NIL;
}

/* n blocks for spine nodes, from the top of the heap down (the extents
 * came from the bottom up, so a growing chain's last extent keeps the
 * rest of its run to grow into), linked in-band; the last one taken
 * becomes `first_state` and heads the list.  One pass down the table,
 * O(N / 8 + n). */
size_t _catena_run_take_nodes(catena_heap_t *h, size_t n, unsigned first_state)
{
    size_t head = CATENA_NIL, c = h->nblocks;
    while (n) {
        size_t f = prev_free(h, c);
        CATENA_ASSERT(h, f != CATENA_NIL); /* the caller counted them */
        size_t b = f + len_at(h, f);
        c = b > f + n ? b - n : f; /* [c, b) are taken */
        if (c == f)
            h->free_runs--;
        h->free_blocks -= b - c;
        while (b-- > c)
            head = node_take(h, b, b == f, --n ? ST_NODE : first_state, head);
    }
    return head;
}
