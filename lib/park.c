/*
 * park.c - parked runs: freed short objects kept by exact length.
 *
 * A heap that chains frees and allocates short objects far more often
 * than anything else.  Merging a freed run into the index and splitting
 * it out again costs a class computation, list and bitmap updates and a
 * header and footer each way.  Instead a freed contiguous object of
 * d <= CATENA_PARK_MAX blocks is *parked* (P1, catena_int.h): its start
 * becomes ST_PARKED and it goes on the LIFO list park[d - 1], linked
 * through its first block; the next allocation of d blocks pops it.  Both
 * are O(1) with one table nibble and the run's first two words written.
 *
 * Parked blocks are free blocks (free_blocks counts them), so the
 * guarantee must see them: every path that would fail, chain, or grow a
 * chain flushes the lists back into the index first (alloc.c), as do a
 * collection, the GC lock, and turning chaining off (P2).  At most
 * park_cap blocks are parked, so a flush is bounded work and the memory
 * parking withholds from coalescing is a small share of the heap.  The
 * push and pop are inline in catena_int.h; the rare paths are here.
 */
#include "catena_int.h"

/* The cap on parked blocks: a share of the heap, at least a few runs. */
static size_t park_cap(size_t nblocks)
{
    size_t c = nblocks / CATENA_PARK_DIV;
    return c > CATENA_PARK_MIN ? c : CATENA_PARK_MIN;
}

/* Parked run s of d blocks is sound: in the heap, parked, of length d,
 * its check word matching its link.  O(d / 16) table words. */
static bool parked_sound(const catena_heap_t *h, size_t s, size_t d)
{
    if (s >= h->nblocks || block_state(h, s) != ST_PARKED ||
        _catena_run_length(h, s) != d)
        return false;
    const struct park_hdr *p = (const struct park_hdr *)block_ptr(h, s);
    return p->chk == park_chk(p->next, d);
}

void _catena_park_flush(catena_heap_t *h)
{
    if (bad_heap(h))
        return;
    for (size_t d = 1; d <= CATENA_PARK_MAX; d++) {
        size_t s = h->park[d - 1];
        h->park[d - 1] = CATENA_NIL;
        while (s != CATENA_NIL) {
            if (!parked_sound(h, s, d)) {
                h->magic = 0; /* poisoned: see index.c */
                return;
            }
            size_t next = ((const struct park_hdr *)block_ptr(h, s))->next;
            /* the release counts the blocks free again */
            h->park_room += d;
            h->free_blocks -= d;
            _catena_run_release(h, s, d);
            if (bad_heap(h))
                return;
            s = next;
        }
    }
    CATENA_ASSERT(h, parked_blocks(h) == 0);
}

void _catena_park_policy(catena_heap_t *h)
{
    bool on = CATENA_PARKING && h->chaining &&
              !(h->gc.opts & CATENA_GC_ZERO);
    if (!on)
        park_flush(h);
    size_t parked = parked_blocks(h); /* 0 unless poisoned */
    h->park_cap = on ? park_cap(h->nblocks) : 0;
    h->park_room = h->park_cap - parked;
}

/* P1 and P2 from the lists' side: each entry a sound parked run of its
 * list's length, no cycle, the totals what the table walk found. */
int _catena_park_check(const catena_heap_t *h, size_t runs, size_t blocks)
{
    size_t lruns = 0, lblocks = 0;
    for (size_t d = 1; d <= CATENA_PARK_MAX; d++)
        for (size_t s = h->park[d - 1]; s != CATENA_NIL;
             s = ((const struct park_hdr *)block_ptr(h, s))->next) {
            if (!parked_sound(h, s, d))
                return _catena_err(h, CATENA_ECORRUPT, NULL,
                                   "park list entry not a parked run of its length");
            if (++lruns > runs)
                return _catena_err(h, CATENA_ECORRUPT, NULL,
                                   "park list cycle or run on two lists");
            lblocks += d;
        }
    if (lruns != runs || lblocks != blocks || blocks != parked_blocks(h))
        return _catena_err(h, CATENA_ECORRUPT, NULL,
                           "parked run missing from its list, or parked count wrong");
    if (parked_blocks(h) > h->park_cap ||
        (parked_blocks(h) && (h->gc.lock || !h->chaining ||
                       (h->gc.opts & CATENA_GC_ZERO))))
        return _catena_err(h, CATENA_ECORRUPT, NULL,
                           "parked runs where parking is off or over the cap (P2)");
    return CATENA_OK;
}

/* ---- the free space as a flush would leave it ---------------------------
 *
 * The statistics describe the free runs after a flush (each group of
 * adjacent free and parked runs one run), so that a call that flushes and
 * then fails leaves them as they were: an error changes nothing a caller
 * can see (catena.h).  Each group is measured once, from its leftmost
 * parked run; O(parked runs + the free runs next to them). */

/* Start of the free or parked run that ends at block s - 1, or NIL. */
static size_t free_left_of(const catena_heap_t *h, size_t s)
{
    if (s == 0)
        return CATENA_NIL;
    size_t t = s - 1;
    unsigned st = block_state(h, t);
    if (st == ST_FREE || st == ST_PARKED)
        return t;
    if (st != ST_TAIL)
        return CATENA_NIL;
    size_t f = *footer_at(h, t); /* trusted only if it names such a run */
    if (f < t && block_state(h, f) == ST_FREE && _catena_free_len(h, f) == s - f)
        return f;
    while (t > 0 && s - t < CATENA_PARK_MAX && block_state(h, t) == ST_TAIL)
        t--;
    return block_state(h, t) == ST_PARKED && _catena_run_length(h, t) == s - t
               ? t
               : CATENA_NIL;
}

static size_t free_len_any(const catena_heap_t *h, size_t s)
{
    return block_state(h, s) == ST_FREE ? _catena_free_len(h, s)
                                        : _catena_run_length(h, s);
}

void _catena_park_view(const catena_heap_t *h, struct park_view *v)
{
    size_t seen = 0;
    memset(v, 0, sizeof *v);
    if (bad_heap(h)) /* a poisoned heap's lists are not followed */
        return;
    for (size_t d = 1; d <= CATENA_PARK_MAX; d++)
        for (size_t p = h->park[d - 1]; p != CATENA_NIL;
             p = ((const struct park_hdr *)block_ptr(h, p))->next) {
            /* only sound runs, each at most once (a write after free
             * not yet found must not lead the statistics astray) */
            if (!parked_sound(h, p, d) || ++seen > parked_blocks(h))
                return;
            size_t l = free_left_of(h, p);
            if (l != CATENA_NIL &&
                (block_state(h, l) == ST_PARKED || free_left_of(h, l) != CATENA_NIL))
                continue; /* not the group's leftmost parked run */
            size_t g = 0, x = l != CATENA_NIL ? l : p;
            while (x < h->nblocks && (block_state(h, x) == ST_FREE ||
                                      block_state(h, x) == ST_PARKED)) {
                size_t len = free_len_any(h, x);
                if (block_state(h, x) == ST_FREE) {
                    v->merged++;
                    v->sq_merged += (uint64_t)len * len;
                }
                g += len;
                x += len;
            }
            v->groups++;
            v->sq_groups += (uint64_t)g * g;
            if (g > v->largest)
                v->largest = g;
        }
}
