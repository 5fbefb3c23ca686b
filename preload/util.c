/*
 * util.c - the shim's plumbing: locks, thread numbers, output without
 * malloc, pages from the kernel, and an address map.  The lowest layer:
 * it calls only libc and the kernel.
 */
#include "shim.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

size_t shim_page SHIM_HIDDEN = 4096;

static __thread uint32_t my_tid __attribute__((tls_model("initial-exec")));
static atomic_uint tids;

uint32_t shim_tid(void)
{
    uint32_t t = my_tid;
    if (__builtin_expect(!t, 0))
        t = my_tid = atomic_fetch_add(&tids, 1) + 1;
    return t - 1;
}

void shim_lock(shim_lock_t *l)
{
    for (;;) {
        if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
            return;
        /* Spin on a plain load (no cache-line ping-pong), then yield: a
         * holder that was preempted needs the CPU more than we do. */
        for (unsigned i = 0;
             atomic_load_explicit(&l->v, memory_order_relaxed); i++)
            if (i >= 64)
                sched_yield();
    }
}

/* ---- output ------------------------------------------------------------ */

void ln_str(struct shim_line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = *s++;
}

void ln_dec(struct shim_line *l, uint64_t v)
{
    char d[24];
    size_t i = sizeof d;
    d[--i] = '\0';
    do
        d[--i] = (char)('0' + v % 10);
    while (v /= 10);
    ln_str(l, d + i);
}

void ln_hex(struct shim_line *l, uintptr_t v)
{
    static const char hx[] = "0123456789abcdef";
    char d[2 + 2 * sizeof v + 1];
    size_t i = sizeof d;
    d[--i] = '\0';
    do
        d[--i] = hx[v & 15];
    while (v >>= 4);
    d[--i] = 'x';
    d[--i] = '0';
    ln_str(l, d + i);
}

void ln_kib(struct shim_line *l, uint64_t bytes)
{
    ln_dec(l, (bytes + 1023) / 1024);
    ln_str(l, " KiB");
}

void ln_put(struct shim_line *l, int fd)
{
    l->buf[l->n++] = '\n';
    size_t off = 0;
    while (off < l->n) {
        ssize_t w = write(fd, l->buf + off, l->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    l->n = 0;
}

uintptr_t shim_secret(void)
{
    /* the kernel's 16 random bytes for this process (no system call) */
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    uintptr_t v = (uintptr_t)&v ^ (uintptr_t)getpid() << 17;
    if (r)
        for (size_t i = 0; i < sizeof v; i++)
            v ^= (uintptr_t)r[8 + i] << (8 * i);
    return v * (uintptr_t)0x9e3779b97f4a7c15u;
}

/* ---- pages --------------------------------------------------------------- */

void *shim_map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *shim_map_aligned(size_t len, size_t align, bool noreserve)
{
    int fl = MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0);
    if (align < shim_page)
        align = shim_page;
    size_t extra = align - shim_page;
    if (len > SIZE_MAX / 2 - extra)
        return NULL;
    unsigned char *r = mmap(NULL, len, PROT_READ | PROT_WRITE, fl, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    if (((uintptr_t)r & (align - 1)) == 0)
        return r;
    /* Over-map by align - page and cut the ends off. */
    munmap(r, len);
    r = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, fl, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    unsigned char *a =
        (unsigned char *)(((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1));
    if (a > r)
        munmap(r, (size_t)(a - r));
    if (a + len < r + len + extra)
        munmap(a + len, (size_t)(r + len + extra - (a + len)));
    return a;
}

void shim_unmap(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

/* ---- address map --------------------------------------------------------- */

/* Fibonacci hashing: addresses are multiples of 16 or of the page size,
 * so the low bits alone would cluster. */
static size_t slot_of(const struct shim_amap *m, uintptr_t k)
{
    return (size_t)(((uint64_t)k * 0x9e3779b97f4a7c15u) >> 20) & (m->cap - 1);
}

struct shim_map_ent *amap_get(struct shim_amap *m, uintptr_t k)
{
    if (!m->cap)
        return NULL;
    for (size_t i = slot_of(m, k);; i = (i + 1) & (m->cap - 1)) {
        if (m->e[i].key == k)
            return &m->e[i];
        if (!m->e[i].key)
            return NULL;
    }
}

static bool grow(struct shim_amap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    struct shim_map_ent *e = shim_map(cap * sizeof *e);
    if (!e)
        return false;
    struct shim_amap n = {e, cap, 0};
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key)
            amap_put(&n, m->e[i].key, m->e[i].a, m->e[i].b);
    shim_unmap(m->e, m->cap * sizeof *e);
    *m = n;
    return true;
}

bool amap_put(struct shim_amap *m, uintptr_t k, uint64_t a, uint64_t b)
{
    if ((m->n + 1) * 4 > m->cap * 3 && !grow(m)) /* load <= 3/4 */
        return false;
    size_t i = slot_of(m, k);
    while (m->e[i].key && m->e[i].key != k)
        i = (i + 1) & (m->cap - 1);
    if (!m->e[i].key)
        m->n++;
    m->e[i].key = k;
    m->e[i].a = a;
    m->e[i].b = b;
    return true;
}

bool amap_del(struct shim_amap *m, uintptr_t k, uint64_t *a, uint64_t *b)
{
    struct shim_map_ent *e = amap_get(m, k);
    if (!e)
        return false;
    if (a)
        *a = e->a;
    if (b)
        *b = e->b;
    /* Backward-shift deletion: no tombstones, so lookups stay short. */
    size_t i = (size_t)(e - m->e), j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!m->e[j].key)
            break;
        size_t h = slot_of(m, m->e[j].key);
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        if ((i <= j) ? (i < h && h <= j) : (i < h || h <= j))
            continue;
        m->e[i] = m->e[j];
        i = j;
    }
    m->e[i].key = 0;
    m->n--;
    return true;
}
