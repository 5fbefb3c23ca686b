/*
 * diag.c - the shim's one-line diagnoses: a bad call (which aborts or not
 * as CATENA_ABORT_ON_ERROR says), corruption CATENA_CHECK found, and an
 * internal failure.  Above options.c (it reads shim_opt) and util.c.
 */
#include "shim.h"

#include <errno.h>
#include <stdlib.h>

void shim_fault(const char *fn, const char *what, const void *p)
{
    int saved = errno;
    struct shim_line l = {.n = 0};
    ln_str(&l, "catena: ");
    ln_str(&l, fn);
    ln_str(&l, "(): ");
    ln_str(&l, what);
    ln_str(&l, " ");
    ln_hex(&l, (uintptr_t)p);
    ln_str(&l, shim_opt.abort_on_error ? ", aborting"
                                       : ", ignored (CATENA_ABORT_ON_ERROR=0)");
    ln_put(&l, 2);
    if (shim_opt.abort_on_error)
        abort();
    errno = saved;
}

void shim_corrupt(const char *fn, const char *when, const char *what,
                  const void *p)
{
    struct shim_line l = {.n = 0};
    ln_str(&l, "catena: ");
    ln_str(&l, fn);
    ln_str(&l, "(): heap corrupt (found by CATENA_CHECK ");
    ln_str(&l, when);
    ln_str(&l, " the call): ");
    ln_str(&l, what);
    ln_str(&l, " ");
    ln_hex(&l, (uintptr_t)p);
    ln_str(&l, ", aborting");
    ln_put(&l, 2);
    abort();
}

void shim_die(const char *what)
{
    struct shim_line l = {.n = 0};
    ln_str(&l, "catena: fatal: ");
    ln_str(&l, what);
    ln_put(&l, 2);
    abort();
}
