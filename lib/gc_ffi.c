/*
 * gc_ffi.c - libffi closures whose lifetime is a heap object (hosted only,
 * built when configure finds libffi).
 *
 * An interpreter's ffi module hands C code a function pointer that calls
 * back into the interpreter.  The pointer must stay valid while the
 * interpreter can still reach the callback, and no longer.  Here the
 * callback is a collectable heap object (CATENA_FINAL) holding:
 *
 *     { magic, the libffi closure, cif, user }
 *
 * cif and user are ordinary words of the object, so when they live in the
 * heap the collector keeps them alive with it.  The libffi closure lives
 * in libffi's executable memory; besides the ffi_closure itself it holds
 * what the trampoline needs (fun, user, the heap and the object), so a
 * call never has to read the heap object, which may be chained.  Once a
 * collection finds the object unreachable, the finaliser frees the libffi
 * closure: the code pointer is dead from then on.
 */
#include "catena_ffi.h"
#include "catena_int.h"

#if !FFI_CLOSURES
#error "libffi without closure support"
#endif

/* "cffi" + the object's own address: a FINAL object that merely starts
 * with the magic word is not mistaken for a closure. */
#define CLOSURE_MAGIC ((uintptr_t)0x63666669u)

struct xclosure {
    ffi_closure closure; /* first: libffi's part */
    catena_ffi_fn fun;
    void *user;
    void *code;
    void *obj;
};

struct cobj { /* the heap object's bytes */
    uintptr_t magic;
    struct xclosure *xc;
    ffi_cif *cif;
    void *user;
};

static void trampoline(ffi_cif *cif, void *ret, void **args, void *data)
{
    struct xclosure *xc = data;
    xc->fun(cif, ret, args, xc->user);
}

void *catena_ffi_closure(catena_heap_t *h, ffi_cif *cif, catena_ffi_fn fun,
                         void *user, void **code)
{
    static const char fn[] = "catena_ffi_closure";
    if (!h || !cif || !fun || !code) {
        _catena_err(h, CATENA_EINVAL, NULL, fn);
        return NULL;
    }
    void *obj = catena_alloc_flags(h, sizeof(struct cobj), CATENA_FINAL);
    if (!obj)
        return NULL;
    void *cp = NULL;
    struct xclosure *xc = ffi_closure_alloc(sizeof *xc, &cp);
    if (xc && ffi_prep_closure_loc(&xc->closure, cif, trampoline, xc, cp) !=
                  FFI_OK) {
        ffi_closure_free(xc);
        xc = NULL;
    }
    struct cobj c = {xc ? CLOSURE_MAGIC ^ (uintptr_t)obj : 0, xc, cif, user};
    catena_write(h, obj, 0, &c, sizeof c);
    if (!xc) {
        /* The object has no closure: an explicit free is safe here (the
         * caller never saw it) unless we run inside a finaliser. */
        catena_free(h, obj);
        _catena_err(h, CATENA_ENOMEM, NULL, fn);
        return NULL;
    }
    xc->fun = fun;
    xc->user = user;
    xc->code = cp;
    xc->obj = obj;
    *code = cp;
    return obj;
}

/* obj's closure record, or NULL when obj is not a closure object. */
static struct xclosure *closure_of(catena_heap_t *h, void *obj)
{
    struct cobj c;
    if (catena_size(h, obj) < sizeof c ||
        !(catena_flags(h, obj) & CATENA_FINAL) ||
        catena_read(h, obj, 0, &c, sizeof c) != CATENA_OK)
        return NULL;
    if (c.magic != (CLOSURE_MAGIC ^ (uintptr_t)obj) || !c.xc ||
        c.xc->obj != obj)
        return NULL;
    return c.xc;
}

void *catena_ffi_code(catena_heap_t *h, void *obj)
{
    struct xclosure *xc = closure_of(h, obj);
    return xc ? xc->code : NULL;
}

bool catena_ffi_release(catena_heap_t *h, void *obj)
{
    struct xclosure *xc = closure_of(h, obj);
    if (!xc)
        return false;
    /* Forget it in the object first: a second release is a no-op. */
    uintptr_t zero = 0;
    catena_write(h, obj, 0, &zero, sizeof zero);
    ffi_closure_free(xc);
    return true;
}

void catena_ffi_finaliser(void *ctx, catena_heap_t *h, void *obj)
{
    (void)ctx;
    catena_ffi_release(h, obj);
}
