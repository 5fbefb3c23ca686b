/*
 * index.c - the free-run index: segregated lists of free runs by length.
 *
 * Size classes are TLSF-like: lengths 1..7 have a class each, longer ones
 * are split into 8 classes per power of two.  A two-level bitmap finds the
 * first non-empty class >= c or the highest one in O(1).  Free runs carry
 * their own list links (struct run_hdr), so the index costs one list head
 * per class and nothing per run.
 */
#include "catena_int.h"

static unsigned flog2(size_t x) /* x > 0 */
{
#if defined(__GNUC__)
    return (unsigned)(sizeof(unsigned long long) * CHAR_BIT - 1) -
           (unsigned)__builtin_clzll((unsigned long long)x);
#else
    unsigned r = 0;
    while (x >>= 1)
        r++;
    return r;
#endif
}

static unsigned ctz32(uint32_t x) /* x != 0 */
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctz(x);
#else
    unsigned r = 0;
    while (!(x & 1u)) {
        x >>= 1;
        r++;
    }
    return r;
#endif
}

static unsigned bin_of_long(size_t len) /* len >= SL_N */
{
    unsigned l = flog2(len);
    return (l - SL_BITS + 1) * SL_N +
           (unsigned)((len >> (l - SL_BITS)) - SL_N);
}

/* The classes of the lengths below CLASS_TAB_N from a table where the
 * index paths run often (hosted, where parking sends them the objects
 * of more than CATENA_PARK_MAX blocks): one load where bin_of_long
 * takes a log and four operations.  Not on bare metal, whose builds
 * keep the bytes.  CLASS_OF is bin_of_long's formula (with the log
 * clamped so that no shift count is negative). */
#ifndef CATENA_CLASS_TABLE
#define CATENA_CLASS_TABLE CATENA_PARKING
#endif
#if CATENA_CLASS_TABLE
#define CLASS_TAB_N 256u
#define LOG2_8(n) ((n) >= 128 ? 7 : (n) >= 64 ? 6 : (n) >= 32 ? 5 : \
                   (n) >= 16 ? 4 : 3)
#define CLASS_OF(n) ((n) < SL_N ? (n) : \
    (LOG2_8(n) - SL_BITS + 1) * SL_N + ((n) >> (LOG2_8(n) - SL_BITS)) - SL_N)
#define CT4(n) CLASS_OF(n), CLASS_OF(n + 1), CLASS_OF(n + 2), CLASS_OF(n + 3)
#define CT16(n) CT4(n), CT4(n + 4), CT4(n + 8), CT4(n + 12)
#define CT64(n) CT16(n), CT16(n + 16), CT16(n + 32), CT16(n + 48)
static const unsigned char class_tab[CLASS_TAB_N] = {
    CT64(0u), CT64(64u), CT64(128u), CT64(192u)};
#endif

/* The class of a run length: short lengths are their own class, inline
 * because nearly every request and free is short. */
static inline unsigned bin_of(size_t len)
{
#if CATENA_CLASS_TABLE
    if (len < CLASS_TAB_N)
        return class_tab[len];
#endif
    return len < SL_N ? (unsigned)len : bin_of_long(len);
}

unsigned _catena_bin_of(size_t len)
{
    return bin_of(len);
}

/* Whether lengths a and b are in one class, with one log instead of two
 * class computations: a long class is a power of two and the SL_BITS bits
 * below it. */
static inline bool same_class(size_t a, size_t b)
{
    if (a < SL_N || b < SL_N)
        return a == b;
    unsigned sh = flog2(a) - SL_BITS;
    return a >> sh == b >> sh;
}

/* Smallest length in class b. */
static size_t bin_min(unsigned b)
{
    if (b < SL_N)
        return b;
    unsigned l = b / SL_N + SL_BITS - 1;
    return (size_t)(SL_N + b % SL_N) << (l - SL_BITS);
}

static inline void bit_set(catena_heap_t *h, unsigned b)
{
    h->binmap[b / 32] |= 1u << (b % 32);
    h->summary |= 1u << (b / 32);
}

static inline void bit_clear(catena_heap_t *h, unsigned b)
{
    h->binmap[b / 32] &= ~(1u << (b % 32));
    if (!h->binmap[b / 32])
        h->summary &= ~(1u << (b / 32));
}

/* First non-empty class >= b, or MAX_BINS. */
CATENA_ALWAYS_INLINE unsigned first_from(const catena_heap_t *h, unsigned b)
{
    if (b >= h->nbins)
        return MAX_BINS;
    unsigned w = b / 32;
    uint32_t m = h->binmap[w] & (UINT32_MAX << (b % 32));
    if (m)
        return w * 32 + ctz32(m);
    uint32_t s = (w + 1 < 32) ? h->summary & (UINT32_MAX << (w + 1)) : 0;
    if (!s)
        return MAX_BINS;
    w = ctz32(s);
    return w * 32 + ctz32(h->binmap[w]);
}

/* ---- a free run's header, as an overflow may have left it --------------
 *
 * A program that writes past its object, or into an object it freed,
 * overwrites the header of the free run there.  Before the index follows
 * or changes a run it takes from the table, it checks the run is sound:
 * its length stays in the heap and its last block's footer names it, and each list neighbour is a FREE run
 * that links back (the first of its class is the class head, I3).  A
 * header that fails poisons the heap: the magic is cleared, so the call
 * under way stops without following the links and reports
 * CATENA_ECORRUPT, as every later call does.  O(1).  Block s itself is
 * FREE already: every caller has it from the table, from a class head
 * (I3), or from a link this check accepted.
 *
 * CATENA_RUN_CHECKS 0 (a port that gives the check up, e.g. -DCATENA_RUN_CHECKS=0
 * with --enable-small: doc/embedded.md, "Code size") takes every header as
 * sound: a write into freed memory then corrupts the index silently, as
 * in an allocator without the check. */
#ifndef CATENA_RUN_CHECKS
#define CATENA_RUN_CHECKS 1
#endif

/* What a sound run r at s shows wherever it is in its list: its length
 * stays in the heap, its footer names it, its next run is FREE and links
 * back. */
CATENA_ALWAYS_INLINE bool body_sound(const catena_heap_t *h, size_t s,
                                     const struct run_hdr *r)
{
    size_t len = r->len, n = r->next;
    if (!CATENA_RUN_CHECKS)
        return true;
    if (len == 0 || len > h->nblocks - s || *footer_at(h, s + len - 1) != s)
        return false;
    return n == CATENA_NIL || (n < h->nblocks &&
                               block_state(h, n) == ST_FREE &&
                               run_at(h, n)->prev == s);
}

CATENA_ALWAYS_INLINE bool run_sound_in(const catena_heap_t *h, size_t s)
{
    CATENA_ASSERT(h, s < h->nblocks && block_state(h, s) == ST_FREE);
    const struct run_hdr *r = run_at(h, s);
    size_t p = r->prev;
    if (!CATENA_RUN_CHECKS)
        return true;
    if (!body_sound(h, s, r))
        return false;
    if (p == CATENA_NIL)
        return h->bins[bin_of(r->len)] == s;
    return p < h->nblocks && block_state(h, p) == ST_FREE &&
           run_at(h, p)->next == s;
}

/* The check itself, out of line for the rarer paths and, in the fast
 * paths' build, inline where every free asks (_catena_run_release). */
static bool run_sound(const catena_heap_t *h, size_t s)
{
    return run_sound_in(h, s);
}

/* sound, or else the heap is poisoned (see above). */
CATENA_ALWAYS_INLINE bool sound_or_poison(catena_heap_t *h, bool sound)
{
    if (!sound)
        h->magic = 0;
    return sound;
}

/* Is run s sound?  If not, poison the heap. */
#define run_ok(h, s) sound_or_poison(h, run_sound(h, s))
#if CATENA_FAST_PATHS
#define run_ok_hot(h, s) sound_or_poison(h, run_sound_in(h, s))
#else
#define run_ok_hot run_ok
#endif

size_t _catena_run_len(catena_heap_t *h, size_t s)
{
    return run_ok(h, s) ? run_at(h, s)->len : 0;
}

/* Insert and unlink with the class already known. */
CATENA_ALWAYS_INLINE void insert_in(catena_heap_t *h, size_t s, size_t len,
                                   unsigned b)
{
    struct run_hdr *r = run_at(h, s);
    CATENA_ASSERT(h, block_state(h, s) == ST_FREE && len && s + len <= h->nblocks);
    r->len = (cidx)len;
    r->prev = CATENA_NIL;
    r->next = h->bins[b];
    if (r->next != CATENA_NIL)
        run_at(h, r->next)->prev = (cidx)s;
    h->bins[b] = (cidx)s;
    *footer_at(h, s + len - 1) = (cidx)s;
    bit_set(h, b);
    h->free_blocks += len;
    h->free_runs++;
}

CATENA_ALWAYS_INLINE void unlink_in(catena_heap_t *h, size_t s, unsigned b)
{
    struct run_hdr *r = run_at(h, s);
    if (r->prev != CATENA_NIL)
        run_at(h, r->prev)->next = r->next;
    else
        h->bins[b] = r->next;
    if (r->next != CATENA_NIL)
        run_at(h, r->next)->prev = r->prev;
    if (h->bins[b] == CATENA_NIL)
        bit_clear(h, b);
    h->free_blocks -= r->len;
    h->free_runs--;
}

void _catena_run_insert(catena_heap_t *h, size_t s, size_t len)
{
    insert_in(h, s, len, bin_of(len));
}

void _catena_run_unlink(catena_heap_t *h, size_t s)
{
    if (!run_ok(h, s))
        return;
    unlink_in(h, s, bin_of(run_at(h, s)->len));
}


/* The lowest class whose every run holds `want` blocks (> 0). */
CATENA_ALWAYS_INLINE unsigned fit_class(size_t want)
{
#if CATENA_CLASS_TABLE
    /* the class after want - 1's: want - 1 is in a class below b when
     * want is b's smallest length, else in b */
    if (want - 1 < CLASS_TAB_N)
        return class_tab[want - 1] + 1u;
#endif
    if (want < SL_N) /* an exact class */
        return (unsigned)want;
    unsigned b = bin_of_long(want);
    return bin_min(b) == want ? b : b + 1;
}

CATENA_ALWAYS_INLINE size_t fit(catena_heap_t *h, size_t want, bool probe)
{
    unsigned up = fit_class(want);
    unsigned c = first_from(h, up);
    if (c != MAX_BINS)
        return h->bins[c];
    /* Only the class containing `want` might hold a long enough run when
     * want is not its smallest length: examine a bounded number of its
     * runs (CATENA_FIT_PROBES, each one CATENA_STEP), so allocation never
     * scans. */
    unsigned b = bin_of(want);
    if (probe && up != b && b < h->nbins) {
        cidx s = h->bins[b];
        for (int i = 0; i < (int)CATENA_FIT_PROBES && s != CATENA_NIL; i++) {
            CATENA_STEP(h, 1);
            if (!run_ok(h, s))
                return CATENA_NIL;
            if (run_at(h, s)->len >= want)
                return s;
            s = run_at(h, s)->next;
        }
    }
    return CATENA_NIL;
}

size_t _catena_run_fit(catena_heap_t *h, size_t want)
{
    return fit(h, want, true); /* checked by the take that follows */
}

static size_t largest(const catena_heap_t *h)
{
    if (!h->summary)
        return CATENA_NIL;
    unsigned w = flog2(h->summary);
    return h->bins[w * 32 + flog2(h->binmap[w])];
}

static size_t smallest(const catena_heap_t *h)
{
    unsigned c = first_from(h, 1);
    return c == MAX_BINS ? CATENA_NIL : h->bins[c];
}

/* Free run s becomes the free run [to, to + len), which overlaps it and
 * whose block `to` is already FREE: the same index as unlinking s and
 * inserting the new run.  When s heads its class list and the new length
 * stays in that class, the new run takes its place there (the list order
 * is the one unlink and insert would give) without touching the bitmap:
 * the common split and merge, about half the work. */
CATENA_ALWAYS_INLINE void run_move(catena_heap_t *h, size_t s, size_t to, size_t len)
{
    struct run_hdr *r = run_at(h, s);
    if (r->prev != CATENA_NIL || !same_class(r->len, len)) {
        unlink_in(h, s, bin_of(r->len));
        insert_in(h, to, len, bin_of(len));
        return;
    }
    unsigned b = bin_of(len);
    CATENA_ASSERT(h, block_state(h, to) == ST_FREE && h->bins[b] == s);
    size_t next = r->next;
    h->free_blocks = h->free_blocks - r->len + len;
    struct run_hdr *t = run_at(h, to);
    t->next = (cidx)next;
    t->prev = CATENA_NIL;
    t->len = (cidx)len;
    if (next != CATENA_NIL)
        run_at(h, next)->prev = (cidx)to;
    h->bins[b] = (cidx)to;
    *footer_at(h, to + len - 1) = (cidx)to;
}

/* Remove `want` blocks from the start of free run s; the rest stays free.
 * The caller gives block s its new state. */
CATENA_ALWAYS_INLINE void take(catena_heap_t *h, size_t s, size_t want)
{
    size_t len = run_at(h, s)->len;
    CATENA_ASSERT(h, want && want <= len);
    if (len > want) {
        TAIL_TO_FREE(h, s + want);
        run_move(h, s, s + want, len - want);
    } else {
        unlink_in(h, s, bin_of(len));
    }
}

#if CATENA_FAST_PATHS
/* run_sound for s, the head of class b (so prev is NIL): the same
 * checks, with the class known. */
CATENA_ALWAYS_INLINE bool head_sound(const catena_heap_t *h, size_t s,
                                     unsigned b)
{
    const struct run_hdr *r = run_at(h, s);
    return r->prev == CATENA_NIL && body_sound(h, s, r) &&
           bin_of(r->len) == b;
}

/* take() for s, the sound head of class b: the rest keeps s's place when
 * it stays in class b, else s is popped and the rest heads its class (the
 * order unlink and insert give). */
CATENA_ALWAYS_INLINE void take_head(catena_heap_t *h, size_t s, unsigned b,
                                    size_t want)
{
    struct run_hdr *r = run_at(h, s);
    size_t len = r->len, next = r->next;
    CATENA_ASSERT(h, want && want <= len && h->bins[b] == s);
    h->free_blocks -= want;
    if (len > want) {
        size_t to = s + want, rest = len - want;
        unsigned b2 = bin_of(rest);
        struct run_hdr *t = run_at(h, to);
        TAIL_TO_FREE(h, to);
        t->len = (cidx)rest;
        t->prev = CATENA_NIL;
        *footer_at(h, to + rest - 1) = (cidx)to;
        if (b2 == b) {
            t->next = (cidx)next;
            if (next != CATENA_NIL)
                run_at(h, next)->prev = (cidx)to;
            h->bins[b] = (cidx)to;
            return;
        }
        t->next = h->bins[b2];
        if (t->next != CATENA_NIL)
            run_at(h, t->next)->prev = (cidx)to;
        h->bins[b2] = (cidx)to;
        bit_set(h, b2);
        h->free_runs++;
    }
    h->bins[b] = (cidx)next;
    if (next != CATENA_NIL)
        run_at(h, next)->prev = CATENA_NIL;
    else
        bit_clear(h, b);
    h->free_runs--;
}
#endif

/* Take `want` blocks from the front of a run that fits them (the run
 * _catena_run_fit chooses, when `probe`; without it, only a run of a class
 * whose every run fits: the fast path leaves the probes to the slow one,
 * so a miss probes once); NIL if none.  The caller gives the first block
 * its new state.  One call, O(1). */
size_t _catena_run_claim(catena_heap_t *h, size_t want, bool probe)
{
#if CATENA_FAST_PATHS
    /* The usual case, a class whose every run fits: its head, checked
     * and split knowing its class.  The same run and list order as the
     * general path below, which then only handles the probes. */
    unsigned c = first_from(h, fit_class(want));
    if (c != MAX_BINS) {
        size_t s = h->bins[c];
        if (!sound_or_poison(h, head_sound(h, s, c)))
            return CATENA_NIL;
        take_head(h, s, c, want);
        return s;
    }
    if (!probe)
        return CATENA_NIL;
#endif
    size_t s = fit(h, want, probe);
    if (s == CATENA_NIL || !run_ok(h, s))
        return CATENA_NIL;
    take(h, s, want);
    return s;
}

void _catena_run_take(catena_heap_t *h, size_t s, size_t want)
{
    if (run_ok(h, s))
        take(h, s, want);
}

/* Remove `want` blocks from the middle of free run s (len > want), leaving
 * free runs on both sides; the first removed block gets state `to`.  The
 * right part is indexed first so that the left one heads its class list
 * and is what other requests find first.  Returns the first block. */
static size_t take_mid(catena_heap_t *h, size_t s, size_t want, unsigned to)
{
    if (!run_ok(h, s))
        return s;
    size_t len = run_at(h, s)->len, gap = (len - want) / 2;
    if (gap == 0) { /* one spare block: take the front */
        take(h, s, want);
        FREE_TO_HEAD(h, s, to);
        return s;
    }
    size_t at = s + gap, right = at + want;
    unlink_in(h, s, bin_of(len));
    if (right < s + len) {
        TAIL_TO_FREE(h, right);
        _catena_run_insert(h, right, s + len - right);
    }
    _catena_run_insert(h, s, gap);
    TAIL_TO_HEAD(h, at, to);
    return at;
}

/* Remove the last block of free run s and return its index.  Block s
 * keeps its place, so an extent just cut from the front of this run can
 * still grow into it.  The caller gives the block its new state: FREE if
 * it was the whole run, else TAIL. */
static size_t take_last(catena_heap_t *h, size_t s)
{
    if (!run_ok(h, s))
        return s;
    size_t len = run_at(h, s)->len;
    unlink_in(h, s, bin_of(len));
    if (len > 1)
        _catena_run_insert(h, s, len - 1);
    return s + len - 1;
}

/* Return run [s, s+len) to the index, merging with free neighbours.  Block
 * s may be in any non-free state (an object start, or a TAIL when a run is
 * trimmed); the others are TAIL. */
void _catena_run_release(catena_heap_t *h, size_t s, size_t len)
{
    CATENA_ASSERT(h, s + len <= h->nblocks);
    size_t r = s + len, rl = 0, ls = CATENA_NIL;
    if (r < h->nblocks && block_state(h, r) == ST_FREE) {
        if (!run_ok_hot(h, r))
            return;
        rl = run_at(h, r)->len;
    }
    if (s > 0) {
        size_t t = s - 1;
        if (block_state(h, t) == ST_FREE) {
            ls = t;
        } else if (block_state(h, t) == ST_TAIL) {
            /* The footer is only trusted when the run it names really is
             * free and ends at t; a stale word in an object cannot pass. */
            size_t f = *footer_at(h, t);
            if (f < t && block_state(h, f) == ST_FREE && run_at(h, f)->len == s - f)
                ls = f;
        }
        if (ls != CATENA_NIL && !run_ok_hot(h, ls))
            return;
    }
    RUN_TO_FREE(h, s);
    if (ls == CATENA_NIL) {
        if (rl) { /* the right neighbour's run now starts at s */
            FREE_TO_TAIL(h, r);
            run_move(h, r, s, len + rl);
        } else {
            insert_in(h, s, len, bin_of(len));
        }
        return;
    }
    if (rl) {
        unlink_in(h, r, bin_of(rl));
        FREE_TO_TAIL(h, r);
    }
    FREE_TO_TAIL(h, s);
    run_move(h, ls, ls, r + rl - ls);
}

/* Extents the chaining allocator would use for `want` blocks, taking the
 * heads of the highest classes first; SIZE_MAX if the free runs do not hold
 * `want` blocks.  Read-only, O(extents + classes). */
size_t _catena_greedy_extents(catena_heap_t *h, size_t want)
{
    size_t k = 0;
    for (unsigned b = h->nbins; b-- > 1;) {
        for (cidx s = h->bins[b]; s != CATENA_NIL; s = run_at(h, s)->next) {
            if (!run_ok(h, s))
                return SIZE_MAX;
            k++;
            if (run_at(h, s)->len >= want)
                return k;
            want -= run_at(h, s)->len;
        }
    }
    return SIZE_MAX;
}

/* The next extent of a chain being built (alloc.c's take_extents): the
 * longest run, so that a chain has few extents; all of it, or `want`
 * blocks of the best fit when it is longer -- or, for a growing object
 * (`room`), `want` blocks from the middle of the longest run, so that its
 * next appends extend the new tail in place instead of adding an extent
 * each.  The first block becomes EXT; its length in *len.  The caller has
 * checked that the free runs hold `want` blocks.  `cur` is scan.c's
 * (address order); the index has no use for it.  O(1). */
size_t _catena_run_take_extent(catena_heap_t *h, size_t *cur, size_t want,
                               bool room, size_t *len)
{
    (void)cur;
    size_t s = largest(h);
    *len = run_at(h, s)->len;
    if (*len > want && room) {
        *len = want;
        return take_mid(h, s, want, ST_EXT);
    }
    if (*len > want) {
        s = _catena_run_fit(h, want);
        if (s == CATENA_NIL)
            s = largest(h);
        *len = want;
    }
    _catena_run_take(h, s, *len);
    FREE_TO_HEAD(h, s, ST_EXT);
    return s;
}

/* n blocks for spine nodes, each the last block of the shortest run
 * (sparing the long ones), linked in-band; the last one taken becomes
 * `first_state` and heads the list.  O(n). */
size_t _catena_run_take_nodes(catena_heap_t *h, size_t n, unsigned first_state)
{
    size_t head = CATENA_NIL;
    while (n) {
        size_t r = smallest(h), s = take_last(h, r);
        head = node_take(h, s, s == r, --n ? ST_NODE : first_state, head);
    }
    return head;
}
