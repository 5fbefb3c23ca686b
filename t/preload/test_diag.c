/*
 * test_diag.c - programs with one bug each, run under the shim by
 * t/preload/diag.sh, which checks what the shim says (stderr) and how the
 * program ends.  Also the traced programs of t/preload/trace.sh, which end
 * by _exit, by the shim's abort, and by exec.
 *
 *   test_diag CASE [ARG]
 *
 * Every case that expects the shim to abort ends with _exit(3), so a bug
 * the shim missed shows as exit status 3, not as a pass.
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* These programs make the mistakes the compiler rightly warns about. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif

#define TRACE_SIZE 12345 /* the size trace.sh counts in the traces */

/* Two objects of n bytes, b right after a (usable sizes touch). */
static void adjacent(size_t n, unsigned char **a, unsigned char **b)
{
    static unsigned char *p[64];
    for (int i = 0; i < 64; i++)
        p[i] = malloc(n);
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++)
            if (p[j] == p[i] + malloc_usable_size(p[i])) {
                *a = p[i];
                *b = p[j];
                return;
            }
    fputs("no adjacent objects\n", stderr);
    _exit(2);
}

/* The calls after a corruption: the shim must stop at one of them. */
static void churn(size_t n)
{
    for (int i = 0; i < 64; i++)
        free(malloc(n)), malloc(n);
}

/* Allocate and free some objects of TRACE_SIZE bytes (count of each). */
static void traced_work(int count)
{
    void *p[64]; /* count <= 64 */
    for (int i = 0; i < count; i++)
        p[i] = malloc(TRACE_SIZE);
    for (int i = 0; i < count; i += 2)
        free(p[i]);
}

/* Objects another thread frees past its cache's bound land in the
 * depot of the slot that allocated them (preload/tcache.c). */
#define DEPOT_N 257 /* 4-block objects: a list holds 256 */
static unsigned char *depot_obj[DEPOT_N];

static void *free_all(void *arg)
{
    (void)arg;
    for (int i = 0; i < DEPOT_N; i++)
        free(depot_obj[i]);
    return NULL;
}

/* An object of 100 bytes in this thread's slot's depot: the newest of the
 * half that another thread's 257th free of that size gave back. */
static unsigned char *in_depot(void)
{
    pthread_t t;
    for (int i = 0; i < DEPOT_N; i++)
        depot_obj[i] = malloc(100);
    if (pthread_create(&t, NULL, free_all, NULL) || pthread_join(t, NULL))
        exit(2);
    return depot_obj[DEPOT_N - 1];
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    unsigned char *a, *b;
    if (!strcmp(c, "overflow")) {
        /* an 8-byte overflow of a into its freed neighbour b */
        adjacent(24, &a, &b);
        free(b);
        memset(a, 'A', malloc_usable_size(a) + 8);
        churn(24);
    } else if (!strcmp(c, "overflow-big")) {
        /* the same past the caches' sizes: the free run's header is
         * catena's (lib/ checks it before following its links) */
        adjacent(2000, &a, &b);
        free(b);
        memset(a, 'A', malloc_usable_size(a) + 8);
        churn(2000);
        free(a);
    } else if (!strcmp(c, "uaf")) {
        /* a write after free to the object's first word (zeroing it) */
        a = malloc(24);
        free(a);
        memset(a, 0, 8);
        churn(24);
    } else if (!strcmp(c, "uaf-other")) {
        /* corrupt a cached object, then only use other sizes: found by
         * CATENA_CHECK's walk of the caches, before the next call */
        a = malloc(24);
        free(a);
        memcpy(a, "AAAAAAAA", 8);
        churn(500);
        return 0; /* nothing touched that list: no report without a check */
    } else if (!strcmp(c, "uaf-depot")) {
        /* corrupt an object in a depot, then allocate its size until the
         * refill takes it (or, with CATENA_CHECK, use another size) */
        a = in_depot();
        memcpy(a, "AAAAAAAA", 8);
        for (int i = 0; i < 300; i++)
            malloc(getenv("CATENA_CHECK") ? 24 : 100);
        return 0;
    } else if (!strcmp(c, "double-depot")) {
        a = in_depot();
        free(a);
    } else if (!strcmp(c, "wild")) {
        /* never an object: 64 bytes into a freed 4000-byte object */
        a = malloc(4000);
        free(a);
        free(a + 64);
    } else if (!strcmp(c, "double-merged")) {
        /* b coalesced with its freed neighbour a, then freed again */
        adjacent(4000, &a, &b);
        free(a);
        free(b);
        free(b);
    } else if (!strcmp(c, "double-aligned")) {
        a = memalign(256, 100);
        free(a);
        free(a);
    } else if (!strcmp(c, "arena-start")) {
        /* the start of a small object's arena (the header; nothing is
         * mapped below it): 32 MiB arenas, or a smaller build's size,
         * which divides it (the address is then an arena's or no one's) */
        a = malloc(16);
        free((void *)((uintptr_t)a & ~(uintptr_t)((32u << 20) - 1)));
    } else if (!strcmp(c, "enomem")) {
        /* requests above PTRDIFF_MAX: ENOMEM, and counted (CATENA_STATS) */
        a = malloc(10);
        if (malloc((size_t)PTRDIFF_MAX + 1) || calloc(SIZE_MAX / 2, 3) ||
            realloc(a, SIZE_MAX - 10) || reallocarray(a, SIZE_MAX / 2, 3))
            return 1;
        free(a);
        return 0;
    } else if (!strcmp(c, "large")) {
        /* CATENA_LARGE is capped: the program still works */
        free(malloc(20 << 20));
        return 0;
    } else if (!strcmp(c, "trace-exit")) {
        traced_work(40);
        _exit(0); /* no exit destructor */
    } else if (!strcmp(c, "trace-abort")) {
        traced_work(40);
        a = malloc(100);
        free(a);
        free(a); /* the shim aborts */
    } else if (!strcmp(c, "trace-kill")) {
        traced_work(40);
        kill(getpid(), SIGKILL);
    } else if (!strcmp(c, "trace-exec") && argc > 2) {
        /* traced, then exec (no destructor) a traced program that writes
         * its own file */
        traced_work(40);
        setenv("CATENA_TRACE", argv[2], 1);
        execl(argv[0], argv[0], "trace-exit", (char *)NULL);
        return 1;
    } else if (!strcmp(c, "trace-fds") && argc > 2) {
        /* close every descriptor and reuse the numbers for files of our
         * own, left open until exit: no record may land in them */
        for (int fd = 0; fd < 64; fd++)
            close(fd);
        char name[4096];
        for (int i = 0; i < 5; i++) {
            snprintf(name, sizeof name, "%s.%d", argv[2], i);
            int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd != i || write(fd, "mine\n", 5) != 5)
                return 1;
        }
        for (int i = 0; i < 60; i++)
            traced_work(64);
        return 0;
    } else {
        fprintf(stderr, "test_diag: unknown case %s\n", c);
        return 2;
    }
    _exit(3); /* the shim should have aborted */
}
