/*
 * driver.c - replay one operation stream on a process allocator and report
 * time and resident memory.  Built once per allocator: catena-bench-glibc
 * (plain malloc; also run with LD_PRELOAD=libcatena-preload.so),
 * catena-bench-jemalloc (linked with -ljemalloc, which then serves malloc),
 * catena-bench-mimalloc (calls mi_malloc & co. directly).
 *
 *   catena-bench-ALLOC STREAM-FILE RSS-CSV|-
 *
 * The stream and the slot table are mapped (not malloc'd) and touched
 * before the baseline is read, so the result is the allocator's: resident
 * bytes at the peak (VmHWM) minus resident bytes just before the first
 * operation.  Prints one line of key=value pairs on stdout.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(DRIVER_MIMALLOC)
#include <mimalloc.h>
#define A_MALLOC mi_malloc
#define A_FREE mi_free
#define A_REALLOC mi_realloc
#else
#define A_MALLOC malloc
#define A_FREE free
#define A_REALLOC realloc
#endif
#if defined(DRIVER_JEMALLOC)
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
            size_t newlen);
#elif !defined(DRIVER_MIMALLOC)
#include <gnu/libc-version.h>
#endif

static double dnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A field of /proc/self/status given in kB (field is e.g. "VmHWM:"),
 * returned in bytes. */
static size_t status_bytes(const char *field)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strstr(buf, field);
    return p ? (size_t)strtoull(p + strlen(field), NULL, 10) * 1024u : 0;
}

static int statm_fd = -1;
static size_t page;

static size_t rss_now(void)
{
    char buf[128];
    ssize_t n = pread(statm_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *sp = strchr(buf, ' ');
    return sp ? (size_t)strtoull(sp + 1, NULL, 10) * page : 0;
}

static const char *version(void)
{
    static char v[64];
#if defined(DRIVER_JEMALLOC)
    const char *s = "?";
    size_t len = sizeof s;
    if (mallctl("version", &s, &len, NULL, 0) != 0)
        s = "?";
    snprintf(v, sizeof v, "jemalloc %.40s", s);
#elif defined(DRIVER_MIMALLOC)
    int x = mi_version();
    snprintf(v, sizeof v, "mimalloc %d.%d.%d", x / 100, x / 10 % 10, x % 10);
#else
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "catena"))
        snprintf(v, sizeof v, "libcatena-preload.so");
    else
        snprintf(v, sizeof v, "glibc %s", gnu_get_libc_version());
#endif
    for (char *c = v; *c; c++)
        if (*c == ' ')
            *c = '_';
    return v;
}

/* Does jemalloc serve plain malloc in this process?  Not inlined: its
 * calls are not the replay's (icount.c counts the calls main makes). */
__attribute__((noinline)) static int check_served(void)
{
#if defined(DRIVER_JEMALLOC)
    uint64_t a = 0, b = 0;
    size_t len = sizeof a;
    if (mallctl("thread.allocated", &a, &len, NULL, 0) != 0)
        return 0;
    void *volatile p = malloc(4000);
    len = sizeof b;
    mallctl("thread.allocated", &b, &len, NULL, 0);
    free(p);
    return b >= a + 4000;
#else
    void *volatile p = A_MALLOC(1);
    A_FREE(p);
    return 1;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s STREAM-FILE RSS-CSV|-\n", argv[0]);
        return 2;
    }
    page = (size_t)sysconf(_SC_PAGESIZE);
    statm_fd = open("/proc/self/statm", O_RDONLY);
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 ||
        (size_t)st.st_size < sizeof(struct bstream_hdr)) {
        fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
        return 2;
    }
    const unsigned char *map =
        mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return 2;
    const struct bstream_hdr *h = (const void *)map;
    const struct bop *ops = (const void *)(map + sizeof *h);
    if (h->magic != BSTREAM_MAGIC ||
        sizeof *h + h->nops * sizeof *ops != (size_t)st.st_size) {
        fprintf(stderr, "%s: %s: bad stream file\n", argv[0], argv[1]);
        return 2;
    }
    size_t nops = h->nops, nslots = h->nslots ? h->nslots : 1;
    /* fault the stream in, check its hash */
    uint64_t hash = fnv1a(1469598103934665603ULL, ops, nops * sizeof *ops);
    if (hash != h->hash) {
        fprintf(stderr, "%s: %s: hash mismatch\n", argv[0], argv[1]);
        return 2;
    }
    void **ptr = mmap(NULL, nslots * sizeof *ptr, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptr == MAP_FAILED)
        return 2;
    memset(ptr, 0, nslots * sizeof *ptr);
    if (!check_served()) {
        fprintf(stderr, "%s: the allocator does not serve malloc\n", argv[0]);
        return 3;
    }
    enum { NS = 200 };
    static size_t s_op[NS + 2], s_rss[NS + 2], s_live[NS + 2];
    size_t ns = 0, every = nops / NS + 1, live = 0, failed = 0;
    size_t base = rss_now();
    double t0 = dnow();
    for (size_t i = 0; i < nops; i++) {
        const struct bop *o = &ops[i];
        void *p;
        if (i % every == 0 && ns < NS + 1) {
            s_op[ns] = i;
            s_rss[ns] = rss_now();
            s_live[ns++] = live;
        }
        switch (o->kind) {
        case BOP_ALLOC:
            p = A_MALLOC(o->size);
            if (!p) {
                failed++;
                break;
            }
            if (h->touch)
                memset(p, 0x5A, o->size);
            ptr[o->slot] = p;
            live += o->size;
            break;
        case BOP_FREE:
            A_FREE(ptr[o->slot]);
            ptr[o->slot] = NULL;
            live -= o->old;
            break;
        case BOP_REALLOC:
            p = A_REALLOC(ptr[o->slot], o->size);
            if (!p) {
                failed++;
                break;
            }
            if (h->touch && o->size > o->old)
                memset((char *)p + o->old, 0x5A, o->size - o->old);
            ptr[o->slot] = p;
            live = live - o->old + o->size;
            break;
        default:
            break;
        }
    }
    double sec = dnow() - t0;
    s_op[ns] = nops;
    s_rss[ns] = rss_now();
    s_live[ns++] = live;
    size_t hwm = status_bytes("VmHWM:");
    if (strcmp(argv[2], "-") != 0) {
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "op,rss_bytes,live_bytes\n");
            for (size_t i = 0; i < ns; i++)
                fprintf(f, "%zu,%zu,%zu\n", s_op[i],
                        s_rss[i] > base ? s_rss[i] - base : 0, s_live[i]);
            fclose(f);
        }
    }
    printf("ok version=%s seconds=%.6f failed=%zu base=%zu hwm=%zu "
           "peak=%zu\n",
           version(), sec, failed, base, hwm, hwm > base ? hwm - base : 0);
    return 0;
}
