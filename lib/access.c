/*
 * access.c - reading and writing objects without caring whether they are
 * contiguous: pointers at offsets, copies, bytes, segments, iovecs.
 *
 * Everything here is built on one primitive, seg_at(): the run holding a
 * byte offset, found in O(1) for a contiguous object and by a descent of
 * the spine, O(log k), for a chained one.
 */
#include "catena_int.h"

/* The bytes of obj contiguous from `off`: pointer and length; false when
 * off is outside the object (or obj is not a handle). */
static bool seg_at(catena_heap_t *h, void *obj, size_t off, const char *fn,
                   unsigned char **p, size_t *avail)
{
    size_t i;
    if (_catena_handle(h, obj, fn, &i))
        return false;
    unsigned s = st(h, i);
    if (s == ST_CHAIN || s == ST_CHAIN + 1) {
        struct seg sg;
        if (!_catena_spine_find(h, i, off / B, &sg))
            goto range;
        size_t in = off - sg.lo * B;
        *p = (unsigned char *)blk(h, sg.start) + in;
        *avail = (sg.hi - sg.lo) * B - in;
        return true;
    }
    size_t size = _catena_run_length(h, i) * B;
    if (off >= size)
        goto range;
    *p = (unsigned char *)obj + off;
    *avail = size - off;
    return true;
range:
    _catena_err(h, CATENA_ERANGE, obj, fn);
    return false;
}

void *catena_ptr(catena_heap_t *h, void *obj, size_t off, size_t *avail)
{
    unsigned char *p;
    size_t n;
    if (!seg_at(h, obj, off, "catena_ptr", &p, &n))
        return NULL;
    if (avail)
        *avail = n;
    return p;
}

/* Walk [off, off+n) segment by segment; copy to or from buf. */
static int copy(catena_heap_t *h, void *obj, size_t off, unsigned char *buf,
                size_t n, bool out, const char *fn)
{
    size_t i;
    int e = _catena_handle(h, obj, fn, &i);
    if (e)
        return e;
    if (off + n < off || _catena_obj_blocks(h, i) * B < off + n)
        return _catena_err(h, CATENA_ERANGE, obj, fn);
    if (n == 0)
        return CATENA_OK;
    while (n) {
        unsigned char *p;
        size_t a;
        if (!seg_at(h, obj, off, fn, &p, &a))
            return h->last_err;
        if (a > n)
            a = n;
        if (out)
            memcpy(buf, p, a);
        else
            memcpy(p, buf, a);
        buf += a;
        off += a;
        n -= a;
    }
    return CATENA_OK;
}

int catena_read(catena_heap_t *h, void *obj, size_t off, void *dst, size_t n)
{
    return copy(h, obj, off, dst, n, true, "catena_read");
}

int catena_write(catena_heap_t *h, void *obj, size_t off, const void *src,
                 size_t n)
{
    /* copy() only reads through buf when out is false */
    return copy(h, obj, off, (unsigned char *)(uintptr_t)src, n, false,
                "catena_write");
}

int catena_get(catena_heap_t *h, void *obj, size_t off)
{
    unsigned char *p;
    size_t a;
    if (!seg_at(h, obj, off, "catena_get", &p, &a))
        return -1;
    return *p;
}

int catena_put(catena_heap_t *h, void *obj, size_t off, uint8_t byte)
{
    unsigned char *p;
    size_t a;
    if (!seg_at(h, obj, off, "catena_put", &p, &a))
        return h->last_err;
    *p = byte;
    return CATENA_OK;
}

const void *catena_get_contiguous(catena_heap_t *h, void *obj, size_t off,
                                  size_t len, void *scratch)
{
    static const char fn[] = "catena_get_contiguous";
    unsigned char *p;
    size_t a;
    if (len == 0 || off + len < off) {
        _catena_err(h, CATENA_ERANGE, obj, fn);
        return NULL;
    }
    if (!seg_at(h, obj, off, fn, &p, &a))
        return NULL;
    if (a >= len)
        return p;
    if (copy(h, obj, off, scratch, len, true, fn))
        return NULL;
    return scratch;
}

size_t catena_iov(catena_heap_t *h, void *obj, size_t off, size_t len,
                  struct catena_iovec *iov, size_t max)
{
    static const char fn[] = "catena_iov";
    size_t nseg = 0, i;
    if (_catena_handle(h, obj, fn, &i))
        return 0;
    if (len == 0 || off + len < off || _catena_obj_blocks(h, i) * B < off + len) {
        _catena_err(h, CATENA_ERANGE, obj, fn);
        return 0;
    }
    while (len) {
        unsigned char *p;
        size_t a;
        if (!seg_at(h, obj, off, fn, &p, &a))
            return 0;
        if (a > len)
            a = len;
        if (nseg < max) {
            iov[nseg].iov_base = p;
            iov[nseg].iov_len = a;
        }
        nseg++;
        off += a;
        len -= a;
    }
    return nseg;
}

void catena_iter_init(catena_iter_t *it, catena_heap_t *h, void *obj)
{
    it->h = h;
    it->obj = obj;
    it->off = 0;
    it->size = catena_size(h, obj);
}

bool catena_iter_next(catena_iter_t *it, void **ptr, size_t *len)
{
    unsigned char *p;
    size_t a;
    if (it->off >= it->size ||
        !seg_at(it->h, it->obj, it->off, "catena_iter_next", &p, &a))
        return false;
    it->off += a;
    *ptr = p;
    *len = a;
    return true;
}
