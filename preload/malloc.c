/*
 * malloc.c - the malloc family of libcatena-preload.so: the exported
 * entry points, start-up, fork and the exit report.
 *
 * Start-up is lazy: the first call of any entry point (which may come from
 * the dynamic loader or libc before any constructor has run) sets the shim
 * up from mmap alone.  Nothing here calls malloc, stdio or dlsym.
 */
#include "shim.h"
#include "tcache.h"
#include "catena_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every object is aligned to the block size (>= 16), large ones to a
 * page: max_align_t alignment without asking. */
#define MIN_ALIGN 16

static atomic_int state; /* 0 new, 2 ready, 3 failed */
static shim_lock_t init_lock;
static atomic_ulong ops;
static bool init_slow(void)
{
    shim_lock(&init_lock);
    if (atomic_load(&state) == 0) {
        long ps = sysconf(_SC_PAGESIZE);
        if (ps > 0)
            shim_page = (size_t)ps;
        shim_opts_parse();
        bool ok = small_init();
        if (ok && !large_init() && shim_opt.arena) {
            /* a fixed pool that cannot be made: say so, run without */
            struct shim_line l = {.n = 0};
            ln_str(&l, "catena: cannot create the CATENA_ARENA pool");
            ln_put(&l, 2);
        }
        trace_init();
        if (shim_opt.help)
            shim_opts_help(2);
        atomic_store(&state, ok ? 2 : 3);
    }
    shim_unlock(&init_lock);
    return atomic_load(&state) == 2;
}

static inline bool ready(void)
{
    return __builtin_expect(
               atomic_load_explicit(&state, memory_order_acquire) == 2, 1) ||
           init_slow();
}

/* CATENA_CHECK=N: every Nth call validates the heaps and the caches
 * before it runs (corruption the program made since the last call is
 * reported before this call trips over it) and after it (what the call
 * did).  op names the call being checked: a trace op (FREE for free). */
static __attribute__((noinline)) void check_all(int op, const char *when)
{
    static const char *const name[] = {
        [CATENA_TR_MALLOC] = "malloc", [CATENA_TR_CALLOC] = "calloc",
        [CATENA_TR_REALLOC] = "realloc", [CATENA_TR_MEMALIGN] = "memalign",
        [CATENA_TR_FREE] = "free"};
    small_check(name[op], when);
    large_check();
}

/* Counts the call; at every Nth, validates before it and returns true:
 * the call must validate after itself too. */
static __attribute__((noinline)) bool check_due(int op)
{
    if ((atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed) + 1) %
        shim_opt.check)
        return false;
    check_all(op, "before");
    return true;
}

/* Off (the default), this costs a load and a branch per call. */
static inline bool check_before(int op)
{
    return __builtin_expect(shim_opt.check != 0, 0) && check_due(op);
}

static inline void check_after(bool due, int op)
{
    if (__builtin_expect(due, 0))
        check_all(op, "after");
}

/* A request no allocator can meet (above PTRDIFF_MAX, or a product that
 * overflows): ENOMEM, counted like every other (CATENA_STATS). */
static void *too_big(void)
{
    if (atomic_load_explicit(&state, memory_order_acquire) == 2)
        shim_note_enomem();
    errno = ENOMEM;
    return NULL;
}

/* ---- the two allocators behind one interface ------------------------------ */

static void *alloc_any(size_t n, unsigned flags)
{
    void *p;
    if (n >= shim_opt.large) {
        p = large_alloc(n, 0); /* fresh or punched pages read as zero */
    } else {
        p = small_alloc(n, flags);
        if (!p)
            shim_note_enomem();
    }
    return p;
}

static void *memalign_any(size_t align, size_t n)
{
    if (align <= MIN_ALIGN)
        return alloc_any(n, 0);
    void *p;
    if (n >= shim_opt.large || n + align >= shim_opt.large) {
        p = large_alloc(n, align);
    } else {
        p = small_memalign(align, n);
        if (!p)
            shim_note_enomem();
    }
    return p;
}

static void bad_pointer(const char *fn, void *p)
{
    shim_fault(fn,
               large_interior(p)
                   ? "interior pointer (not the start of an object)"
                   : "invalid pointer (foreign, or a large object freed twice)",
               p);
}

static void free_any(void *p, const char *fn)
{
    if (small_owns(p))
        small_free(p, fn);
    else if (!large_free(p))
        bad_pointer(fn, p);
}

static size_t size_any(void *p, const char *fn)
{
    if (small_owns(p))
        return small_size(p, fn);
    size_t n = large_size(p);
    if (!n)
        bad_pointer(fn, p);
    return n;
}

/* realloc for p != NULL, n > 0.  NULL with errno set on failure (p then
 * stays valid). */
static void *realloc_any(void *p, size_t n)
{
    bool bad = false;
    if (small_owns(p)) {
        if (n < shim_opt.large) {
            void *q = small_realloc_inplace(p, n, "realloc", &bad);
            if (q || bad) {
                if (bad)
                    errno = EINVAL;
                return q;
            }
        }
    } else if (n >= shim_opt.large / 2) {
        /* A large object stays large down to half the threshold: no
         * copying back and forth around the threshold. */
        void *q = large_realloc(p, n, &bad);
        if (bad) { /* found */
            if (!q)
                errno = ENOMEM;
            return q;
        }
        bad_pointer("realloc", p);
        errno = EINVAL;
        return NULL;
    }
    /* Move to the other allocator (or another arena): copy. */
    size_t old = size_any(p, "realloc");
    if (!old) {
        errno = EINVAL;
        return NULL;
    }
    void *q = alloc_any(n, 0);
    if (!q) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(q, p, old < n ? old : n);
    free_any(p, "realloc");
    return q;
}

/* ---- exported entry points ---------------------------------------------------- */

/* The one path of every allocating entry point: op is the trace op
 * (MALLOC, CALLOC or MEMALIGN), align the alignment for MEMALIGN. */
static void *alloc_entry(int op, size_t n, size_t align)
{
    if (!ready()) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > PTRDIFF_MAX || align > PTRDIFF_MAX)
        return too_big();
    bool due = check_before(op);
    bool tracing = shim_tracing;
    if (tracing)
        trace_lock();
    void *p = op == CATENA_TR_MEMALIGN
                  ? memalign_any(align, n)
                  : alloc_any(n, op == CATENA_TR_CALLOC ? CATENA_ZERO : 0);
    if (tracing) {
        trace_alloc(op, p, n, align);
        trace_unlock();
    }
    if (!p)
        errno = ENOMEM;
    check_after(due, op);
    return p;
}

/* malloc, calloc and free try the per-thread cache's hit path first
 * (tcache.h: no call, no lock), and take the full path when it does not
 * handle the call. */
SHIM_EXPORT void *malloc(size_t n)
{
    void *p = tc_alloc_hit(n);
    if (__builtin_expect(p != NULL, 1))
        return p;
    return alloc_entry(CATENA_TR_MALLOC, n, 0);
}

SHIM_EXPORT void *calloc(size_t k, size_t n)
{
    size_t t;
    if (__builtin_mul_overflow(k, n, &t))
        return too_big();
    void *p = tc_alloc_hit(t);
    if (p)
        return memset(p, 0, t);
    return alloc_entry(CATENA_TR_CALLOC, t, 0);
}

static __attribute__((noinline)) void free_slow(void *p)
{
    if (!p)
        return;
    if (!ready()) {
        shim_fault("free", "invalid pointer (foreign, or a large object freed twice)", p);
        return;
    }
    int saved = errno; /* free never changes errno (POSIX 2024) */
    bool due = check_before(CATENA_TR_FREE);
    if (shim_tracing) {
        trace_lock();
        trace_free(p);
        free_any(p, "free");
        trace_unlock();
    } else {
        free_any(p, "free");
    }
    check_after(due, CATENA_TR_FREE);
    errno = saved;
}

static inline void free_fast(void *p)
{
    if (__builtin_expect(!tc_free_hit(p), 0))
        free_slow(p);
}

SHIM_EXPORT void free(void *p) { free_fast(p); }

/* realloc of a live object of the cached path to a size the caches serve
 * (p != NULL, n > 0): the same size in blocks keeps p (no lock, no
 * catena call; catena's object already has that many blocks); another
 * moves through this thread's cache, as size classes do: a cached malloc,
 * a copy of at most TC_CLASSES blocks, a cached free.  That replaces a
 * locked catena_realloc_contig with its size scans (about 1000
 * instructions per call on st-churn).  NULL: not handled (a miss that
 * found no memory included: the full path may still resize in place). */
static inline void *realloc_cached(void *p, size_t n)
{
    unsigned v = tc_live_blocks(p);
    size_t k = ((n - 1) >> TC_BSHIFT) + 1;
    if (!v || k > TC_CLASSES)
        return NULL;
    if (k == v)
        return p;
    void *q = tc_alloc_hit(n);
    if (!q && !(q = small_alloc(n, 0)))
        return NULL;
    memcpy(q, p, k < v ? n : (size_t)v << TC_BSHIFT);
    free_fast(p);
    return q;
}

SHIM_EXPORT void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) { /* glibc's behaviour: free, return NULL */
        free(p);
        return NULL;
    }
    void *q = realloc_cached(p, n);
    if (q)
        return q;
    if (!ready()) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > PTRDIFF_MAX)
        return too_big();
    bool due = check_before(CATENA_TR_REALLOC);
    if (shim_tracing) {
        trace_lock();
        q = realloc_any(p, n);
        trace_realloc(p, q, n);
        trace_unlock();
    } else {
        q = realloc_any(p, n);
    }
    check_after(due, CATENA_TR_REALLOC);
    return q;
}

SHIM_EXPORT void *reallocarray(void *p, size_t k, size_t n)
{
    size_t t;
    if (__builtin_mul_overflow(k, n, &t))
        return too_big();
    return realloc(p, t);
}

/* align: a power of two (checked by the callers). */
static void *aligned(size_t align, size_t n)
{
    return alloc_entry(CATENA_TR_MEMALIGN, n, align);
}

static bool pow2(size_t a) { return a && !(a & (a - 1)); }

SHIM_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (!pow2(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno; /* reports by return value only */
    void *p = aligned(align, n);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

SHIM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, n);
}

SHIM_EXPORT void *memalign(size_t align, size_t n)
{
    /* As glibc: a non-power of two is rounded up to one. */
    if (align > PTRDIFF_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = MIN_ALIGN;
    while (a < align)
        a *= 2;
    return aligned(a, n);
}

SHIM_EXPORT void *valloc(size_t n)
{
    if (!ready()) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(shim_page, n);
}

SHIM_EXPORT void *pvalloc(size_t n)
{
    if (!ready()) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > PTRDIFF_MAX)
        return too_big();
    size_t r = (n + shim_page - 1) & ~(shim_page - 1);
    return aligned(shim_page, r ? r : shim_page);
}

SHIM_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p || !ready())
        return 0;
    return size_any(p, "malloc_usable_size");
}

/* glibc-only knobs: nothing to tune or trim here; accept them. */
SHIM_EXPORT int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

SHIM_EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    return 0;
}

/* The __libc_* names: glibc's own aliases, used by some programs and by
 * libraries that want "the real malloc". */
#define ALIAS(name) __attribute__((alias(#name), visibility("default")))
/* glibc's headers give malloc & co. attributes our plain prototypes of
 * the aliases lack; that is harmless. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-attributes"
void *__libc_malloc(size_t) ALIAS(malloc);
void __libc_free(void *) ALIAS(free);
void *__libc_calloc(size_t, size_t) ALIAS(calloc);
void *__libc_realloc(void *, size_t) ALIAS(realloc);
void *__libc_reallocarray(void *, size_t, size_t) ALIAS(reallocarray);
void *__libc_memalign(size_t, size_t) ALIAS(memalign);
void *__libc_valloc(size_t) ALIAS(valloc);
void *__libc_pvalloc(size_t) ALIAS(pvalloc);
int __libc_posix_memalign(void **, size_t, size_t) ALIAS(posix_memalign);
void *__libc_aligned_alloc(size_t, size_t) ALIAS(aligned_alloc);
size_t __libc_malloc_usable_size(void *) ALIAS(malloc_usable_size);
int __posix_memalign(void **, size_t, size_t) ALIAS(posix_memalign);
#pragma GCC diagnostic pop

/* ---- fork ------------------------------------------------------------------- */

static void fork_prepare(void)
{
    tcache_prepare_fork();
    trace_lock();
    small_lock_all();
    large_prepare_fork();
    small_lock_arenas();
}

static void fork_parent(void)
{
    small_unlock_arenas(false);
    large_parent_fork(); /* waits until the child has its own pages */
    small_unlock_all(false);
    trace_unlock();
    tcache_parent_fork();
}

static void fork_child(void)
{
    small_unlock_arenas(true);
    small_unlock_all(true);
    shim_lock_reset(&init_lock);
    trace_child_fork();
    large_child_fork();
    tcache_child_fork(); /* allocates nothing; every lock is free */
}

/* ---- start and exit ------------------------------------------------------------ */

static size_t rss_bytes(void)
{
    char b[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    char *s = strchr(b, ' ');
    size_t v = 0;
    for (s = s ? s + 1 : b; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (size_t)(*s - '0');
    return v * shim_page;
}

static uint64_t isqrt(uint64_t x)
{
    uint64_t r = 0;
    for (uint64_t bit = (uint64_t)1 << 62; bit; bit >>= 2) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
    }
    return r;
}

static void report(void)
{
    struct small_totals s;
    struct large_totals g;
    struct shim_line l = {.n = 0};
    small_totals(&s);
    large_totals(&g);
    size_t bs = catena_block_size();
    size_t live = s.used_blocks * bs + g.pages * shim_page;
    size_t rss = rss_bytes();
    unsigned frag = 0;
    if (s.sum_run)
        frag = (unsigned)(1000 - isqrt(s.sum_run_sq) * 1000 / s.sum_run);
    ln_str(&l, "catena: small: ");
    ln_dec(&l, s.arenas);
    ln_str(&l, " arenas, ");
    ln_dec(&l, s.objects);
    ln_str(&l, " objects in ");
    ln_kib(&l, s.used_blocks * bs);
    ln_str(&l, " (incl. heap control), ");
    ln_dec(&l, s.free_runs);
    ln_str(&l, " free runs, largest ");
    ln_kib(&l, s.largest_run * bs);
    ln_put(&l, 2);
    if (s.trims) {
        ln_str(&l, "catena: trim: ");
        ln_dec(&l, s.trims);
        ln_str(&l, " passes, ");
        ln_dec(&l, s.madvises);
        ln_str(&l, " madvise calls, ");
        ln_kib(&l, s.trimmed);
        ln_str(&l, " madvised (pages of free runs given back)");
        ln_put(&l, 2);
    }
    ln_str(&l, "catena: large: ");
    ln_dec(&l, g.objects);
    ln_str(&l, " objects in ");
    ln_kib(&l, g.pages * shim_page);
    ln_str(&l, " (");
    ln_dec(&l, g.moves);
    ln_str(&l, " moved by realloc), peak ");
    ln_kib(&l, g.peak_pages * shim_page);
    if (g.pool_pages) {
        ln_str(&l, ", fixed pool ");
        ln_kib(&l, g.pool_pages * shim_page);
    }
    ln_put(&l, 2);
    if (g.enomem) {
        ln_str(&l, "catena: ENOMEM ");
        ln_dec(&l, g.enomem);
        ln_str(&l, " times; live at the first: ");
        ln_kib(&l, g.live_at_enomem);
        ln_put(&l, 2);
    }
    ln_str(&l, "catena: summary: live ");
    ln_kib(&l, live);
    ln_str(&l, ", rss ");
    ln_kib(&l, rss);
    ln_str(&l, ", rss/live ");
    size_t r100 = live ? rss * 100 / live : 0;
    ln_dec(&l, r100 / 100);
    ln_str(&l, ".");
    ln_dec(&l, r100 / 10 % 10);
    ln_dec(&l, r100 % 10);
    ln_str(&l, ", small frag ");
    ln_dec(&l, frag);
    ln_str(&l, " permille, enomem ");
    ln_dec(&l, g.enomem);
    ln_put(&l, 2);
}

__attribute__((constructor)) static void shim_start(void)
{
    if (ready())
        pthread_atfork(fork_prepare, fork_parent, fork_child);
}

__attribute__((destructor)) static void shim_stop(void)
{
    if (atomic_load(&state) != 2)
        return;
    trace_flush(true);
    if (shim_opt.stats) {
        tcache_flush_mine(); /* cached objects are not live */
        report();
    }
}
