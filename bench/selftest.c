/*
 * selftest.c - `catena-bench selftest` (make check): the workloads are
 * deterministic (same seed, same stream; another seed, another stream),
 * traces round-trip, corrupt traces give clear errors.
 */
#define _GNU_SOURCE
#include "ctx.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A new empty file for the self-test, named by process and a counter in
 * $TMPDIR (or /tmp), created exclusively.  Returns its descriptor. */
static int selftest_file(char *path, size_t n)
{
    static unsigned count;
    const char *dir = getenv("TMPDIR");
    snprintf(path, n, "%s/catena-bench-selftest-%ld-%u", dir ? dir : "/tmp",
             (long)getpid(), count++);
    return open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
}

/* Documented in ctx.h. */
int selftest(void)
{
    int fails = 0;
    struct wparams p = {.seed = 7, .scale = 0.05, .interp_iters = 200};
    for (int w = 0; w < W_REPLAY; w++) {
        struct bstream a, b;
        workload_gen(w, &p, &a);
        workload_gen(w, &p, &b);
        bool same = a.nops == b.nops && a.hash == b.hash &&
                    !memcmp(a.ops, b.ops, a.nops * sizeof *a.ops);
        p.seed = 8;
        struct bstream c;
        workload_gen(w, &p, &c);
        p.seed = 7;
        bool differs = c.hash != a.hash || w == W_ROBSON || w == W_MICRO1;
        printf("%s determinism %-9s %zu ops hash %016llx\n",
               same && differs ? "ok  " : "FAIL", workload_name(w), a.nops,
               (unsigned long long)a.hash);
        fails += !(same && differs);
        /* trace round trip */
        char path[PATH_MAX];
        int fd = selftest_file(path, sizeof path);
        if (fd >= 0)
            close(fd);
        struct bstream t;
        char err[512];
        bool rt = fd >= 0 && trace_save(&a, path) == 0 &&
                  trace_load(path, &t, err, sizeof err) == 0;
        if (rt) {
            rt = t.allocs == a.allocs && t.peak_live == a.peak_live;
            bstream_free(&t);
        }
        printf("%s trace round trip %s\n", rt ? "ok  " : "FAIL",
               workload_name(w));
        fails += !rt;
        unlink(path);
        bstream_free(&a);
        bstream_free(&b);
        bstream_free(&c);
    }
    /* corrupt traces: clear errors, never a crash */
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
    } bad[] = {
        {"empty file", "", 0},
        {"bad magic", "NOTATRACE0000000", 16},
        {"bad version", "CATRACE1\x09\0\0\0\0\0\0\0", 16},
        {"truncated record", "CATRACE1\x01\0\0\0\0\0\0\0\x01\0\0\0", 20},
        {"unknown op",
         "CATRACE1\x01\0\0\0\0\0\0\0"
         "\x09\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
         "\0",
         48},
        {"no allocations", "CATRACE1\x01\0\0\0\0\0\0\0", 16},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[PATH_MAX];
        int fd = selftest_file(path, sizeof path);
        if (fd < 0)
            return 1;
        if (write(fd, bad[i].bytes, bad[i].len) != (ssize_t)bad[i].len)
            fails++;
        close(fd);
        struct bstream t;
        char err[512] = "";
        int rc = trace_load(path, &t, err, sizeof err);
        printf("%s corrupt trace (%s): %s\n",
               rc != 0 && err[0] ? "ok  " : "FAIL", bad[i].what, err);
        fails += !(rc != 0 && err[0]);
        unlink(path);
    }
    printf("%s\n", fails ? "selftest FAILED" : "selftest passed");
    return fails ? 1 : 0;
}
