/*
 * test_preload.c - the malloc family of libcatena-preload.so, tested from
 * inside a program running under it (t/preload/unit.sh sets LD_PRELOAD;
 * run alone, the program skips).  Cases that need other options re-run
 * this program with them: `test_preload --child NAME`.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

/* These tests make the calls the compiler rightly warns about. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif

void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);

#define PAGE ((size_t)sysconf(_SC_PAGESIZE))
#define LARGE ((size_t)128 * 1024) /* the default threshold */

static const char *self;

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}
static int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

/* Run this program again with `env` added and `--child name`; returns the
 * wait status; the child's stderr goes to errbuf. */
static int rerun(const char *name, const char *env1, const char *env2,
                 char *errbuf, size_t errlen)
{
    int pfd[2];
    UNIT_ASSERT(pipe(pfd) == 0);
    pid_t pid = fork();
    UNIT_ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        if (env1)
            putenv((char *)env1);
        if (env2)
            putenv((char *)env2);
        execl(self, self, "--child", name, (char *)NULL);
        _exit(126);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < errlen && (r = read(pfd[0], errbuf + got, errlen - 1 - got)) > 0)
        got += (size_t)r;
    errbuf[got] = '\0';
    close(pfd[0]);
    int st;
    UNIT_ASSERT(waitpid(pid, &st, 0) == pid);
    return st;
}

UNIT_TEST(t_entry_points)
{
    unsigned char *p = malloc(100);
    UNIT_ASSERT(p && (uintptr_t)p % 16 == 0);
    fill(p, 100, 1);
    UNIT_ASSERT(malloc_usable_size(p) >= 100);
    p = realloc(p, 1000);
    UNIT_ASSERT(p && same(p, 100, 1));
    free(p);
    int *c = calloc(10, sizeof *c);
    UNIT_ASSERT(c && c[0] == 0 && c[9] == 0);
    c = reallocarray(c, 20, sizeof *c);
    UNIT_ASSERT(c);
    free(c);
    void *q = NULL;
    UNIT_EQ(posix_memalign(&q, 64, 10), 0);
    UNIT_ASSERT(q && (uintptr_t)q % 64 == 0);
    free(q);
    q = aligned_alloc(128, 256);
    UNIT_ASSERT(q && (uintptr_t)q % 128 == 0);
    free(q);
    q = memalign(256, 10);
    UNIT_ASSERT(q && (uintptr_t)q % 256 == 0);
    free(q);
    q = valloc(10);
    UNIT_ASSERT(q && (uintptr_t)q % PAGE == 0);
    free(q);
    q = pvalloc(10);
    UNIT_ASSERT(q && (uintptr_t)q % PAGE == 0 && malloc_usable_size(q) >= PAGE);
    free(q);
    UNIT_EQ(malloc_usable_size(NULL), 0);
    /* glibc's names reach the same allocator: free mixes with them */
    q = __libc_malloc(10);
    UNIT_ASSERT(q);
    free(q);
    q = malloc(10);
    __libc_free(q);
    q = __libc_calloc(3, 3);
    q = __libc_realloc(q, 3000);
    __libc_free(q);
    q = __libc_memalign(64, 3);
    UNIT_ASSERT((uintptr_t)q % 64 == 0);
    free(q);
    free(__libc_valloc(3));
    free(__libc_pvalloc(3));
    free(NULL);
    q = malloc(0); /* a unique pointer, as glibc */
    UNIT_ASSERT(q);
    free(q);
}

UNIT_TEST(t_alignments)
{
    static const size_t sizes[] = {1, 24, 100, 4000, 70000, 200000, 3000000};
    for (size_t a = sizeof(void *); a <= ((size_t)4 << 20); a *= 2)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = NULL;
            UNIT_EQ(posix_memalign(&p, a, sizes[i]), 0);
            UNIT_ASSERT((uintptr_t)p % a == 0);
            UNIT_ASSERT(malloc_usable_size(p) >= sizes[i]);
            memset(p, 0xab, sizes[i]);
            if (i % 2) { /* realloc of an aligned object keeps its data */
                p = realloc(p, sizes[i] * 2);
                UNIT_ASSERT(p && ((unsigned char *)p)[sizes[i] - 1] == 0xab);
            }
            free(p);
        }
}

/* Every aligned entry point: size 0, and alignments up to 1 GiB.  A
 * size-0 object is the caller's: not the start of a neighbour, and free,
 * realloc and malloc_usable_size work on it. */
static void *aligned_by(unsigned fn, size_t a, size_t n)
{
    void *p = NULL;
    switch (fn % 5) {
    case 0: return posix_memalign(&p, a, n) ? NULL : p;
    case 1: return aligned_alloc(a, n);
    case 2: return memalign(a, n);
    case 3: return valloc(n);
    default: return pvalloc(n);
    }
}
static size_t align_of_fn(unsigned fn, size_t a)
{
    return fn % 5 >= 3 ? PAGE : a;
}

/* The largest alignment tried: 1 GiB, 256 MiB in a 32-bit address space
 * (4 threads each mapping more than one at once would not fit). */
#define MAX_ALIGN_SHIFT (sizeof(void *) == 8 ? 30u : 28u)

UNIT_TEST(t_aligned_zero)
{
    for (size_t a = sizeof(void *); a <= ((size_t)1 << MAX_ALIGN_SHIFT); a *= 2)
        for (unsigned fn = 0; fn < 5; fn++)
            for (size_t n = 0; n < 3; n++) {
                unsigned char *before = malloc(32);
                unsigned char *p = aligned_by(fn, a, n);
                unsigned char *after = malloc(32);
                UNIT_ASSERT(p && before && after);
                UNIT_ASSERT((uintptr_t)p % align_of_fn(fn, a) == 0);
                UNIT_ASSERT(p != before && p != after);
                memset(before, 0x5b, 32);
                memset(after, 0x5a, 32);
                memset(p, 0x77, n);
                UNIT_ASSERT(malloc_usable_size(p) >= n);
                free(p); /* must not free a neighbour */
                unsigned char *x = malloc(32), *y = malloc(32);
                UNIT_ASSERT(x != before && x != after);
                UNIT_ASSERT(y != before && y != after);
                memset(x, 1, 32);
                memset(y, 2, 32);
                for (int i = 0; i < 32; i++)
                    UNIT_ASSERT(before[i] == 0x5b && after[i] == 0x5a);
                p = aligned_by(fn, a, n);
                UNIT_ASSERT(p != NULL);
                p = realloc(p, 100);
                UNIT_ASSERT(p && malloc_usable_size(p) >= 100);
                free(p);
                free(x);
                free(y);
                free(before);
                free(after);
            }
    void *q = aligned_alloc(256 * 1024, 0); /* glibc: a pointer */
    UNIT_ASSERT(q && (uintptr_t)q % (256 * 1024) == 0);
    free(q);
}

UNIT_TEST(t_calloc)
{
    /* dirty memory first, so a calloc that reuses it must clear it */
    for (size_t n = 16; n <= ((size_t)1 << 22); n *= 4) {
        unsigned char *d = malloc(n);
        memset(d, 0xff, n);
        free(d);
        unsigned char *z = calloc(1, n);
        UNIT_ASSERT(z);
        for (size_t i = 0; i < n; i++)
            if (z[i]) {
                UNIT_ASSERT(!"calloc memory not zero");
                break;
            }
        free(z);
    }
    errno = 0;
    UNIT_ASSERT(calloc(SIZE_MAX / 2, 3) == NULL);
    UNIT_EQ(errno, ENOMEM);
    errno = 0;
    UNIT_ASSERT(reallocarray(NULL, SIZE_MAX / 2, 3) == NULL);
    UNIT_EQ(errno, ENOMEM);
}

UNIT_TEST(t_realloc)
{
    /* grow a byte at a time through small, the threshold and large */
    size_t n = 1;
    unsigned char *p = malloc(1);
    p[0] = 0;
    unit_seed(42);
    while (n < 3 * LARGE) {
        size_t m = n + 1 + unit_below(n);
        p = realloc(p, m);
        UNIT_ASSERT(p);
        for (size_t i = n; i < m; i++)
            p[i] = (unsigned char)i;
        n = m;
        for (size_t i = 0; i < n; i += 97)
            UNIT_EQ(p[i], (unsigned char)i);
    }
    /* and shrink back down */
    while (n > 10) {
        n /= 3;
        p = realloc(p, n);
        UNIT_ASSERT(p);
        for (size_t i = 0; i < n; i += 13)
            UNIT_EQ(p[i], (unsigned char)i);
    }
    UNIT_ASSERT(realloc(p, 0) == NULL); /* frees, as glibc */
    p = realloc(NULL, 10);
    UNIT_ASSERT(p);
    errno = 0;
    UNIT_ASSERT(realloc(p, SIZE_MAX - 10) == NULL);
    UNIT_EQ(errno, ENOMEM);
    free(p);
}

UNIT_TEST(t_usable_size)
{
    for (size_t n = 1; n < 3 * LARGE; n = n * 5 / 4 + 1) {
        unsigned char *p = malloc(n);
        size_t u = malloc_usable_size(p);
        UNIT_ASSERT(u >= n);
        memset(p, 1, u); /* all of it is ours to write */
        free(p);
    }
}

UNIT_TEST(t_errno)
{
    errno = 0;
    UNIT_ASSERT(malloc(SIZE_MAX) == NULL);
    UNIT_EQ(errno, ENOMEM);
    errno = 0;
    UNIT_ASSERT(malloc(PTRDIFF_MAX + (size_t)1) == NULL);
    UNIT_EQ(errno, ENOMEM);
    errno = 0;
    UNIT_ASSERT(aligned_alloc(3, 10) == NULL);
    UNIT_EQ(errno, EINVAL);
    void *p = (void *)1;
    errno = 1234;
    UNIT_EQ(posix_memalign(&p, 3, 10), EINVAL);
    UNIT_EQ(posix_memalign(&p, 4, 10), EINVAL); /* not a multiple of void* */
    UNIT_EQ(posix_memalign(&p, 64, SIZE_MAX / 2), ENOMEM);
    UNIT_EQ(errno, 1234); /* posix_memalign leaves errno alone */
    UNIT_ASSERT(p == (void *)1);
    p = malloc(10);
    errno = 77;
    free(p);
    UNIT_EQ(errno, 77);
}

/* ---- bad frees: in a child, which must print one line and abort ---------- */

static void *free_it(void *p)
{
    free(p);
    return NULL;
}

static void child_bad(const char *what)
{
    unsigned char *p = malloc(100), *g = malloc(LARGE * 2);
    int local;
    if (!strcmp(what, "double")) {
        free(p);
        free(p);
    } else if (!strcmp(what, "double-large")) {
        free(g);
        free(g);
    } else if (!strcmp(what, "foreign")) {
        free(&local);
    } else if (!strcmp(what, "interior")) {
        free(p + 32);
    } else if (!strcmp(what, "interior-large")) {
        free(g + 8192);
    } else if (!strcmp(what, "double-xthread")) {
        /* freed (into its cache) by another thread, then freed here */
        pthread_t t;
        if (pthread_create(&t, NULL, free_it, p) == 0)
            pthread_join(t, NULL);
        free(p);
    } else if (!strcmp(what, "double-later")) {
        /* freed, other objects of its size freed after it: still caught */
        void *q[8];
        free(p);
        for (int i = 0; i < 8; i++)
            q[i] = malloc(100 + (size_t)i);
        for (int i = 0; i < 8; i++)
            free(q[i]);
        free(p);
    } else if (!strcmp(what, "realloc-freed")) {
        free(p);
        p = realloc(p, 50);
    } else if (!strcmp(what, "realloc-moved")) {
        /* moved by realloc (to another size class of the caches): the
         * old pointer is freed */
        unsigned char *q = realloc(p, 400);
        if (q == p) /* resized in place (no caches): free it twice */
            free(q);
        free(p);
    } else if (!strcmp(what, "ignored")) {
        free(p);
        free(p); /* CATENA_ABORT_ON_ERROR=0: reported, ignored */
        free(&local);
        void *q = malloc(100);
        free(q);
        fputs("survived\n", stderr);
        exit(0);
    }
    _exit(3); /* not reached when the shim aborts */
}

UNIT_TEST(t_bad_free)
{
    static const struct {
        const char *name, *expect;
    } cases[] = {
        {"double", "catena: free(): double free"},
        {"double-xthread", "catena: free(): double free"},
        {"double-later", "catena: free(): double free"},
        {"realloc-freed", "catena: realloc(): double free"},
        {"realloc-moved", "catena: free(): double free"},
        {"double-large", "catena: free(): invalid pointer"},
        {"foreign", "catena: free(): invalid pointer"},
        {"interior", "catena: free(): interior pointer"},
        {"interior-large", "catena: free(): interior pointer"},
    };
    char err[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = rerun(cases[i].name, NULL, NULL, err, sizeof err);
        UNIT_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
        UNIT_ASSERT(strstr(err, cases[i].expect) != NULL);
        UNIT_ASSERT(strstr(err, " 0x") != NULL); /* names the address */
        UNIT_ASSERT(strchr(err, '\n') == err + strlen(err) - 1); /* one line */
    }
    int st = rerun("ignored", "CATENA_ABORT_ON_ERROR=0", NULL, err, sizeof err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    UNIT_ASSERT(strstr(err, "double free") && strstr(err, "ignored") &&
                strstr(err, "survived"));
}

/* ---- threads ------------------------------------------------------------- */

#define NT 4
#define QCAP 4096
static struct {
    pthread_mutex_t m;
    void *q[QCAP];
    unsigned seed[QCAP];
    size_t size[QCAP];
    size_t n;
} xq = {.m = PTHREAD_MUTEX_INITIALIZER};

static void *worker(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 7919 + 1;
    unsigned long iters = UNIT_ITERS(100000);
    int bad = 0;
    for (unsigned long i = 0; i < iters; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        size_t n = (s >> 33) % 512 + 1;
        if ((s >> 20) % 200 == 0)
            n = LARGE + (s >> 40) % (4 * LARGE); /* sometimes large */
        unsigned seed = (unsigned)(s >> 50);
        unsigned char *p;
        if ((s >> 12) % 4 == 0) { /* aligned: sizes from 0, rarely huge */
            unsigned shift = 4 + (unsigned)((s >> 14) % 9); /* 16 B..4 KiB */
            if ((s >> 24) % 500 == 0)
                shift = 13 + (unsigned)((s >> 27) %
                                        (MAX_ALIGN_SHIFT - 12)); /* 8 KiB.. */
            if ((s >> 45) % 3 == 0)
                n = (s >> 47) % 3; /* 0, 1, 2 */
            unsigned fn = (unsigned)(s >> 36);
            p = aligned_by(fn, (size_t)1 << shift, n);
            if (p && (uintptr_t)p % align_of_fn(fn, (size_t)1 << shift))
                return (void *)2;
        } else {
            p = (s >> 10) % 3 ? malloc(n) : calloc(1, n);
        }
        if (!p)
            return (void *)1;
        if (malloc_usable_size(p) < n)
            return (void *)3;
        fill(p, n < 64 ? n : 64, seed);
        /* hand it to whichever thread comes next; free what we get */
        void *got = NULL;
        unsigned gseed = 0;
        size_t gsize = 0;
        pthread_mutex_lock(&xq.m);
        if (xq.n < QCAP) {
            xq.q[xq.n] = p;
            xq.seed[xq.n] = seed;
            xq.size[xq.n++] = n;
            p = NULL;
        }
        if (xq.n > QCAP / 2 || !p) {
            size_t k = (s >> 5) % xq.n;
            got = xq.q[k];
            gseed = xq.seed[k];
            gsize = xq.size[k];
            xq.q[k] = xq.q[--xq.n];
            xq.seed[k] = xq.seed[xq.n];
            xq.size[k] = xq.size[xq.n];
        }
        pthread_mutex_unlock(&xq.m);
        if (got) {
            bad |= !same(got, gsize < 64 ? gsize : 64, gseed);
            if ((s >> 8) % 4 == 0)
                got = realloc(got, gsize * 2 + 1);
            free(got);
        }
        free(p);
    }
    return (void *)(uintptr_t)bad;
}

UNIT_TEST(t_threads)
{
    pthread_t t[NT];
    for (uintptr_t i = 0; i < NT; i++)
        UNIT_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < NT; i++) {
        void *r;
        pthread_join(t[i], &r);
        UNIT_ASSERT(r == NULL);
    }
    while (xq.n)
        free(xq.q[--xq.n]);
}

/* ---- fork from a multi-threaded program ------------------------------------- */

static volatile int stop;
static void *churn(void *arg)
{
    (void)arg;
    size_t i = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        void *p = malloc(i % 3 ? 40 + i % 300 : LARGE + i % 10000);
        free(p);
        i++;
    }
    return NULL;
}

UNIT_TEST(t_fork_threads)
{
    pthread_t t[3];
    stop = 0;
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, churn, NULL);
    unsigned char *big = malloc(4 * LARGE), *small = malloc(200);
    fill(big, 4 * LARGE, 9);
    fill(small, 200, 5);
    for (int k = 0; k < 20; k++) {
        pid_t pid = fork();
        UNIT_ASSERT(pid >= 0);
        if (pid == 0) {
            /* the child sees the parent's data, allocates, and its
             * writes stay its own */
            int ok = same(big, 4 * LARGE, 9) && same(small, 200, 5);
            for (int j = 0; j < 1000 && ok; j++) {
                unsigned char *p = malloc((size_t)j * 37 + 1);
                unsigned char *g = malloc(LARGE + (size_t)j);
                ok = p && g;
                free(p);
                free(g);
            }
            memset(big, 0, 4 * LARGE);
            big = realloc(big, 8 * LARGE);
            free(big);
            _exit(ok ? 0 : 1);
        }
        int st;
        UNIT_ASSERT(waitpid(pid, &st, 0) == pid);
        UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        UNIT_ASSERT(same(big, 4 * LARGE, 9)); /* untouched by the child */
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    free(big);
    free(small);
}

/* ---- fixed arena: ENOMEM exactly at the documented bound ------------------- */
/* CATENA_ARENA=4M is 1024 pages; a large object of n bytes needs
 * ceil(n / page) of them, wherever they are. */

static int child_fixed(void)
{
    size_t pg = PAGE, pool = ((size_t)4 << 20) / pg, obj = pool / 8;
    void *o[8];
    for (int i = 0; i < 8; i++)
        if (!(o[i] = malloc(obj * pg)))
            return 10 + i;
    errno = 0;
    if (malloc(LARGE) != NULL || errno != ENOMEM) /* pool full */
        return 20;
    for (int i = 0; i < 8; i += 2) /* free 4 runs, not adjacent */
        free(o[i]);
    void *p = malloc(4 * obj * pg + 1); /* one page too many */
    if (p != NULL || errno != ENOMEM)
        return 21;
    p = malloc(4 * obj * pg); /* exactly the free pages: a chain */
    if (!p)
        return 22;
    memset(p, 0x5a, 4 * obj * pg);
    void *q = malloc(100); /* small objects are not in the pool */
    if (!q)
        return 23;
    free(p);
    p = realloc(o[1], 4 * obj * pg + obj * pg); /* grows into freed pages */
    if (!p)
        return 24;
    p = realloc(p, 6 * obj * pg); /* 1 page more than is free */
    if (p)
        return 25;
    return 0;
}

UNIT_TEST(t_fixed_arena)
{
    char err[4096];
    int st = rerun("fixed", "CATENA_ARENA=4M", "CATENA_STATS=1", err, sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "child status %d, stderr:\n%s", st, err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    UNIT_ASSERT(strstr(err, "fixed pool 4096 KiB") != NULL);
    UNIT_ASSERT(strstr(err, "catena: ENOMEM 3 times") != NULL);
    UNIT_ASSERT(strstr(err, "catena: summary:") != NULL);
}

UNIT_TEST(t_check_option)
{
    char err[4096];
    int st = rerun("churn", "CATENA_CHECK=100", NULL, err, sizeof err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int child_churn(void)
{
    void *p[256] = {0};
    unit_seed(7);
    for (int i = 0; i < 20000; i++) {
        size_t k = unit_below(256);
        free(p[k]);
        p[k] = malloc(unit_below(8) ? 1 + unit_below(2000) : LARGE + unit_below(LARGE));
    }
    for (int k = 0; k < 256; k++)
        free(p[k]);
    return 0;
}

/* ---- per-thread caches --------------------------------------------------- */

/* Threads that fill their caches and exit: the caches go back to the heap
 * at thread exit, so the exit report counts (almost) no small objects. */
static void *fill_cache(void *arg)
{
    void *p[200];
    (void)arg;
    for (int i = 0; i < 200; i++)
        p[i] = malloc(40 + (size_t)(i % 3) * 40);
    for (int i = 0; i < 200; i++)
        free(p[i]);
    return NULL;
}

static int child_tc_exit(void)
{
    for (int i = 0; i < 40; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, fill_cache, NULL) != 0 ||
            pthread_join(t, NULL) != 0)
            return 2;
    }
    return 0;
}

/* The number after "small: N arenas, " in the CATENA_STATS report. */
static long stat_objects(const char *err)
{
    const char *s = strstr(err, "catena: small: ");
    if (!s || !(s = strstr(s, "arenas, ")))
        return -1;
    return strtol(s + 8, NULL, 10);
}

UNIT_TEST(t_tcache_exit)
{
    char err[4096];
    int st = rerun("tc-exit", "CATENA_STATS=1", NULL, err, sizeof err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long with = stat_objects(err);
    st = rerun("tc-exit", "CATENA_STATS=1", "CATENA_TCACHE=0", err,
               sizeof err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long without = stat_objects(err);
    /* 40 threads x 200 objects would be cached without the flush */
    UNIT_ASSERT(with >= 0 && without >= 0);
    UNIT_ASSERT(with <= without + 64);
}

/* A small object freed by the parent's threads before fork is usable in
 * the child, and objects cached by a thread are reused after its exit. */
UNIT_TEST(t_tcache_reuse)
{
    unsigned char *p = malloc(64);
    UNIT_ASSERT(p != NULL);
    free(p);
    unsigned char *q = malloc(64);
    const char *tc = getenv("CATENA_TCACHE");
    if (!tc || strcmp(tc, "0"))
        UNIT_ASSERT(q == p); /* the cache is LIFO */
    memset(q, 1, 64);
    UNIT_EQ(malloc_usable_size(q), 64);
    free(q);
    q = calloc(1, 64); /* a cached block comes back zeroed for calloc */
    UNIT_ASSERT(q != NULL);
    for (int i = 0; i < 64; i++)
        UNIT_EQ(q[i], 0);
    /* realloc in place keeps it a cacheable object of the new size */
    unsigned char *r = realloc(q, 200);
    UNIT_ASSERT(r != NULL);
    UNIT_ASSERT(malloc_usable_size(r) >= 200);
    free(r);
    r = malloc(200);
    UNIT_ASSERT(r != NULL);
    free(r);
}

/* An exited thread's cache goes to the next thread that starts in its
 * slot (preload/tcache.c, orphan): that thread's first mallocs get the
 * objects the other one freed, newest first, without a refill from
 * catena (which would hand out the lowest address first).  Both threads
 * start with the same slot counts, so they choose the same slot. */
static void *adopt_fill(void *arg)
{
    void **p = arg;
    for (int i = 0; i < 4; i++)
        p[i] = malloc(100);
    for (int i = 0; i < 4; i++)
        free(p[i]);
    return NULL;
}

static void *adopt_take(void *arg)
{
    void **q = arg;
    for (int i = 0; i < 4; i++)
        q[i] = malloc(100);
    return NULL;
}

UNIT_TEST(t_tcache_adopt)
{
    void *p[4], *q[4];
    pthread_t t;
    UNIT_ASSERT(pthread_create(&t, NULL, adopt_fill, p) == 0);
    UNIT_ASSERT(pthread_join(t, NULL) == 0);
    UNIT_ASSERT(pthread_create(&t, NULL, adopt_take, q) == 0);
    UNIT_ASSERT(pthread_join(t, NULL) == 0);
    const char *tc = getenv("CATENA_TCACHE");
    for (int i = 0; i < 4; i++) {
        UNIT_ASSERT(q[i] != NULL);
        if (!tc || strcmp(tc, "0"))
            UNIT_ASSERT(q[i] == p[3 - i]);
    }
    for (int i = 0; i < 4; i++)
        free(q[i]);
}

/* realloc of a cached-size object to a cached size: kept in place while
 * its size in blocks stays, else moved through the cache with its bytes
 * (the old object then is the cache's: a malloc of its size gets it). */
UNIT_TEST(t_tcache_realloc)
{
    const char *tc = getenv("CATENA_TCACHE");
    bool cached = !tc || strcmp(tc, "0");
    unsigned char *p = malloc(40); /* 2 blocks of 32 */
    UNIT_ASSERT(p != NULL);
    fill(p, 40, 7);
    UNIT_ASSERT(realloc(p, 64) == p); /* still 2 blocks */
    UNIT_ASSERT(realloc(p, 33) == p);
    UNIT_ASSERT(same(p, 33, 7));
    unsigned char *q = realloc(p, 700); /* 22 blocks */
    UNIT_ASSERT(q != NULL);
    UNIT_ASSERT(same(q, 33, 7));
    UNIT_ASSERT(malloc_usable_size(q) >= 700);
    if (cached) {
        UNIT_ASSERT(q != p); /* moved... */
        unsigned char *r = malloc(60);
        UNIT_ASSERT(r == p); /* ...and the old object is cached */
        free(r);
    }
    fill(q, 700, 9);
    unsigned char *r = realloc(q, 100); /* shrinks to 4 blocks */
    UNIT_ASSERT(r != NULL);
    UNIT_ASSERT(same(r, 100, 9));
    UNIT_ASSERT(malloc_usable_size(r) >= 100);
    if (cached)
        UNIT_ASSERT(malloc_usable_size(r) == 128);
    free(r);
}

/* ---- CATENA_TRIM: free small-object pages go back to the OS ------------- */

/* Resident set size in KiB, from /proc/self/statm (read without malloc). */
static long rss_kib(void)
{
    char b[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return -1;
    b[n] = '\0';
    char *s = strchr(b, ' ');
    return s ? strtol(s + 1, NULL, 10) * (long)(PAGE / 1024) : -1;
}

#define TRIM_OBJS (64 * 1024) /* of 16..2048 B: ~64 MiB */
static void *trim_obj[TRIM_OBJS];

/* ~64 MiB of small objects (some through the per-thread caches, some
 * not), every byte written, then all freed in random order.  `on`: RSS
 * must fall by at least 2/3 of what they added (not all: new arenas'
 * tables, cached objects, and the pages completed by the frees after the
 * last trim stay); off: by at most 1/4. */
static int child_trim(bool on)
{
    memset(trim_obj, 0, sizeof trim_obj); /* resident before r0 */
    long r0 = rss_kib();
    unit_seed(11);
    for (size_t i = 0; i < TRIM_OBJS; i++) {
        size_t n = 16 + unit_below(2033);
        if (!(trim_obj[i] = malloc(n)))
            return 2;
        memset(trim_obj[i], 0x5a, n);
    }
    long r1 = rss_kib();
    for (size_t i = TRIM_OBJS - 1; i > 0; i--) {
        size_t j = unit_below(i + 1);
        void *t = trim_obj[i];
        trim_obj[i] = trim_obj[j];
        trim_obj[j] = t;
    }
    for (size_t i = 0; i < TRIM_OBJS; i++)
        free(trim_obj[i]);
    long r2 = rss_kib();
    long grew = r1 - r0, fell = r1 - r2;
    fprintf(stderr, "trim %s: rss %ld KiB, +%ld KiB allocated, -%ld KiB freed\n",
            on ? "on" : "off", r0, grew, fell);
    if (r0 < 0 || grew < 48 * 1024)
        return 3;
    if (on ? fell < grew / 3 * 2 : fell > grew / 4)
        return 4;
    /* the released memory is usable again (reads as anything, writes) */
    for (size_t i = 0; i < TRIM_OBJS / 4; i++) {
        size_t n = 16 + unit_below(2033);
        if (!(trim_obj[i] = malloc(n)))
            return 5;
        memset(trim_obj[i], 0xa5, n);
    }
    for (size_t i = 0; i < TRIM_OBJS / 4; i++) {
        const unsigned char *c = trim_obj[i];
        if (c[0] != 0xa5)
            return 6;
        free(trim_obj[i]);
    }
    return 0;
}

UNIT_TEST(t_trim)
{
    char err[4096];
    int st = rerun("trim-on", NULL, NULL, err, sizeof err); /* the default */
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "child status %d, stderr:\n%s", st, err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = rerun("trim-on", "CATENA_TRIM=256K", "CATENA_CHECK=5000", err,
               sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "child status %d, stderr:\n%s", st, err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = rerun("trim-off", "CATENA_TRIM=0", NULL, err, sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "child status %d, stderr:\n%s", st, err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A producer/consumer swing: a live set that rises to ~3 MiB (objects of
 * 16..512 B, written) and falls to nothing, CHURN_CYCLES times.  Each fall
 * is more than CATENA_TRIM (1 MiB) and more than half of what stays, so
 * a trim without hysteresis madvises on every cycle and the next rise
 * faults the pages back in.  The trim must learn that the swing comes
 * back (doc/preload.md, "Giving free small-object memory back"): at most
 * TRIM_CHURN_MAX madvise calls per 10^6 calls, where the old policy made
 * 7300 (strace: 7032 calls in this run; now 161). */
#define CHURN_CYCLES 40
#define CHURN_OBJS 12000
#define TRIM_CHURN_MAX 300
static int child_trim_churn(void)
{
    unit_seed(12);
    for (int c = 0; c < CHURN_CYCLES; c++) {
        for (size_t i = 0; i < CHURN_OBJS; i++) {
            size_t n = 16 + unit_below(497);
            if (!(trim_obj[i] = malloc(n)))
                return 2;
            memset(trim_obj[i], 0x3c, n);
        }
        for (size_t i = 0; i < CHURN_OBJS; i++)
            free(trim_obj[i]);
    }
    return 0;
}

/* The number before `key` in the CATENA_STATS trim line, 0 without one
 * (no trim made none). */
static long stat_trim(const char *err, const char *key)
{
    const char *s = strstr(err, "catena: trim: ");
    if (!s)
        return 0;
    const char *k = strstr(s, key);
    if (!k)
        return -1;
    while (k > s && k[-1] == ' ')
        k--;
    while (k > s && k[-1] >= '0' && k[-1] <= '9')
        k--;
    return strtol(k, NULL, 10);
}

UNIT_TEST(t_trim_churn)
{
    char err[4096];
    int st = rerun("trim-churn", "CATENA_STATS=1", NULL, err, sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        fprintf(stderr, "child status %d, stderr:\n%s", st, err);
    UNIT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long calls = stat_trim(err, " madvise calls");
    long passes = stat_trim(err, " passes");
    fprintf(stderr, "trim churn: %ld passes, %ld madvise calls\n", passes,
            calls);
    UNIT_ASSERT(calls >= 0 && passes >= 0);
    double ops = 2.0 * CHURN_CYCLES * CHURN_OBJS;
    UNIT_ASSERT(calls * 1e6 / ops <= TRIM_CHURN_MAX);
}

static const unit_case cases[] = {
    UNIT_CASE(t_entry_points), UNIT_CASE(t_alignments), UNIT_CASE(t_calloc),
    UNIT_CASE(t_realloc),      UNIT_CASE(t_tcache_realloc),
    UNIT_CASE(t_usable_size),  UNIT_CASE(t_errno),
    UNIT_CASE(t_bad_free),     UNIT_CASE(t_threads),    UNIT_CASE(t_fork_threads),
    UNIT_CASE(t_fixed_arena),  UNIT_CASE(t_check_option),
    UNIT_CASE(t_tcache_exit),  UNIT_CASE(t_tcache_reuse),
    UNIT_CASE(t_tcache_adopt),
    UNIT_CASE(t_trim),         UNIT_CASE(t_trim_churn),
    UNIT_CASE(t_aligned_zero),
};

int main(int argc, char **argv)
{
    self = argv[0];
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "catena-preload")) {
        puts("not under libcatena-preload.so (run t/preload/unit.sh): skip");
        return 77;
    }
    if (argc == 3 && !strcmp(argv[1], "--child")) {
        if (!strcmp(argv[2], "fixed"))
            return child_fixed();
        if (!strcmp(argv[2], "churn"))
            return child_churn();
        if (!strcmp(argv[2], "tc-exit"))
            return child_tc_exit();
        if (!strcmp(argv[2], "trim-churn"))
            return child_trim_churn();
        if (!strcmp(argv[2], "trim-on") || !strcmp(argv[2], "trim-off"))
            return child_trim(!strcmp(argv[2], "trim-on"));
        child_bad(argv[2]);
        return 4;
    }
    self = realpath("/proc/self/exe", NULL);
    return unit_main("preload", cases, sizeof cases / sizeof cases[0]);
}
