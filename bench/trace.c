/*
 * trace.c - read and write allocation traces in the format of
 * include/catena_trace.h (written by libcatena-preload.so with CATENA_TRACE).
 *
 * A trace becomes an operation stream: each object id is mapped to a slot
 * while it lives.  Failed allocations (id 0) are skipped; a free or realloc
 * of an id the trace never allocated (memory from before the recording
 * started) is ignored, resp. replayed as a fresh allocation.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "catena_trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- id -> slot map: open addressing, linear probing ------------------ */

struct idmap {
    uint64_t *keys; /* 0 = empty */
    uint32_t *vals;
    size_t cap, n;
};

static size_t im_hash(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

static int im_grow(struct idmap *m)
{
    struct idmap n = {0};
    n.cap = m->cap ? m->cap * 2 : 1024;
    n.keys = calloc(n.cap, sizeof *n.keys);
    n.vals = calloc(n.cap, sizeof *n.vals);
    if (!n.keys || !n.vals) {
        free(n.keys);
        free(n.vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = im_hash(m->keys[i], n.cap);
            while (n.keys[j])
                j = (j + 1) & (n.cap - 1);
            n.keys[j] = m->keys[i];
            n.vals[j] = m->vals[i];
        }
    n.n = m->n;
    free(m->keys);
    free(m->vals);
    *m = n;
    return 0;
}

static long im_find(const struct idmap *m, uint64_t k)
{
    if (!m->cap)
        return -1;
    size_t j = im_hash(k, m->cap);
    while (m->keys[j]) {
        if (m->keys[j] == k)
            return (long)j;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

static int im_put(struct idmap *m, uint64_t k, uint32_t v)
{
    if ((m->n + 1) * 4 > m->cap * 3 && im_grow(m))
        return -1;
    size_t j = im_hash(k, m->cap);
    while (m->keys[j] && m->keys[j] != k)
        j = (j + 1) & (m->cap - 1);
    if (!m->keys[j])
        m->n++;
    m->keys[j] = k;
    m->vals[j] = v;
    return 0;
}

/* Remove entry at index j (backward-shift deletion, no tombstones). */
static void im_del(struct idmap *m, size_t j)
{
    size_t mask = m->cap - 1;
    m->keys[j] = 0;
    m->n--;
    size_t i = (j + 1) & mask;
    while (m->keys[i]) {
        size_t h = im_hash(m->keys[i], m->cap);
        /* move i back to j if its home h is not in (j, i] cyclically */
        bool move = j <= i ? (h <= j || h > i) : (h <= j && h > i);
        if (move) {
            m->keys[j] = m->keys[i];
            m->vals[j] = m->vals[i];
            m->keys[i] = 0;
            j = i;
        }
        i = (i + 1) & mask;
    }
}

/* ---- reading ---------------------------------------------------------- */

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int trace_load(const char *path, struct bstream *s, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char hdr[16], rec[32];
    size_t got = fread(hdr, 1, sizeof hdr, f);
    if (got != sizeof hdr || memcmp(hdr, CATENA_TRACE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a catena trace (no \"%s\" header)",
                 path, CATENA_TRACE_MAGIC);
        fclose(f);
        return -1;
    }
    uint64_t ver = le(hdr + 8, 4);
    if (ver != CATENA_TRACE_VERSION) {
        snprintf(err, errlen, "%s: trace version %llu, expected %u", path,
                 (unsigned long long)ver, CATENA_TRACE_VERSION);
        fclose(f);
        return -1;
    }
    bs_init(s, "replay", true);
    struct idmap m = {0};
    int rc = 0;
    size_t nrec = 0;
    for (;; nrec++) {
        got = fread(rec, 1, sizeof rec, f);
        if (got == 0)
            break;
        if (rec[0] == 0) { /* the end: a zero tail (trace.h) */
            int c = 0;
            for (size_t i = 0; i < got && !c; i++)
                c = rec[i];
            while (!c && (c = getc(f)) == 0)
                ;
            if (c != 0 && c != EOF) {
                snprintf(err, errlen, "%s: record %zu: data after the end",
                         path, nrec);
                rc = -1;
            }
            break;
        }
        if (got != sizeof rec) {
            snprintf(err, errlen,
                     "%s: truncated: record %zu has %zu of 32 bytes", path,
                     nrec, got);
            rc = -1;
            break;
        }
        unsigned op = rec[0];
        uint64_t id = le(rec + 8, 8), size = le(rec + 16, 8),
                 arg = le(rec + 24, 8);
        if (op < CATENA_TR_MALLOC || op > CATENA_TR_FREE) {
            snprintf(err, errlen, "%s: record %zu: unknown op %u", path, nrec,
                     op);
            rc = -1;
            break;
        }
        if (size > UINT32_MAX) {
            snprintf(err, errlen, "%s: record %zu: size %llu too large", path,
                     nrec, (unsigned long long)size);
            rc = -1;
            break;
        }
        long j;
        switch (op) {
        case CATENA_TR_FREE:
            if (id && (j = im_find(&m, id)) >= 0) {
                bs_free(s, m.vals[j]);
                im_del(&m, (size_t)j);
            }
            break;
        case CATENA_TR_REALLOC:
            j = arg ? im_find(&m, arg) : -1;
            if (id == 0) { /* failed, or realloc(p, 0) that freed p */
                if (size == 0 && j >= 0) {
                    bs_free(s, m.vals[j]);
                    im_del(&m, (size_t)j);
                }
                break;
            }
            if (j >= 0) {
                uint32_t slot = m.vals[j];
                im_del(&m, (size_t)j);
                bs_realloc(s, slot, (size_t)size);
                if (im_put(&m, id, slot))
                    goto oom;
                break;
            }
            /* realloc(NULL), or of memory we never saw: an allocation */
            /* fall through */
        default: /* MALLOC, CALLOC, MEMALIGN */
            if (id == 0)
                break;
            if ((j = im_find(&m, id)) >= 0) { /* missed free */
                bs_free(s, m.vals[j]);
                im_del(&m, (size_t)j);
            }
            if (im_put(&m, id, bs_alloc(s, (size_t)size)))
                goto oom;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    if (rc == 0 && s->allocs == 0) {
        snprintf(err, errlen, "%s: trace has no allocations", path);
        rc = -1;
    }
    fclose(f);
    free(m.keys);
    free(m.vals);
    if (rc)
        bstream_free(s);
    else
        bs_finish(s);
    return rc;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
    fclose(f);
    free(m.keys);
    free(m.vals);
    bstream_free(s);
    return -1;
}

/* ---- writing ---------------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

int trace_save(const struct bstream *s, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned char hdr[16] = {0}, rec[32];
    memcpy(hdr, CATENA_TRACE_MAGIC, 8);
    put_le(hdr + 8, CATENA_TRACE_VERSION, 4);
    int ok = fwrite(hdr, sizeof hdr, 1, f) == 1;
    for (size_t i = 0; ok && i < s->nops; i++) {
        const struct bop *o = &s->ops[i];
        uint64_t id = (uint64_t)o->slot + 1;
        memset(rec, 0, sizeof rec);
        switch (o->kind) {
        case BOP_ALLOC:
            rec[0] = CATENA_TR_MALLOC;
            put_le(rec + 16, o->size, 8);
            break;
        case BOP_FREE:
            rec[0] = CATENA_TR_FREE;
            put_le(rec + 16, o->old, 8);
            break;
        case BOP_REALLOC:
            rec[0] = CATENA_TR_REALLOC;
            put_le(rec + 16, o->size, 8);
            put_le(rec + 24, id, 8);
            break;
        default:
            continue;
        }
        put_le(rec + 8, id, 8);
        ok = fwrite(rec, sizeof rec, 1, f) == 1;
    }
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}
