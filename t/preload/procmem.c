/*
 * procmem.c - probes that a program under the shim sees its memory and
 * its descriptors as under glibc (issue 9).  t/preload/procmem.sh runs
 * each case under the shim (and some under glibc too, to compare):
 *
 *   procmem closeall FILE   close every descriptor from 3 up, open FILE
 *                           (it gets descriptor 3), write 8 MiB of 'A'
 *                           while large objects come and go: the file
 *                           must hold exactly that
 *   procmem closefrom FILE  the same after closefrom(3), close_range(3, ~0)
 *                           and dup2 of FILE onto every descriptor 3..1023
 *   procmem fds             the descriptors open after large and small
 *                           allocations (the script compares with glibc)
 *   procmem fsize           large objects, realloc and fork under a small
 *                           RLIMIT_FSIZE (the script sets `ulimit -f`)
 *   procmem asfill SIZE     allocate SIZE-byte objects until malloc fails
 *                           and print how many MiB that was (`ulimit -v`)
 *   procmem madvise         MADV_DONTNEED zeroes a large object's pages,
 *                           MADV_FREE and MADV_WIPEONFORK work, and
 *                           realloc keeps the contents of an object whose
 *                           mapping madvise split
 *   procmem fork MIB        fork with MIB MiB of large objects: the child
 *                           shares every page (copy-on-write, counted in
 *                           /proc/self/smaps_rollup), its writes (a byte
 *                           in every page) stay its own; prints the fastest of 3 fork() calls in
 *                           microseconds
 *
 * Each exits 0 on success, else prints what went wrong and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define MIB ((size_t)1 << 20)
#define FILE_BYTES (8 * MIB)

static int failed;
#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c)) {                                                        \
            fprintf(stderr, "procmem: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            failed = 1;                                                    \
        }                                                                  \
    } while (0)

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static int all(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* Large objects come and go, and grow (realloc), checking their bytes. */
static void churn_large(void)
{
    unsigned char *a = malloc(4 * MIB), *b = malloc(300000);
    CHECK(a && b);
    memset(a, 7, 4 * MIB);
    memset(b, 8, 300000);
    a = realloc(a, 12 * MIB);
    CHECK(a && all(a, 4 * MIB, 7));
    memset(a, 9, 12 * MIB);
    free(b);
    b = calloc(1, 6 * MIB);
    CHECK(b && all(b, 6 * MIB, 0));
    free(a);
    free(b);
}

/* Write FILE_BYTES of 'A' to fd in 1 MiB pieces, large objects churning
 * between the writes; then read the file back through a new descriptor. */
static void write_and_check(int fd, const char *path)
{
    char *buf = malloc(MIB);
    CHECK(buf != NULL);
    memset(buf, 'A', MIB);
    for (size_t off = 0; off < FILE_BYTES; off += MIB) {
        CHECK(write(fd, buf, MIB) == (ssize_t)MIB);
        churn_large();
    }
    unsigned char *b2 = malloc(FILE_BYTES); /* a fresh large buffer */
    CHECK(b2 != NULL && memchr(b2, 'A', FILE_BYTES) == NULL);
    memset(b2, 9, FILE_BYTES);
    free(b2);
    CHECK(fsync(fd) == 0);
    int r = open(path, O_RDONLY);
    CHECK(r >= 0);
    struct stat st;
    CHECK(fstat(r, &st) == 0 && st.st_size == (off_t)FILE_BYTES);
    size_t good = 0;
    ssize_t n;
    while ((n = read(r, buf, MIB)) > 0)
        good += all((unsigned char *)buf, (size_t)n, 'A') ? (size_t)n : 0;
    CHECK(good == FILE_BYTES);
    if (good != FILE_BYTES)
        fprintf(stderr, "procmem: %zu of %zu bytes of the file intact\n", good,
                FILE_BYTES);
    close(r);
    free(buf);
}

/* The probe of issue 9, as written there. */
static int closeall(const char *path)
{
    char *big = malloc(4 << 20);
    CHECK(big != NULL);
    memset(big, 7, 4 << 20);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    void *m = malloc(MIB); /* no descriptor is needed to allocate */
    CHECK(m != NULL);
    free(m);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(f == 3);
    free(big);
    write_and_check(f, path);
    close(f);
    return failed;
}

static int closefrom_cases(const char *path)
{
    unsigned char *keep = malloc(3 * MIB); /* lives across all of it */
    CHECK(keep != NULL);
    memset(keep, 0x3c, 3 * MIB);
    closefrom(3);
    int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(f == 3);
    write_and_check(f, path);
    close(f);
    CHECK(syscall(SYS_close_range, 3U, ~0U, 0U) == 0);
    f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(f == 3);
    write_and_check(f, path);
    /* the file on every descriptor number the shim could have used */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    int top = rl.rlim_cur > 1024 ? 1024 : (int)rl.rlim_cur;
    for (int k = 4; k < top; k++)
        CHECK(dup2(f, k) == k);
    CHECK(ftruncate(f, 0) == 0 && lseek(f, 0, SEEK_SET) == 0);
    write_and_check(f, path);
    for (int k = 4; k < top; k++)
        close(k);
    close(f);
    CHECK(all(keep, 3 * MIB, 0x3c));
    free(keep);
    return failed;
}

static int fds(void)
{
    void *a = malloc(5 * MIB), *b = malloc(100);
    a = realloc(a, 50 * MIB);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 1;
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != own)
            printf("%s\n", e->d_name);
    closedir(d);
    free(a);
    free(b);
    return 0;
}

static int fsize(void)
{
    churn_large();
    unsigned char *p = malloc(64 * MIB);
    CHECK(p != NULL);
    memset(p, 1, 64 * MIB);
    pid_t pid = fork();
    if (pid == 0) {
        churn_large();
        _exit(failed || !all(p, 64 * MIB, 1));
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(p);
    return failed;
}

static int asfill(size_t size)
{
    size_t n = 0;
    while (malloc(size))
        n++;
    printf("%zu\n", n * size / MIB);
    return 0;
}

static int madvise_cases(void)
{
    size_t pg = page(), len = 256 * pg;
    unsigned char *p = malloc(len);
    CHECK(p && (uintptr_t)p % pg == 0);
    memset(p, 0x11, len);
    /* DONTNEED: private anonymous pages read back as zero */
    CHECK(madvise(p + 16 * pg, 16 * pg, MADV_DONTNEED) == 0);
    CHECK(all(p + 16 * pg, 16 * pg, 0));
    CHECK(all(p, 16 * pg, 0x11) && all(p + 32 * pg, len - 32 * pg, 0x11));
    /* FREE: accepted; the pages hold their bytes or read as zero */
    CHECK(madvise(p + 64 * pg, 16 * pg, MADV_FREE) == 0);
    for (size_t i = 64 * pg; i < 80 * pg; i++)
        CHECK(p[i] == 0x11 || p[i] == 0);
    memset(p, 0x22, len);
    /* WIPEONFORK: the child sees zero there, the parent keeps its bytes */
    CHECK(madvise(p + 128 * pg, 64 * pg, MADV_WIPEONFORK) == 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(!(all(p + 128 * pg, 64 * pg, 0) && all(p, 128 * pg, 0x22)));
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(all(p, len, 0x22));
    /* The madvise split the object into three mappings; block growth in
     * place (a page of ours right after it) so realloc has to move the
     * pages of all three. */
    void *blk = mmap(p + len, pg, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    /* compare addresses before realloc: p is dead after it */
    int blocked = blk != MAP_FAILED && blk == (void *)(p + len);
    unsigned char *q = realloc(p, 4 * len);
    CHECK(q != NULL && all(q, len, 0x22));
    CHECK(malloc_usable_size(q) >= 4 * len);
    if (blocked)
        CHECK(q != (unsigned char *)blk - len); /* it had to move */
    if (blk != MAP_FAILED)
        munmap(blk, pg);
    memset(q, 0x33, 4 * len);
    free(q);
    return failed;
}

/* Shared_Dirty of /proc/self/smaps_rollup in KiB: pages this process
 * shares with another (after fork: the copy-on-write ones). */
static long shared_dirty_kib(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Shared_Dirty: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int fork_cases(size_t mib)
{
    enum { K = 8 };
    size_t each = mib * MIB / K;
    unsigned char *o[K];
    for (int i = 0; i < K; i++) {
        o[i] = malloc(each);
        CHECK(o[i] != NULL);
        memset(o[i], 0x40 + i, each);
    }
    double best = 1e9;
    size_t pg = page();
    for (int round = 0; round < 3; round++) {
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        double t0 = now();
        pid_t pid = fork();
        if (pid == 0) {
            /* before writing anything: every page still shared */
            long sh = shared_dirty_kib();
            int ok = sh >= (long)(mib * 1024);
            if (!ok)
                fprintf(stderr, "procmem: child shares %ld KiB, want >= %zu\n",
                        sh, mib * 1024);
            /* the first round reads the parent's bytes and writes a byte
             * of every page (each one a copy-on-write fault); the others
             * only time fork */
            for (int i = 0; i < K && round == 0; i++) {
                ok &= o[i][0] == 0x40 + i && o[i][each - 1] == 0x40 + i;
                for (size_t b = 0; b < each; b += pg)
                    o[i][b + (size_t)i] = 0x99;
            }
            char c = 0;
            ssize_t w = write(pfd[1], &c, 1);
            _exit(ok && w == 1 ? 0 : 1);
        }
        double dt = now() - t0;
        if (dt < best)
            best = dt;
        close(pfd[1]);
        char c;
        CHECK(read(pfd[0], &c, 1) == 1); /* the child wrote everything */
        close(pfd[0]);
        int st;
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        for (int i = 0; i < K; i++)
            CHECK(all(o[i], each, (unsigned char)(0x40 + i)));
    }
    printf("%.0f\n", best * 1e6);
    for (int i = 0; i < K; i++)
        free(o[i]);
    return failed;
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "closeall") && argc == 3)
        return closeall(argv[2]);
    if (!strcmp(c, "closefrom") && argc == 3)
        return closefrom_cases(argv[2]);
    if (!strcmp(c, "fds"))
        return fds();
    if (!strcmp(c, "fsize"))
        return fsize();
    if (!strcmp(c, "asfill") && argc == 3)
        return asfill(strtoul(argv[2], NULL, 0));
    if (!strcmp(c, "madvise"))
        return madvise_cases();
    if (!strcmp(c, "fork") && argc == 3)
        return fork_cases(strtoul(argv[2], NULL, 0));
    fprintf(stderr, "usage: procmem closeall|closefrom FILE | fds | fsize | "
                    "asfill SIZE | madvise | fork MIB\n");
    return 2;
}
