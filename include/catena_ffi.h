/*
 * catena_ffi.h - GC-managed libffi closures (lib/gc_ffi.c; hosted builds
 * with libffi: installed only then).
 *
 * A closure is a heap object (CATENA_FINAL): its code pointer is callable
 * while the object is reachable; once a collection finds it unreachable,
 * the finaliser releases the libffi closure.  The object references cif
 * and user, so both stay alive with it when they live in the heap.
 *
 * Conventions (errors, thread safety) as in catena.h.
 */
#ifndef CATENA_FFI_H
#define CATENA_FFI_H

#include <ffi.h>
#include "catena.h"

#if defined(FFI_CLOSURES) && !FFI_CLOSURES
#error "catena_ffi.h needs a libffi with closures"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*catena_ffi_fn)(ffi_cif *cif, void *ret, void **args,
                              void *user);

/* Create a closure calling fun(cif, ret, args, user); *code gets the
 * function pointer to hand to C.  Returns the object's handle.  Fails
 * (NULL): as catena_alloc_flags, CATENA_EINVAL (NULL argument),
 * CATENA_ENOMEM (libffi could not allocate or prepare the closure).
 * O(catena_alloc). */
void *catena_ffi_closure(catena_heap_t *h, ffi_cif *cif, catena_ffi_fn fun,
                         void *user, void **code);

/* The code pointer of a live closure object; NULL if obj is not one (an
 * invalid handle records its error as catena_size does).  O(d) table
 * bytes: the object is measured. */
void *catena_ffi_code(catena_heap_t *h, void *obj);

/* Release obj's libffi closure if obj is a closure object: true then;
 * false (nothing done) for any other object or an invalid handle.  For use
 * in a finaliser that also handles other objects.  A second release is a
 * no-op.  O(d) table bytes. */
bool catena_ffi_release(catena_heap_t *h, void *obj);

/* A ready-made finaliser that only releases closures (ctx unused): give
 * it to catena_gc_set_finaliser.  O(d) table bytes. */
void catena_ffi_finaliser(void *ctx, catena_heap_t *h, void *obj);

#ifdef __cplusplus
}
#endif
#endif /* CATENA_FFI_H */
