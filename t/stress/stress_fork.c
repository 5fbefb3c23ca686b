/*
 * stress_fork.c - fork from a multi-threaded program while the other
 * threads allocate, for running under the shim (make check-long).
 *
 * T allocator threads run malloc / realloc / free with content checks
 * while the main thread forks F times.  Each child must be able to
 * allocate at once: it checks the blocks it inherited from the main
 * thread, frees them, allocates and checks new ones, starts a thread that
 * does the same, and exits normally (exit, so the shim's exit work runs
 * too).  A child that deadlocks is killed by its alarm and counts as a
 * failure; the parent has an alarm of its own.
 *
 * Usage: stress_fork [threads [forks [child-timeout-seconds]]]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress.h"

static atomic_bool stop;
static atomic_ulong churned;

static void die(const char *what)
{
    fprintf(stderr, "stress_fork[%d]: %s\n", (int)getpid(), what);
    abort();
}

/* A block of n bytes filled with byte v (n >= 1). */
static unsigned char *block(size_t n, unsigned char v)
{
    unsigned char *p = malloc(n);
    if (!p)
        die("malloc failed");
    memset(p, v, n);
    return p;
}

static void check(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            die("content changed");
}

/* A round of allocations, resizes and frees with checks. */
static void churn(uint64_t *r, unsigned rounds)
{
    enum { N = 64 };
    unsigned char *p[N] = {0};
    size_t n[N] = {0};
    for (unsigned i = 0; i < rounds; i++) {
        size_t k = next(r) % N;
        unsigned char v = (unsigned char)(k + 1);
        if (p[k]) {
            check(p[k], n[k], v);
            if (next(r) % 2) {
                free(p[k]);
                p[k] = NULL;
                continue;
            }
            size_t m = 1 + next(r) % (next(r) % 32 ? 512 : 200000);
            unsigned char *q = realloc(p[k], m);
            if (!q)
                die("realloc failed");
            check(q, n[k] < m ? n[k] : m, v);
            memset(q, v, m);
            p[k] = q;
            n[k] = m;
        } else {
            n[k] = 1 + next(r) % (next(r) % 32 ? 512 : 200000);
            p[k] = block(n[k], v);
        }
    }
    for (size_t k = 0; k < N; k++)
        if (p[k]) {
            check(p[k], n[k], (unsigned char)(k + 1));
            free(p[k]);
        }
}

static void *allocator(void *arg)
{
    uint64_t r = (uint64_t)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        churn(&r, 256);
        atomic_fetch_add(&churned, 1);
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    churn(arg, 500);
    return NULL;
}

/* In the child: inherited blocks intact, then fresh allocations. */
static void child(unsigned char **mine, size_t nmine, unsigned seconds)
{
    alarm(seconds); /* a deadlock ends here, by SIGALRM */
    for (size_t i = 0; i < nmine; i++) {
        check(mine[i], 100 + i, (unsigned char)i);
        free(mine[i]);
    }
    uint64_t r = (uint64_t)getpid();
    churn(&r, 500);
    pthread_t t;
    uint64_t r2 = r + 1;
    if (pthread_create(&t, NULL, child_thread, &r2))
        die("pthread_create in the child failed");
    pthread_join(t, NULL);
    exit(0);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 3;
    int forks = argc > 2 ? atoi(argv[2]) : 100;
    unsigned secs = argc > 3 ? (unsigned)atoi(argv[3]) : 20;
    if (threads < 1 || threads > 32 || forks < 1 || !secs) {
        fprintf(stderr, "usage: stress_fork [threads [forks [seconds]]]\n");
        return 2;
    }
    alarm(secs * 10 + (unsigned)forks); /* the parent itself must not hang */
    pthread_t t[32];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, allocator, (void *)(uintptr_t)(i + 1)))
            die("pthread_create failed");
    enum { MINE = 16 };
    unsigned char *mine[MINE];
    int failed = 0;
    for (int f = 0; f < forks; f++) {
        for (size_t i = 0; i < MINE; i++)
            mine[i] = block(100 + i, (unsigned char)i);
        pid_t pid = fork();
        if (pid < 0)
            die("fork failed");
        if (pid == 0)
            child(mine, MINE, secs);
        int st;
        if (waitpid(pid, &st, 0) != pid)
            die("waitpid failed");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "stress_fork: child %d of %d %s %d%s\n", f + 1,
                    forks, WIFEXITED(st) ? "exited with" : "killed by signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                    WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM
                        ? " (deadlocked: no exit within the timeout)"
                        : "");
            failed++;
        }
        for (size_t i = 0; i < MINE; i++) {
            check(mine[i], 100 + i, (unsigned char)i);
            free(mine[i]);
        }
    }
    atomic_store(&stop, true);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    if (!atomic_load(&churned))
        die("the allocator threads never ran");
    printf("stress_fork: %d forks beside %d allocating threads (%lu rounds): "
           "%d failed\n",
           forks, threads, (unsigned long)atomic_load(&churned), failed);
    return failed ? 1 : 0;
}
