/*
 * model.h - a reference model of one heap, for t/test_model.c (driven by a
 * seeded PRNG) and t/fuzz/fuzz_api.c (driven by the fuzzer's bytes).
 *
 * The model keeps, for each live object, its handle, capacity, flags and a
 * shadow copy of every byte.  Each step makes one public call (or one
 * collection), predicts its result from the model, applies it, and then
 * checks the heap against the model:
 *  - contents: every read path (read, ptr, iov, iterator, get_contiguous,
 *    the byte accessor) returns the shadow bytes;
 *  - counters: objects, chained objects, spine blocks (1 + S(k) per chain,
 *    S from the blocks_for formula), used = data + spine, free, peak
 *    (including the transient peak of a move), allocs, frees, failures;
 *  - the guarantees: an allocation or grow fails only below blocks_for,
 *    with the documented error; an error changes nothing;
 *  - the collector: exactly the collectable objects that the roots do not
 *    reach (through scanned contents, by exact handle) die, finalisers run
 *    for exactly the dying FINAL ones, survivors keep every byte;
 *  - catena_check after every step.
 * A failure prints the seed, the step and the operation, then calls
 * m->die (which does not return).
 *
 * Randomness comes from m->rand: a PRNG in the unit test, the input bytes
 * under the fuzzer.  Everything is header-only and static: each program
 * includes it once.
 */
#ifndef CATENA_MODEL_H
#define CATENA_MODEL_H

#include "catena.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_BS ((size_t)CATENA_BLOCK_SIZE)
#define MODEL_W sizeof(void *)

/* The one-byte accessors, behind one wrapper each (0 or CATENA_E*). */
static int model_get_byte(catena_heap_t *h, void *obj, size_t off,
                          uint8_t *out)
{
    return catena_read_byte(h, obj, off, out);
}
static int model_put_byte(catena_heap_t *h, void *obj, size_t off,
                          uint8_t byte)
{
    return catena_write_byte(h, obj, off, byte);
}

/* The error of a request of n bytes that no heap here can satisfy: ESIZE
 * when n is beyond what any heap of this build can name (blocks_for says
 * SIZE_MAX), else ENOMEM (32-bit targets with 32-byte blocks: SIZE_MAX
 * bytes are 2^27 blocks, within the index). */
static int model_huge_err(size_t n)
{
    return catena_blocks_for(n) == SIZE_MAX ? CATENA_ESIZE : CATENA_ENOMEM;
}

struct mobj {
    unsigned char *p;  /* handle; NULL: the slot is empty */
    size_t size;       /* capacity: blocks * B */
    unsigned flags;    /* stored CATENA_NOSCAN / FINAL / NOCOLLECT */
    unsigned char *sh; /* shadow of the size bytes */
};

/* Operations (the fuzzer picks them by number). */
enum {
    M_ALLOC, M_FREE, M_REALLOC, M_RCONTIG, M_FLATTEN, M_WRITE, M_READ,
    M_LINK, M_GC, M_PROBE, M_CHAINING, M_NOPS
};
static const char *const model_op_names[M_NOPS] = {
    "alloc", "free", "realloc", "realloc_contig", "flatten", "write",
    "read", "link", "collect", "bad-argument probe", "set_chaining"};

struct model {
    catena_heap_t *h;
    struct mobj *o;
    size_t nslots;
    uint64_t (*rand)(void *ctx);
    void *rctx;
    void (*die)(const char *what); /* does not return */
    uint64_t seed;
    unsigned long step;
    int op;
    size_t total;          /* blocks of the heap */
    size_t maxsize;        /* largest request the size picker makes */
    bool chaining;
    /* expected counters */
    size_t peak, allocs, frees, failed;
    size_t collections, finalised;
    /* the collection under way */
    unsigned char *dying;  /* per slot: expected to die */
    unsigned char *fin;    /* per slot: finaliser called */
    size_t nfin;
    unsigned char *buf;    /* scratch, maxsize bytes */
    /* what the run exercised (the driver reports and asserts on these) */
    int hook_err;          /* the error hook's last code */
    unsigned long n_hook;  /* its calls */
    unsigned long n_ops[M_NOPS], n_chained, n_failed, n_moves, n_died,
        n_fill_misses, n_peak_rises, n_below_peak, n_enochain, n_scribbled,
        n_overflows;
};

/* ---- failure reporting ------------------------------------------------- */

static void model_fail(struct model *m, int line, const char *what,
                       long long a, long long b, bool vals)
{
    char msg[300];
    int n = snprintf(msg, sizeof msg,
                     "model B=%d: seed %llu step %lu (%s): model.h:%d: %s",
                     CATENA_BLOCK_SIZE, (unsigned long long)m->seed, m->step,
                     m->op >= 0 ? model_op_names[m->op] : "-", line, what);
    if (vals && n > 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, " (%lld != %lld)", a, b);
    printf("%s\n", msg);
    fflush(stdout);
    m->die(msg);
}
#define M_CHECK(m, c)                                                      \
    do {                                                                   \
        if (!(c))                                                          \
            model_fail(m, __LINE__, #c, 0, 0, false);                      \
    } while (0)
#define M_EQ(m, a, b)                                                      \
    do {                                                                   \
        long long m_a_ = (long long)(a), m_b_ = (long long)(b);            \
        if (m_a_ != m_b_)                                                  \
            model_fail(m, __LINE__, #a " == " #b, m_a_, m_b_, true);       \
    } while (0)

/* ---- helpers ------------------------------------------------------------ */

static size_t m_below(struct model *m, size_t n)
{
    return n ? (size_t)(m->rand(m->rctx) % n) : 0;
}

static size_t m_blocks(size_t n) { return (n + MODEL_BS - 1) / MODEL_BS; }

/* S(k): non-root spine nodes of a chain of k extents, from the formula of
 * catena_blocks_for (f entries per node, r in the root). */
static size_t model_spine(size_t k)
{
    const size_t f = MODEL_BS / (2 * (CATENA_INDEX_BITS / 8));
    const size_t r = CATENA_INDEX_BITS == 32 ? f : f - 1;
    size_t s = 0;
    while (k > r) {
        k = (k + f - 1) / f;
        s += k;
    }
    return s;
}

/* Blocks an object holds: its data, plus root and nodes when chained. */
static size_t model_held(struct model *m, const struct mobj *o)
{
    size_t k = catena_extents(m->h, o->p);
    return o->size / MODEL_BS + (k > 1 ? 1 + model_spine(k) : 0);
}

static struct catena_stats model_stats(struct model *m)
{
    struct catena_stats s;
    catena_stats(m->h, &s);
    return s;
}

static unsigned char model_pat(uint32_t seed, size_t off)
{
    uint32_t x = seed ^ (uint32_t)off * 2654435761u;
    x ^= x >> 15;
    return (unsigned char)(x * 2246822519u >> 24);
}

/* A request size: mostly small, some a few blocks, some large. */
static size_t model_size(struct model *m)
{
    size_t max = m->maxsize;
    switch (m_below(m, 8)) {
    case 0: case 1: case 2:
        return 1 + m_below(m, MODEL_BS);
    case 3: case 4:
        return 1 + m_below(m, 4 * MODEL_BS);
    case 5: case 6:
        return 1 + m_below(m, max / 5);
    default:
        return 1 + m_below(m, max);
    }
}

static struct mobj *model_slot(struct model *m, bool live)
{
    size_t s = m_below(m, m->nslots);
    for (size_t i = 0; i < m->nslots; i++) {
        struct mobj *o = &m->o[(s + i) % m->nslots];
        if ((o->p != NULL) == live)
            return o;
    }
    return NULL;
}

/* Resize the shadow to n bytes (new bytes undefined until written). */
static void model_shadow(struct model *m, struct mobj *o, size_t n)
{
    unsigned char *sh = realloc(o->sh, n ? n : 1);
    M_CHECK(m, sh != NULL);
    o->sh = sh;
    o->size = n;
}

/* Write a fresh pattern to [from, to) through the heap and the shadow. */
static void model_fill(struct model *m, struct mobj *o, size_t from,
                       size_t to)
{
    if (to <= from)
        return;
    uint32_t seed = (uint32_t)m->rand(m->rctx);
    for (size_t i = from; i < to; i++)
        o->sh[i] = model_pat(seed, i);
    M_EQ(m, catena_write(m->h, o->p, from, o->sh + from, to - from), 0);
}

/* The whole object through catena_read equals the shadow. */
static void model_verify(struct model *m, const struct mobj *o)
{
    M_EQ(m, catena_size(m->h, o->p), o->size);
    M_EQ(m, catena_read(m->h, o->p, 0, m->buf, o->size), 0);
    M_CHECK(m, memcmp(m->buf, o->sh, o->size) == 0);
}

static void model_forget(struct mobj *o)
{
    free(o->sh);
    memset(o, 0, sizeof *o);
}

/* The error hook: every error reaches it, with its code. */
static void model_hook(void *ctx, catena_heap_t *h, int err, const void *ptr,
                       const char *where)
{
    struct model *m = ctx;
    (void)ptr;
    M_CHECK(m, h == m->h && err > 0 && err < CATENA_NERR && where);
    m->hook_err = err;
    m->n_hook++;
}

/* An error return must change nothing: compare the counters; the hook saw
 * the error that catena_last_error reports. */
static void model_same(struct model *m, const struct catena_stats *a)
{
    struct catena_stats b = model_stats(m);
    M_EQ(m, m->hook_err, catena_last_error(m->h));
    M_EQ(m, b.used_blocks, a->used_blocks);
    M_EQ(m, b.free_runs, a->free_runs);
    M_EQ(m, b.objects, a->objects);
    M_EQ(m, b.chained_objects, a->chained_objects);
    M_EQ(m, b.spine_blocks, a->spine_blocks);
    M_EQ(m, b.largest_free_run, a->largest_free_run);
}

/* Counting a failure: ENOMEM / ENOCHAIN count one; other errors (size,
 * lock) may or may not, so the model takes the heap's word for those. */
static void model_failed(struct model *m, int err)
{
    size_t now = model_stats(m).failed_allocs;
    if (err == CATENA_ENOMEM || err == CATENA_ENOCHAIN) {
        m->failed++;
    } else {
        M_CHECK(m, now == m->failed || now == m->failed + 1);
        m->failed = now;
    }
    m->n_failed++;
}

static void model_peak(struct model *m, size_t transient)
{
    if (transient > m->peak) {
        m->peak = transient;
        m->n_peak_rises++;
    }
}

/* ---- operations ----------------------------------------------------------- */

static const unsigned model_flag_choices[] = {
    0, 0, 0, CATENA_NOSCAN, CATENA_FINAL, CATENA_NOCOLLECT,
    CATENA_NOSCAN | CATENA_FINAL, CATENA_NOSCAN | CATENA_NOCOLLECT,
    CATENA_ZERO, CATENA_ZERO | CATENA_NOSCAN};

/* A refused allocation of n bytes (d blocks): nothing changed, and the
 * error is the one the policy and the guarantee call for.  Returns it. */
static int model_refused(struct model *m, const struct catena_stats *s0,
                          size_t n, size_t d)
{
    int e = catena_last_error(m->h);
    model_same(m, s0);
    if (!m->chaining) {
        M_EQ(m, e, s0->free_blocks >= d ? CATENA_ENOCHAIN : CATENA_ENOMEM);
        m->n_enochain += e == CATENA_ENOCHAIN;
    } else {
        M_EQ(m, e, CATENA_ENOMEM);
        M_CHECK(m, s0->free_blocks < catena_blocks_for(n)); /* guarantee */
    }
    return e;
}

static void op_alloc(struct model *m, struct mobj *o)
{
    size_t n = model_size(m), d = m_blocks(n);
    struct catena_stats s0 = model_stats(m);
    unsigned flags = 0, how = (unsigned)m_below(m, 4);
    void *p;
    if (how == 0) {
        p = catena_alloc(m->h, n);
    } else if (how == 1) {
        p = catena_realloc(m->h, NULL, n);
    } else {
        flags = model_flag_choices[m_below(m, sizeof model_flag_choices /
                                                  sizeof model_flag_choices[0])];
        p = catena_alloc_flags(m->h, n, flags);
    }
    if (!p) {
        model_failed(m, model_refused(m, &s0, n, d));
        return;
    }
    o->p = p;
    o->flags = flags & ~(unsigned)CATENA_ZERO;
    model_shadow(m, o, d * MODEL_BS);
    M_EQ(m, catena_size(m->h, p), o->size);
    M_EQ(m, catena_flags(m->h, p), o->flags);
    if (!m->chaining)
        M_CHECK(m, catena_is_contiguous(m->h, p));
    if (!catena_is_contiguous(m->h, p) && s0.largest_free_run >= d)
        m->n_fill_misses++; /* a run was there; the fit did not take it */
    if (flags & CATENA_ZERO) {
        memset(o->sh, 0, o->size);
        model_verify(m, o);
    } else {
        model_fill(m, o, 0, o->size);
    }
    m->allocs++;
}

static void op_free(struct model *m, struct mobj *o)
{
    model_verify(m, o);
    M_EQ(m, catena_free(m->h, o->p), 0);
    m->frees++;
    model_forget(o);
}

/* catena_realloc: data never moves; grows are guaranteed from
 * blocks_for(n) - blocks held; shrinks never fail. */
static void op_realloc(struct model *m, struct mobj *o)
{
    size_t n = model_size(m), d0 = o->size / MODEL_BS, d1 = m_blocks(n);
    size_t held = model_held(m, o);
    struct catena_stats s0 = model_stats(m);
    void *q = catena_realloc(m->h, o->p, n);
    if (!q) {
        int e = catena_last_error(m->h);
        model_same(m, &s0);
        model_verify(m, o);
        M_CHECK(m, d1 > d0);
        if (s0.free_blocks < d1 - d0) /* as catena_alloc: no blocks at all */
            M_EQ(m, e, CATENA_ENOMEM);
        else if (!m->chaining && catena_is_contiguous(m->h, o->p))
            M_EQ(m, e, CATENA_ENOCHAIN);
        else if (m->chaining)
            M_EQ(m, e, CATENA_ENOMEM);
        if (m->chaining) /* the guarantee */
            M_CHECK(m, s0.free_blocks + held < catena_blocks_for(n));
        m->n_enochain += e == CATENA_ENOCHAIN;
        model_failed(m, e);
        return;
    }
    size_t keep = d0 < d1 ? d0 : d1;
    o->p = q;
    model_shadow(m, o, d1 * MODEL_BS);
    M_EQ(m, catena_flags(m->h, q), o->flags);
    model_fill(m, o, keep * MODEL_BS, o->size);
    model_verify(m, o);
    model_peak(m, model_stats(m).used_blocks);
}

/* catena_realloc_contig and catena_flatten: the result is one run; a
 * move copies into a new run while the old one is still held. */
static void op_contig(struct model *m, struct mobj *o, bool flatten)
{
    size_t d0 = o->size / MODEL_BS, n = flatten ? o->size : model_size(m);
    size_t d1 = m_blocks(n);
    bool was_chain = !catena_is_contiguous(m->h, o->p);
    struct catena_stats s0 = model_stats(m);
    void *q = flatten ? catena_flatten(m->h, o->p)
                      : catena_realloc_contig(m->h, o->p, n);
    if (!q) {
        int e = catena_last_error(m->h);
        model_same(m, &s0);
        model_verify(m, o);
        M_EQ(m, e, CATENA_ENOMEM);
        M_CHECK(m, was_chain || d1 > d0); /* shrinks stay in place */
        if (s0.largest_free_run >= d1)
            m->n_fill_misses++; /* a run was there; the fit missed it */
        model_failed(m, e);
        return;
    }
    bool moved = was_chain || q != (void *)o->p;
    if (flatten && !was_chain)
        M_CHECK(m, q == (void *)o->p);
    o->p = q;
    M_CHECK(m, catena_is_contiguous(m->h, q));
    M_EQ(m, catena_flags(m->h, q), o->flags);
    model_shadow(m, o, d1 * MODEL_BS);
    model_fill(m, o, (d0 < d1 ? d0 : d1) * MODEL_BS, o->size);
    model_verify(m, o);
    if (moved) {
        m->n_moves++;
        model_peak(m, s0.used_blocks + d1);
    }
    model_peak(m, model_stats(m).used_blocks);
}

/* New bytes over a random range, by catena_write or byte by byte. */
static void op_write(struct model *m, struct mobj *o)
{
    size_t off = m_below(m, o->size), len = 1 + m_below(m, o->size - off);
    if (m_below(m, 4) == 0) {
        len = len > 64 ? 64 : len;
        for (size_t i = 0; i < len; i++) {
            o->sh[off + i] = (uint8_t)m->rand(m->rctx);
            M_EQ(m, model_put_byte(m->h, o->p, off + i, o->sh[off + i]), 0);
        }
    } else {
        model_fill(m, o, off, off + len);
    }
}

/* Plant o2's handle in a word of o: the collector's edges. */
static void op_link(struct model *m, struct mobj *o)
{
    struct mobj *t = model_slot(m, true);
    size_t words = o->size / MODEL_W;
    if (!t || !words)
        return;
    size_t off = m_below(m, words) * MODEL_W;
    memcpy(o->sh + off, &t->p, MODEL_W);
    M_EQ(m, catena_write(m->h, o->p, off, &t->p, MODEL_W), 0);
}

static void read_iov(struct model *m, struct mobj *o, size_t off, size_t len)
{
    struct catena_iovec iov[8];
    size_t max = 1 + m_below(m, 8);
    size_t k = catena_iov(m->h, o->p, off, len, iov, max), at = off;
    M_CHECK(m, k >= 1 && k <= catena_extents(m->h, o->p));
    for (size_t i = 0; i < k && i < max; i++) {
        M_CHECK(m, iov[i].iov_len >= 1 && at + iov[i].iov_len <= off + len);
        M_CHECK(m, memcmp(iov[i].iov_base, o->sh + at, iov[i].iov_len) == 0);
        at += iov[i].iov_len;
    }
    if (k <= max)
        M_EQ(m, at, off + len);
}

static void read_iter(struct model *m, struct mobj *o)
{
    catena_iter_t it;
    void *p;
    size_t n, at = 0, segs = 0;
    for (catena_iter_init(&it, m->h, o->p); catena_iter_next(&it, &p, &n);
         segs++) {
        M_CHECK(m, n >= 1 && at + n <= o->size);
        M_CHECK(m, memcmp(p, o->sh + at, n) == 0);
        at += n;
    }
    M_EQ(m, at, o->size);
    M_CHECK(m, segs >= 1 && segs <= catena_extents(m->h, o->p));
}

/* One of the read paths over a random range; the result is the shadow. */
static void op_read(struct model *m, struct mobj *o)
{
    size_t off = m_below(m, o->size), len = 1 + m_below(m, o->size - off);
    switch (m_below(m, 6)) {
    case 0: {
        const unsigned char *g =
            catena_get_contiguous(m->h, o->p, off, len, m->buf);
        M_CHECK(m, g != NULL && memcmp(g, o->sh + off, len) == 0);
        break;
    }
    case 1:
        read_iov(m, o, off, len);
        break;
    case 2: {
        uint8_t b = 0;
        M_EQ(m, model_get_byte(m->h, o->p, off, &b), 0);
        M_EQ(m, b, o->sh[off]);
        break;
    }
    case 3: {
        size_t avail = 0;
        unsigned char *p = catena_ptr(m->h, o->p, off, &avail);
        M_CHECK(m, p && avail >= 1 && avail <= o->size - off);
        M_CHECK(m, memcmp(p, o->sh + off, avail) == 0);
        if (catena_is_contiguous(m->h, o->p))
            M_CHECK(m, p == o->p + off && avail == o->size - off);
        break;
    }
    case 4:
        read_iter(m, o);
        break;
    default:
        M_EQ(m, catena_read(m->h, o->p, off, m->buf, len), 0);
        M_CHECK(m, memcmp(m->buf, o->sh + off, len) == 0);
    }
}

/* ---- bad arguments: the documented error, and nothing changes ---------- */

static void probe_free_run(void *ctx, void *p, size_t n)
{
    void **first = ctx;
    if (!*first && n >= MODEL_BS)
        *first = p;
}

static void op_probe(struct model *m, struct mobj *o)
{
    struct catena_stats s0 = model_stats(m);
    unsigned char local;
    void *inside = NULL;
    size_t big = (m->total + 1) * MODEL_BS;
    switch (m_below(m, 10)) {
    case 0: /* an interior pointer (a chain's handle is one block) */
        inside = o->p + 1 + m_below(m, (catena_is_contiguous(m->h, o->p)
                                             ? o->size : MODEL_BS) - 1);
        M_EQ(m, catena_free(m->h, inside), CATENA_EINTERIOR);
        break;
    case 1: /* a pointer that is not the heap's */
        M_EQ(m, catena_free(m->h, &local), CATENA_EFOREIGN);
        break;
    case 2: /* a pointer into free memory */
        catena_free_ranges(m->h, 0, probe_free_run, &inside);
        if (inside)
            M_EQ(m, catena_free(m->h, inside), CATENA_EFREE);
        break;
    case 3: /* a range past the end */
        M_EQ(m, catena_read(m->h, o->p, o->size - m_below(m, 4), m->buf, 5),
             CATENA_ERANGE);
        M_EQ(m, catena_write(m->h, o->p, o->size, m->buf, 1), CATENA_ERANGE);
        M_CHECK(m, catena_ptr(m->h, o->p, o->size, NULL) == NULL);
        M_CHECK(m, catena_iov(m->h, o->p, o->size, 1, NULL, 0) == 0);
        M_CHECK(m, catena_get_contiguous(m->h, o->p, SIZE_MAX, 2, m->buf) ==
                   NULL);
        uint8_t b;
        M_EQ(m, model_get_byte(m->h, o->p, o->size, &b), CATENA_ERANGE);
        M_EQ(m, model_put_byte(m->h, o->p, o->size, 1), CATENA_ERANGE);
        break;
    case 4: /* sizes 0, SIZE_MAX, more than the heap */
        M_CHECK(m, catena_alloc(m->h, 0) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ESIZE);
        M_CHECK(m, catena_alloc(m->h, SIZE_MAX) == NULL);
        M_EQ(m, catena_last_error(m->h), model_huge_err(SIZE_MAX));
        M_CHECK(m, catena_alloc(m->h, big) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ENOMEM);
        m->failed += 3;
        break;
    case 5: /* resizes to 0 and to SIZE_MAX leave the object alone */
        M_CHECK(m, catena_realloc(m->h, o->p, 0) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ESIZE);
        M_CHECK(m, catena_realloc(m->h, o->p, SIZE_MAX) == NULL);
        M_EQ(m, catena_last_error(m->h), model_huge_err(SIZE_MAX));
        M_CHECK(m, catena_realloc_contig(m->h, o->p, SIZE_MAX - 3) == NULL);
        M_EQ(m, catena_last_error(m->h), model_huge_err(SIZE_MAX - 3));
        m->failed = model_stats(m).failed_allocs;
        break;
    case 6: /* flags: unknown bits, FINAL with NOCOLLECT */
        M_CHECK(m, catena_alloc_flags(m->h, 8, 0x100) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_EINVAL);
        M_CHECK(m, catena_alloc_flags(m->h, 8, CATENA_FINAL |
                                                   CATENA_NOCOLLECT) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_EINVAL);
        m->failed = model_stats(m).failed_allocs;
        break;
    case 7: /* a grow larger than the heap */
        M_CHECK(m, catena_realloc(m->h, o->p, big) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ENOMEM);
        m->failed++;
        M_CHECK(m, catena_realloc_contig(m->h, o->p, big) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ENOMEM);
        m->failed++;
        break;
    case 8: /* the GC lock, nested: mutators fail while it is held */
        catena_gc_lock(m->h);
        catena_gc_lock(m->h);
        M_EQ(m, catena_gc_unlock(m->h), 0);
        M_CHECK(m, catena_gc_locked(m->h));
        M_EQ(m, catena_free(m->h, o->p), CATENA_ELOCKED);
        M_CHECK(m, catena_alloc(m->h, 1) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ELOCKED);
        M_EQ(m, catena_collect_start(m->h), CATENA_ELOCKED);
        M_EQ(m, catena_gc_unlock(m->h), 0);
        M_CHECK(m, !catena_gc_locked(m->h));
        M_EQ(m, catena_gc_unlock(m->h), CATENA_EINVAL);
        m->failed = model_stats(m).failed_allocs;
        break;
    default: /* queries on a bad handle */
        M_EQ(m, catena_size(m->h, o->p + MODEL_W), 0);
        M_EQ(m, catena_extents(m->h, o->p + MODEL_W), 0);
        M_CHECK(m, !catena_is_contiguous(m->h, &local));
        M_EQ(m, catena_flags(m->h, &local), 0);
    }
    model_same(m, &s0);
    model_verify(m, o);
}

/* ---- the collector ---------------------------------------------------------- */

static struct model *model_gc_current;

static long model_find(struct model *m, const void *w)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->o[i].p && (const void *)m->o[i].p == w)
            return (long)i;
    return -1;
}

/* The finaliser: called once for each dying FINAL object, which it may
 * still read. */
static void model_finaliser(void *ctx, catena_heap_t *h, void *obj)
{
    struct model *m = ctx;
    long i = model_find(m, obj);
    M_CHECK(m, h == m->h && i >= 0);
    M_CHECK(m, m->dying[i] && (m->o[i].flags & CATENA_FINAL));
    M_CHECK(m, !m->fin[i]);
    m->fin[i] = 1;
    m->nfin++;
    model_verify(m, &m->o[i]);
}

/* Slots sorted by handle, for the reachability walk. */
static int model_cmp_slot(const void *a, const void *b)
{
    const struct model *m = model_gc_current;
    uintptr_t x = (uintptr_t)m->o[*(const size_t *)a].p;
    uintptr_t y = (uintptr_t)m->o[*(const size_t *)b].p;
    return x < y ? -1 : x > y;
}

static long model_lookup(const struct model *m, const size_t *by, size_t n,
                         uintptr_t w)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uintptr_t v = (uintptr_t)m->o[by[mid]].p;
        if (v == w)
            return (long)by[mid];
        if (v < w)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Mark, in `reached`, what the words at p..p+n reach, transitively through
 * the shadows of scanned objects (the exact-handle rule).  stack: scratch
 * of nslots entries. */
static void model_reach(struct model *m, const size_t *by, size_t nby,
                        const void *p, size_t bytes, unsigned char *reached,
                        size_t *stack)
{
    size_t sp = 0;
    const unsigned char *from = p;
    for (;;) {
        for (size_t off = 0; off + MODEL_W <= bytes; off += MODEL_W) {
            uintptr_t w;
            memcpy(&w, from + off, MODEL_W);
            long i = model_lookup(m, by, nby, w);
            if (i >= 0 && !reached[i]) {
                reached[i] = 1;
                stack[sp++] = (size_t)i;
            }
        }
        do {
            if (!sp)
                return;
            sp--;
        } while (m->o[stack[sp]].flags & CATENA_NOSCAN);
        from = m->o[stack[sp]].sh;
        bytes = m->o[stack[sp]].size;
    }
}

/* While a collection runs, every mutator fails with ELOCKED. */
static void model_locked(struct model *m)
{
    struct mobj *o = model_slot(m, true);
    M_CHECK(m, catena_alloc(m->h, 1) == NULL);
    M_EQ(m, catena_last_error(m->h), CATENA_ELOCKED);
    M_EQ(m, catena_collect_start(m->h), CATENA_ELOCKED);
    if (o) {
        M_EQ(m, catena_free(m->h, o->p), CATENA_ELOCKED);
        M_CHECK(m, catena_realloc(m->h, o->p, o->size + 1) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ELOCKED);
        M_CHECK(m, catena_flatten(m->h, o->p) == NULL);
        M_EQ(m, catena_last_error(m->h), CATENA_ELOCKED);
    }
    m->failed = model_stats(m).failed_allocs;
}

/* One collection from a random set of roots (some of them junk words):
 * exactly the unreachable collectable objects die. */
static void op_gc(struct model *m)
{
    size_t n = m->nslots, nby = 0, nroots = 0;
    size_t *by = malloc(n * sizeof *by), *stack = malloc(n * sizeof *stack);
    void **roots = malloc((n + 4) * sizeof *roots);
    unsigned char *reached = calloc(n, 1);
    M_CHECK(m, by && stack && roots && reached);
    for (size_t i = 0; i < n; i++)
        if (m->o[i].p)
            by[nby++] = i;
    model_gc_current = m;
    qsort(by, nby, sizeof *by, model_cmp_slot);
    unsigned keep = (unsigned)m_below(m, 5); /* roots: 0..100 % of objects */
    for (size_t i = 0; i < n; i++) {
        struct mobj *o = &m->o[i];
        if (o->p && m_below(m, 4) < keep)
            roots[nroots++] = o->p;
        else if (o->p && m_below(m, 8) == 0) /* not a handle: no root */
            roots[nroots++] = o->p + 1 + m_below(m, o->size - 1);
    }
    roots[nroots++] = NULL;
    /* what dies: collectable and reached neither from the roots nor from
     * a never-collected object */
    model_reach(m, by, nby, roots, nroots * MODEL_W, reached, stack);
    for (size_t i = 0; i < n; i++)
        if (m->o[i].p && (m->o[i].flags & CATENA_NOCOLLECT) && !reached[i]) {
            reached[i] = 1;
            if (!(m->o[i].flags & CATENA_NOSCAN))
                model_reach(m, by, nby, m->o[i].sh, m->o[i].size, reached,
                            stack);
        }
    size_t dead_blocks = 0, dead = 0, dead_final = 0;
    for (size_t i = 0; i < n; i++) {
        m->dying[i] = m->o[i].p && !reached[i];
        m->fin[i] = 0;
        if (m->dying[i]) {
            dead_blocks += model_held(m, &m->o[i]);
            dead++;
            dead_final += (m->o[i].flags & CATENA_FINAL) != 0;
        }
    }
    struct catena_stats s0 = model_stats(m);
    m->nfin = 0;
    catena_gc_set_finaliser(m->h, model_finaliser, m);
    /* a small mark stack overflows; the recovery must find the same set */
    size_t depth = m_below(m, 3) ? CATENA_GC_STACK : 1 + m_below(m, 4);
    M_EQ(m, catena_gc_set_mark_stack(m->h, NULL, depth), 0);
    if (m_below(m, 3) == 0) { /* registered roots, catena_collect */
        M_EQ(m, catena_gc_add_roots(m->h, (void *const *)roots, nroots), 0);
        M_EQ(m, catena_collect(m->h), 0);
        M_EQ(m, catena_gc_remove_roots(m->h, (void *const *)roots), 0);
    } else {
        M_EQ(m, catena_collect_start(m->h), 0);
        model_locked(m);
        size_t half = m_below(m, nroots + 1);
        catena_collect_root(m->h, (void *const *)roots, half);
        catena_collect_root(m->h, (void *const *)roots + half, nroots - half);
        M_EQ(m, catena_collect_end(m->h), 0);
    }
    M_EQ(m, m->nfin, dead_final);
    for (size_t i = 0; i < n; i++) {
        struct mobj *o = &m->o[i];
        if (m->dying[i]) {
            M_EQ(m, catena_size(m->h, o->p), 0);
            model_forget(o);
        } else if (o->p) {
            M_EQ(m, catena_flags(m->h, o->p), o->flags);
            model_verify(m, o);
        }
    }
    struct catena_stats s1 = model_stats(m);
    m->collections++;
    m->finalised += dead_final;
    m->n_died += dead;
    M_EQ(m, s1.gc_collections, m->collections);
    m->n_overflows = s1.gc_overflows;
    M_EQ(m, s1.gc_finalised, m->finalised);
    M_EQ(m, s1.gc_last_freed, dead_blocks);
    M_EQ(m, s1.gc_last_marked, s1.used_blocks);
    M_EQ(m, s1.objects, s0.objects - dead);
    M_EQ(m, s1.allocs, s0.allocs);
    M_EQ(m, s1.frees, s0.frees);
    free(by);
    free(stack);
    free(roots);
    free(reached);
}

/* ---- the checks after every step ------------------------------------------ */

/* Free-run interiors are promised to be unread by the heap: scribble over
 * them now and then (as madvise would zero them) and let the model and
 * the validator find out if that promise is broken. */
static void model_scribble(void *ctx, void *p, size_t n)
{
    struct model *m = ctx;
    memset(p, 0xA5, n);
    m->n_scribbled += n;
}

static void model_check(struct model *m)
{
    struct catena_stats s = model_stats(m);
    size_t objects = 0, chained = 0, spine = 0, data = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        const struct mobj *o = &m->o[i];
        if (!o->p)
            continue;
        size_t k = catena_extents(m->h, o->p);
        bool contig = catena_is_contiguous(m->h, o->p);
        M_CHECK(m, contig ? k == 1 : k >= 2);
        objects++;
        data += o->size / MODEL_BS;
        if (!contig) {
            chained++;
            spine += 1 + model_spine(k);
        }
    }
    m->n_chained += chained;
    M_EQ(m, s.objects, objects);
    M_EQ(m, s.chained_objects, chained);
    M_EQ(m, s.spine_blocks, spine);
    M_EQ(m, s.used_blocks, data + spine);
    M_EQ(m, s.free_blocks + s.used_blocks, m->total);
    model_peak(m, s.used_blocks);
    M_EQ(m, s.peak_used, m->peak);
    m->n_below_peak += s.used_blocks < s.peak_used;
    M_EQ(m, s.allocs, m->allocs);
    M_EQ(m, s.frees, m->frees);
    M_EQ(m, s.failed_allocs, m->failed);
    int e = catena_check(m->h);
    if (e)
        model_fail(m, __LINE__, catena_strerror(e), 0, 0, false);
}

/* ---- set-up and one step ----------------------------------------------------- */

/* A model over a fresh heap in arena[0, bytes), nslots objects at most. */
static void model_init(struct model *m, void *arena, size_t bytes,
                       size_t nslots)
{
    m->op = -1;
    M_EQ(m, catena_init(arena, bytes, &m->h), 0);
    m->nslots = nslots;
    m->o = calloc(nslots, sizeof *m->o);
    m->dying = calloc(nslots, 1);
    m->fin = calloc(nslots, 1);
    m->total = model_stats(m).total_blocks;
    if (!m->maxsize)
        m->maxsize = m->total * MODEL_BS / 5;
    m->buf = malloc(m->total * MODEL_BS);
    M_CHECK(m, m->o && m->dying && m->fin && m->buf);
    m->chaining = true;
    catena_set_hook(m->h, model_hook, m);
}

static void model_fini(struct model *m)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->o[i].p)
            op_free(m, &m->o[i]);
    model_check(m);
    struct catena_stats s = model_stats(m);
    M_EQ(m, s.used_blocks, 0);
    M_EQ(m, s.free_runs, 1);
    free(m->o);
    free(m->dying);
    free(m->fin);
    free(m->buf);
}

/* Step `op` on a random slot (an empty one for M_ALLOC, a live one for the
 * rest; no live object makes it an allocation), then the checks. */
static void model_step(struct model *m, int op)
{
    struct mobj *o = NULL;
    if (op != M_GC && op != M_CHAINING) {
        o = model_slot(m, op != M_ALLOC);
        if (!o && op != M_ALLOC)
            o = model_slot(m, false), op = M_ALLOC;
        if (!o) /* every slot is taken: free one instead */
            o = model_slot(m, true), op = M_FREE;
    }
    m->op = op;
    m->n_ops[op]++;
    switch (op) {
    case M_ALLOC: op_alloc(m, o); break;
    case M_FREE: op_free(m, o); break;
    case M_REALLOC: op_realloc(m, o); break;
    case M_RCONTIG: op_contig(m, o, false); break;
    case M_FLATTEN: op_contig(m, o, true); break;
    case M_WRITE: op_write(m, o); break;
    case M_READ: op_read(m, o); break;
    case M_LINK: op_link(m, o); break;
    case M_GC: op_gc(m); break;
    case M_PROBE: op_probe(m, o); break;
    default:
        m->chaining = !m->chaining;
        catena_set_chaining(m->h, m->chaining);
    }
    if (m->step % 97 == 0)
        catena_free_ranges(m->h, 0, model_scribble, m);
    model_check(m);
    m->step++;
}

#endif /* CATENA_MODEL_H */
