/*
 * trace.c - CATENA_TRACE=path: every allocation call as a fixed 32-byte
 * record (format in trace.h).  Objects are named by ids, kept in an
 * address -> {id, size} map, so a replay does not depend on addresses.
 *
 * One lock, held by malloc.c around the allocator call itself when
 * tracing: then the order of records is the order of the calls, and an
 * address cannot be freed and handed out again between the call and its
 * record.  Records are buffered and written with write(2); after the exit
 * flush every record is written at once (calls made by later destructors
 * are not lost).  A forked child stops tracing: the file is the parent's.
 */
#include "shim.h"
#include "catena_trace.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "trace.c writes records in host order: little-endian only"
#endif
_Static_assert(sizeof(struct catena_trace_hdr) == 16, "trace header");
_Static_assert(sizeof(struct catena_trace_rec) == 32, "trace record");

bool shim_tracing SHIM_HIDDEN;
static shim_lock_t lock;
static int tfd = -1;
static bool final_mode;
static uint64_t next_id = 1;
static struct shim_amap ids;
static unsigned char buf[64 * 1024];
static size_t blen;

static void flush(void)
{
    size_t off = 0;
    while (off < blen) {
        ssize_t w = write(tfd, buf + off, blen - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    blen = 0;
}

static void put(const void *p, size_t n)
{
    if (tfd < 0)
        return;
    if (blen + n > sizeof buf)
        flush();
    memcpy(buf + blen, p, n);
    blen += n;
    if (final_mode)
        flush();
}

/* The path with "%p" replaced by the process id: a traced program that
 * runs others (each inherits CATENA_TRACE) needs one file per process. */
static const char *expand(const char *path)
{
    static char out[4096];
    size_t n = 0;
    for (const char *s = path; *s && n + 24 < sizeof out; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            struct shim_line l = {.n = 0};
            ln_dec(&l, (uint64_t)getpid());
            memcpy(out + n, l.buf, l.n);
            n += l.n;
            s++;
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return out;
}

void trace_init(void)
{
    if (!shim_opt.trace)
        return;
    shim_opt.trace = expand(shim_opt.trace);
    tfd = open(shim_opt.trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tfd < 0) {
        struct shim_line l = {.n = 0};
        ln_str(&l, "catena: cannot open CATENA_TRACE file ");
        ln_str(&l, shim_opt.trace);
        ln_put(&l, 2);
        return;
    }
    struct catena_trace_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CATENA_TRACE_MAGIC, 8);
    h.version = CATENA_TRACE_VERSION;
    put(&h, sizeof h);
    shim_tracing = true;
}

void trace_lock(void) { shim_lock(&lock); }
void trace_unlock(void) { shim_unlock(&lock); }

static void rec(int op, uint64_t id, uint64_t size, uint64_t arg)
{
    struct catena_trace_rec r;
    memset(&r, 0, sizeof r);
    r.op = (uint8_t)op;
    r.tid = shim_tid();
    r.id = id;
    r.size = size;
    r.arg = arg;
    put(&r, sizeof r);
}

void trace_alloc(int op, void *p, size_t size, uint64_t arg)
{
    uint64_t id = 0;
    if (p) {
        id = next_id++;
        amap_put(&ids, (uintptr_t)p, id, size);
    }
    rec(op, id, size, arg);
}

void trace_free(void *p)
{
    uint64_t id, size;
    if (p && amap_del(&ids, (uintptr_t)p, &id, &size))
        rec(CATENA_TR_FREE, id, size, 0);
}

/* A failed realloc changes nothing and is not recorded; realloc(p, 0)
 * frees and is recorded by the caller as a FREE. */
void trace_realloc(void *p, void *q, size_t size)
{
    uint64_t old = 0, id;
    if (!q)
        return;
    if (p)
        amap_del(&ids, (uintptr_t)p, &old, NULL);
    id = (q == p && old) ? old : next_id++;
    amap_put(&ids, (uintptr_t)q, id, size);
    rec(CATENA_TR_REALLOC, id, size, old);
}

void trace_flush(bool final)
{
    if (tfd < 0)
        return;
    shim_lock(&lock);
    flush();
    final_mode = final_mode || final;
    shim_unlock(&lock);
}

void trace_child_fork(void)
{
    /* The buffer holds the parent's records: drop them, and the fd. */
    if (tfd >= 0)
        close(tfd);
    tfd = -1;
    blen = 0;
    shim_tracing = false;
    shim_lock_reset(&lock);
}
