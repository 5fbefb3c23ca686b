/*
 * table.c - the lowest layer: what a block's state says, and errors.
 *
 * Every layer above reads the block table through these primitives: the
 * length of a run (I1), what a pointer is (a handle, inside an object,
 * free memory, foreign), an object's flags (in its state when contiguous,
 * in its root block when chained), and how an error is reported.  Nothing
 * here changes the table: transitions are the macros of catena_int.h.
 */
#include "catena_int.h"

/* ---- errors ---------------------------------------------------------- */

static const char *const errstr[CATENA_NERR] = {
    [CATENA_OK] = "success",
    [CATENA_ENOMEM] = "not enough free blocks",
    [CATENA_ESIZE] = "size is zero or too large",
    [CATENA_EINVAL] = "invalid argument",
    [CATENA_EFOREIGN] = "pointer is not in this heap",
    [CATENA_EINTERIOR] = "pointer into an object, not its handle",
    [CATENA_EFREE] = "pointer to free memory (double free?)",
    [CATENA_ERANGE] = "offset or length outside the object",
    [CATENA_ESMALL] = "arena too small",
    [CATENA_EALIGN] = "arena misaligned",
    [CATENA_EBIG] = "arena has more blocks than the index can name",
    [CATENA_ECORRUPT] = "heap metadata corrupt",
    [CATENA_ENOCHAIN] = "no contiguous run and chaining is disabled",
    [CATENA_ELOCKED] = "heap is locked",
};

const char *catena_strerror(int err)
{
    if (err < 0 || err >= CATENA_NERR)
        return "unknown error";
    return errstr[err];
}

/* The error record is not part of the heap's state (catena.h: a function
 * given a const heap changes nothing else), and the heap always lives in
 * a writable arena, so writing it through a const pointer is sound. */
int _catena_err(const catena_heap_t *ch, int err, const void *p,
                const char *where)
{
    catena_heap_t *h = (catena_heap_t *)(uintptr_t)ch;
    if (h) {
        h->last_err = err;
        if (h->hook)
            h->hook(h->hook_ctx, h, err, p, where);
    }
    return err;
}

void _catena_assert_fail(const catena_heap_t *h, const char *what)
{
    _catena_err(h, CATENA_ECORRUPT, NULL, what);
#if defined(__GNUC__)
    __builtin_trap();
#else
    for (;;) {
    }
#endif
}

void catena_set_hook(catena_heap_t *h, catena_hook_fn fn, void *ctx)
{
    h->hook = fn;
    h->hook_ctx = ctx;
}

int catena_last_error(const catena_heap_t *h) { return h->last_err; }

/* ---- runs and handles ------------------------------------------------- */

int _catena_handle(const catena_heap_t *h, const void *p, const char *where,
                   size_t *out)
{
    if (bad_heap(h))
        return _catena_err(h, CATENA_ECORRUPT, p, where);
    if (is_handle(h, p, out))
        return CATENA_OK;
    const unsigned char *c = p;
    if (c < h->base || c >= h->base + h->nblocks * CATENA_B)
        return _catena_err(h, CATENA_EFOREIGN, p, where);
    size_t i = block_index(h, p);
    unsigned s = block_state(h, i);
    while (s == ST_TAIL && i > 0) /* classify: inside what? */
        s = block_state(h, --i);
    /* a parked run is free memory (P1) outside a collection (G1) */
    bool free = s == ST_FREE ||
                (CATENA_PARKING && s == ST_PARKED && !h->gc.collecting);
    return _catena_err(h, free ? CATENA_EFREE : CATENA_EINTERIOR, p, where);
}

/* ---- object states and flags ------------------------------------------ */

#if !CATENA_FAST_PATHS
size_t _catena_run_length(const catena_heap_t *h, size_t s)
{
    return _catena_run_length_words(h, s);
}
#endif

unsigned _catena_head_state(unsigned flags)
{
    if (flags & CATENA_NOCOLLECT)
        return ST_PIN + (flags & CATENA_NOSCAN);
    return ST_HEAD + 2 * (flags & (CATENA_NOSCAN | CATENA_FINAL));
}

unsigned _catena_state_flags(unsigned s)
{
    if (s >= ST_PIN)
        return CATENA_NOCOLLECT | (s - ST_PIN);
    return ((s - ST_HEAD) >> 1) & (CATENA_NOSCAN | CATENA_FINAL);
}

unsigned _catena_root_flags(const catena_heap_t *h, size_t root)
{
#if ROOT_HDR
    return *(const uint16_t *)block_ptr(h, root);
#else
    return (unsigned)(ents(h, root, root)[0].cum >> CATENA_FLAG_SHIFT);
#endif
}

void _catena_root_set_flags(catena_heap_t *h, size_t root, unsigned f)
{
#if ROOT_HDR
    *(uint16_t *)block_ptr(h, root) = (uint16_t)f;
#else
    struct ent *e = ents(h, root, root);
    e->cum = (cidx)(ent_cum(e) | ((size_t)f << CATENA_FLAG_SHIFT));
#endif
}

unsigned _catena_obj_flags(const catena_heap_t *h, size_t i)
{
    unsigned s = block_state(h, i);
    return ST_IS_CHAIN(s) ? _catena_root_flags(h, i) : _catena_state_flags(s);
}
