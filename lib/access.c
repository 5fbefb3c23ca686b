/*
 * access.c - reading and writing objects without caring whether they are
 * contiguous: pointers at offsets, copies, bytes, segments, iovecs; and the
 * queries of an object's size, extents and flags.  Above allocation: it
 * reads objects, never creates or frees them.
 *
 * Every call validates the handle once (open_range(), which also measures
 * the object), then asks seg() for the run holding each byte offset: O(1)
 * for a contiguous object, a descent of the spine, O(log k), for a chained
 * one.
 */
#include "catena_int.h"

/* A validated object: block index, size in bytes, chained or not. */
struct obj {
    size_t i, size;
    bool chain;
};

/* ---- queries --------------------------------------------------------- */

size_t catena_size(const catena_heap_t *h, const void *obj)
{
    size_t i;
    if (_catena_handle(h, obj, "catena_size", &i))
        return 0;
    return _catena_obj_blocks(h, i) * CATENA_B;
}

size_t catena_extents(const catena_heap_t *h, const void *obj)
{
    size_t i;
    if (_catena_handle(h, obj, "catena_extents", &i))
        return 0;
    return ST_IS_CHAIN(block_state(h, i)) ? _catena_spine_count(h, i) : 1;
}

bool catena_is_contiguous(const catena_heap_t *h, const void *obj)
{
    size_t i;
    if (_catena_handle(h, obj, "catena_is_contiguous", &i))
        return false;
    return !ST_IS_CHAIN(block_state(h, i));
}

unsigned catena_flags(const catena_heap_t *h, const void *obj)
{
    size_t i;
    if (_catena_handle(h, obj, "catena_flags", &i))
        return 0;
    return _catena_obj_flags(h, i);
}

/* Validate obj and check that [off, off + n) lies inside it; n == 0 is
 * a range only when zero_ok.  Returns 0 or the error (already reported). */
static int open_range(const catena_heap_t *h, const void *obj, size_t off,
                      size_t n, bool zero_ok, const char *fn, struct obj *o)
{
    int e = _catena_handle(h, obj, fn, &o->i);
    if (e)
        return e;
    o->chain = ST_IS_CHAIN(block_state(h, o->i));
    o->size = _catena_obj_blocks(h, o->i) * CATENA_B;
    if ((n == 0 && !zero_ok) || off + n < off || off + n > o->size)
        return _catena_err(h, CATENA_ERANGE, obj, fn);
    return CATENA_OK;
}

/* The bytes contiguous from `off` (< o->size): pointer and length. */
static unsigned char *seg(const catena_heap_t *h, const struct obj *o,
                          size_t off, size_t *avail)
{
    if (!o->chain) {
        *avail = o->size - off;
        return (unsigned char *)block_ptr(h, o->i) + off;
    }
    struct seg sg;
    _catena_spine_find(h, o->i, off / CATENA_B, &sg); /* off < size: found */
    size_t in = off - sg.lo * CATENA_B;
    *avail = (sg.hi - sg.lo) * CATENA_B - in;
    return (unsigned char *)block_ptr(h, sg.start) + in;
}

void *catena_ptr(catena_heap_t *h, void *obj, size_t off, size_t *avail)
{
    struct obj o;
    size_t n;
    if (open_range(h, obj, off, 1, false, "catena_ptr", &o))
        return NULL;
    unsigned char *p = seg(h, &o, off, &n);
    if (avail)
        *avail = n;
    return p;
}

/* Copy [off, off+n) of an open object to or from buf. */
static void copy(const catena_heap_t *h, const struct obj *o, size_t off,
                 unsigned char *buf, size_t n, bool out)
{
    while (n) {
        size_t a;
        unsigned char *p = seg(h, o, off, &a);
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
}

int catena_read(catena_heap_t *h, const void *obj, size_t off, void *dst,
                size_t n)
{
    struct obj o;
    int e = open_range(h, obj, off, n, true, "catena_read", &o);
    if (e)
        return e;
    copy(h, &o, off, dst, n, true);
    return CATENA_OK;
}

int catena_write(catena_heap_t *h, void *obj, size_t off, const void *src,
                 size_t n)
{
    struct obj o;
    int e = open_range(h, obj, off, n, true, "catena_write", &o);
    if (e)
        return e;
    /* copy() only reads through buf when out is false */
    copy(h, &o, off, (unsigned char *)(uintptr_t)src, n, false);
    return CATENA_OK;
}

int catena_read_byte(catena_heap_t *h, const void *obj, size_t off,
                     uint8_t *out)
{
    struct obj o;
    size_t a;
    int e = open_range(h, obj, off, 1, false, "catena_read_byte", &o);
    if (e)
        return e;
    *out = *seg(h, &o, off, &a);
    return CATENA_OK;
}

int catena_write_byte(catena_heap_t *h, void *obj, size_t off, uint8_t byte)
{
    struct obj o;
    size_t a;
    int e = open_range(h, obj, off, 1, false, "catena_write_byte", &o);
    if (e)
        return e;
    *seg(h, &o, off, &a) = byte;
    return CATENA_OK;
}

const void *catena_get_contiguous(catena_heap_t *h, const void *obj, size_t off,
                                  size_t len, void *scratch)
{
    struct obj o;
    size_t a;
    if (open_range(h, obj, off, len, false, "catena_get_contiguous", &o))
        return NULL;
    unsigned char *p = seg(h, &o, off, &a);
    if (a >= len)
        return p;
    copy(h, &o, off, scratch, len, true);
    return scratch;
}

size_t catena_iov(catena_heap_t *h, void *obj, size_t off, size_t len,
                  struct catena_iovec *iov, size_t max)
{
    struct obj o;
    size_t nseg = 0;
    if (open_range(h, obj, off, len, false, "catena_iov", &o))
        return 0;
    while (len) {
        size_t a;
        unsigned char *p = seg(h, &o, off, &a);
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
    size_t a;
    if (it->off >= it->size)
        return false;
    unsigned char *p = catena_ptr(it->h, it->obj, it->off, &a);
    if (!p)
        return false;
    it->off += a;
    *ptr = p;
    *len = a;
    return true;
}
