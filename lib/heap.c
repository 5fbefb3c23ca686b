/*
 * heap.c - creating a heap over an arena, the formulas of its geometry,
 * statistics and the map (above the index and the spine).
 */
#include "catena_int.h"

/* ---- formulas -------------------------------------------------------- */

size_t catena_block_size(void) { return CATENA_B; }

size_t catena_max_blocks(void) { return CATENA_MAX_BLOCKS; }

size_t catena_blocks_for(size_t n)
{
    if (n == 0)
        return SIZE_MAX;
    size_t d = n / CATENA_B + (n % CATENA_B != 0);
    if (d > CATENA_MAX_BLOCKS)
        return SIZE_MAX;
    if (d <= 1)
        return d;
    return d + 1 + _catena_spine_nodes(d);
}

static size_t ctl_bytes(size_t nblocks)
{
    size_t hdr = (sizeof(struct catena_heap) + sizeof(cidx) - 1) /
                 sizeof(cidx) * sizeof(cidx);
    return hdr + (_catena_bin_of(nblocks) + 1u) * sizeof(cidx) +
           (nblocks + 1) / 2;
}

size_t catena_overhead(size_t nblocks)
{
    return (ctl_bytes(nblocks) + CATENA_B - 1) / CATENA_B * CATENA_B;
}

/* Bytes from addr to the end of block n-1 when the heap has n blocks. */
static size_t footprint(uintptr_t addr, size_t n)
{
    uintptr_t base = (addr + ctl_bytes(n) + CATENA_B - 1) & ~(uintptr_t)(CATENA_B - 1);
    return (size_t)(base - addr) + n * CATENA_B;
}

size_t catena_arena_blocks(uintptr_t addr, size_t size)
{
    size_t fixed = ctl_bytes(0);
    if (size <= fixed)
        return 0;
    /* An overestimate by at most the class heads and padding (a few dozen
     * blocks), then exact. */
    size_t n = (size - fixed) / (2 * CATENA_B + 1) * 2;
    while (n > 0 && footprint(addr, n) > size)
        n--;
    while (footprint(addr, n + 1) <= size)
        n++;
    return n;
}

/* ---- creation -------------------------------------------------------- */

int catena_init(void *arena, size_t size, catena_heap_t **out)
{
    if (!arena || !out)
        return CATENA_EINVAL;
    uintptr_t a = (uintptr_t)arena;
    if (a % CATENA_ARENA_ALIGN)
        return CATENA_EALIGN;
    size_t n = catena_arena_blocks(a, size);
    if (n < 2)
        return CATENA_ESMALL;
    if (n > CATENA_MAX_BLOCKS)
        return CATENA_EBIG;

    catena_heap_t *h = arena;
    memset(h, 0, sizeof *h);
    h->nblocks = n;
    h->nbins = _catena_bin_of(n) + 1;
    size_t hdr = (sizeof *h + sizeof(cidx) - 1) / sizeof(cidx) * sizeof(cidx);
    h->bins = (cidx *)(void *)((unsigned char *)arena + hdr);
    for (unsigned b = 0; b < h->nbins; b++)
        h->bins[b] = CATENA_NIL;
    h->table = (unsigned char *)(h->bins + h->nbins);
    h->base = (unsigned char *)((a + ctl_bytes(n) + CATENA_B - 1) &
                                ~(uintptr_t)(CATENA_B - 1));
    /* One free run: block 0 FREE, every other block TAIL. */
    memset(h->table, ST_TAIL * 0x11, (n + 1) / 2);
    table_put(h->table, 0, ST_FREE);
    h->chaining = true;
    gc_state_init(&h->gc);
    h->magic = CATENA_MAGIC;
    _catena_run_insert(h, 0, n);
    h->min_free = n; /* nothing used yet */
    if (CATENA_PARKING) { /* the small build never parks (P2) */
        for (size_t d = 0; d < CATENA_PARK_MAX; d++)
            h->park[d] = CATENA_NIL;
        _catena_park_policy(h);
    }
    *out = h;
    return CATENA_OK;
}

/* Parking is for chaining heaps only (P2): turning chaining off flushes. */
void catena_set_chaining(catena_heap_t *h, bool on)
{
    h->chaining = on;
    if (CATENA_PARKING)
        _catena_park_policy(h);
}

/* ---- statistics -------------------------------------------------------- */

static uint64_t isqrt64(uint64_t x)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > x)
        bit >>= 2;
    while (bit) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

/* The free runs one after another: by class, from the class after *b on,
 * or with lib/scan.c (CATENA_SCAN: no lists) in address order.  Start
 * with s = NIL; each call returns the next run start and its length in
 * *len, NIL at the end. */
static size_t next_free_run(const catena_heap_t *h, unsigned *b, size_t s,
                            size_t *len)
{
    if (CATENA_SCAN) {
        s = s == CATENA_NIL ? 0 : s + *len;
        while (s < h->nblocks && block_state(h, s) != ST_FREE)
            s += _catena_run_length(h, s);
        if (s >= h->nblocks)
            return CATENA_NIL;
        *len = _catena_run_length(h, s);
        return s;
    }
    s = s == CATENA_NIL ? CATENA_NIL : run_at(h, s)->next;
    while (s == CATENA_NIL && ++*b < h->nbins)
        s = h->bins[*b];
    if (s != CATENA_NIL)
        *len = run_at(h, s)->len;
    return s;
}

/* One pass over every free run: umm_malloc's metric, the longest and the
 * number of runs, as a flush of the parked runs would leave them (park.c:
 * a failed call that flushed changes none of these). */
static unsigned free_run_stats(const catena_heap_t *h, size_t *largest,
                               size_t *runs)
{
    uint64_t sum = 0, sq = 0;
    size_t top = 0, l = 0;
    unsigned b = 0;
    *runs = h->free_runs;
    for (size_t s = next_free_run(h, &b, CATENA_NIL, &l); s != CATENA_NIL;
         s = next_free_run(h, &b, s, &l)) {
        sum += l;
        sq += (uint64_t)l * l;
        if (l > top)
            top = l;
    }
    if (CATENA_PARKING && parked_blocks(h)) {
        struct park_view v;
        _catena_park_view(h, &v);
        sum += parked_blocks(h);
        sq = sq - v.sq_merged + v.sq_groups;
        *runs = *runs - v.merged + v.groups;
        if (v.largest > top)
            top = v.largest;
    }
    *largest = top;
    if (!sum)
        return 0;
    return (unsigned)(1000 - isqrt64(sq) * 1000 / sum);
}

size_t catena_free_blocks(const catena_heap_t *h) { return h->free_blocks; }

unsigned catena_frag(const catena_heap_t *h)
{
    size_t largest, runs;
    return free_run_stats(h, &largest, &runs);
}

void catena_stats(const catena_heap_t *h, struct catena_stats *st)
{
    memset(st, 0, sizeof *st);
    st->block_size = CATENA_B;
    st->total_blocks = h->nblocks;
    st->free_blocks = h->free_blocks;
    st->used_blocks = h->nblocks - h->free_blocks;
    st->peak_used = h->nblocks - h->min_free;
    st->objects = heap_objects(h);
    st->chained_objects = h->chained;
    st->spine_blocks = h->spine_blocks;
    st->allocs = h->allocs;
    st->frees = h->frees;
    st->failed_allocs = h->failed;
    st->frag_permille = free_run_stats(h, &st->largest_free_run,
                                       &st->free_runs);
    st->gc_collections = h->gc.collections;
    st->gc_last_marked = h->gc.last_marked;
    st->gc_last_freed = h->gc.last_freed;
    st->gc_total_marked = h->gc.total_marked;
    st->gc_total_freed = h->gc.total_freed;
    st->gc_overflows = h->gc.overflows;
    st->gc_finalised = h->gc.finalised;
}

void catena_free_ranges(catena_heap_t *h, size_t min_bytes,
                        void (*fn)(void *ctx, void *p, size_t n), void *ctx)
{
    /* Interiors exist from 3 blocks on; classes below min_bytes hold no
     * run long enough, so start at the first class that might. */
    size_t minb = min_bytes / CATENA_B + 2, len = 0;
    park_flush(h); /* parked runs are free memory too (park.c) */
    unsigned b = _catena_bin_of(minb < 3 ? 3 : minb) - 1;
    for (size_t s = next_free_run(h, &b, CATENA_NIL, &len); s != CATENA_NIL;
         s = next_free_run(h, &b, s, &len))
        if (len >= 3 && (len - 2) * CATENA_B >= min_bytes)
            fn(ctx, block_ptr(h, s + 1), (len - 2) * CATENA_B);
}

static char map_char(const catena_heap_t *h, size_t i)
{
    static const char c[16] = {'.', '=', 'e', 'n', 'h', 'H', 's', 'S',
                               'f', 'F', 'f', 'F', 'c', 'C', 'p', 'p'};
    return c[block_state(h, i)];
}

/* Append the decimal value v at line[p]; returns the new end. */
static size_t put_num(char *line, size_t p, uint64_t v)
{
    char d[24];
    size_t n = 0;
    do
        d[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n)
        line[p++] = d[--n];
    return p;
}

static size_t put_str(char *line, size_t p, const char *s)
{
    while (*s)
        line[p++] = *s++;
    return p;
}

/* The collector's statistics as one line (no printf: freestanding). */
static void dump_gc(const catena_heap_t *h, void (*print)(void *, const char *),
                    void *ctx)
{
    char line[200];
    size_t p = put_str(line, 0, "gc: collections ");
    p = put_num(line, p, h->gc.collections);
    p = put_str(line, p, ", last marked ");
    p = put_num(line, p, h->gc.last_marked);
    p = put_str(line, p, " freed ");
    p = put_num(line, p, h->gc.last_freed);
    p = put_str(line, p, " blocks, overflows ");
    p = put_num(line, p, h->gc.overflows);
    p = put_str(line, p, ", finalised ");
    p = put_num(line, p, h->gc.finalised);
    line[p] = '\0';
    print(ctx, line);
}

void catena_dump(const catena_heap_t *h, void (*print)(void *ctx, const char *line),
                 void *ctx)
{
    char line[96];
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < h->nblocks; i += 64) {
        size_t p = 0;
        for (int sh = 28; sh >= 0; sh -= 4)
            line[p++] = hex[(i >> sh) & 0xF];
        line[p++] = ':';
        line[p++] = ' ';
        for (size_t j = i; j < i + 64 && j < h->nblocks; j++)
            line[p++] = map_char(h, j);
        line[p] = '\0';
        print(ctx, line);
    }
    if (h->gc.collections)
        dump_gc(h, print, ctx);
}
