/*
 * trace.c - CATENA_TRACE=path: every allocation call as a fixed 32-byte
 * record (format in trace.h).  Objects are named by ids, kept in an
 * address -> {id, size} map, so a replay does not depend on addresses.
 *
 * One lock, held by malloc.c around the allocator call itself when
 * tracing: then the order of records is the order of the calls, and an
 * address cannot be freed and handed out again between the call and its
 * record.
 *
 * Records go straight into the file: it is mapped MAP_SHARED one chunk
 * (CATENA_TRACE_CHUNK bytes) at a time, so a record is in the page cache
 * as soon as it is copied, and survives however the process ends (exit,
 * _exit, abort, exec, a signal, SIGKILL).  The shim holds no descriptor
 * between calls: it opens the file by its absolute path only to extend it
 * by a chunk (reserving the blocks with fallocate, so a full disk fails
 * the extension instead of raising SIGBUS in a later store) and closes it
 * at once.  So a program that closes every descriptor and reuses the
 * numbers never gets records in its own files.  A new trace replaces the
 * file at its path (unlink, create) rather than truncating it, so that a
 * process still mapping the old file cannot take SIGBUS; each reopening
 * checks that the path still names the file this process made.  The exit destructor cuts
 * the file to its true length; after it, each record is written through
 * with pwrite (calls made by later destructors are not lost).  A process
 * that ends any other way leaves the rest of its last chunk zero: readers
 * stop at the first zero record (trace.h).  A forked child stops tracing
 * (the file is the parent's) and unmaps the chunk.
 */
#include "shim.h"
#include "catena_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "trace.c writes records in host order: little-endian only"
#endif
_Static_assert(sizeof(struct catena_trace_hdr) == 16, "trace header");
_Static_assert(sizeof(struct catena_trace_rec) == 32, "trace record");
_Static_assert(CATENA_TRACE_CHUNK % 65536 == 0, "chunks are whole pages");

bool shim_tracing SHIM_HIDDEN;
static shim_lock_t lock;
static bool final_mode;
static uint64_t next_id = 1;
static struct shim_amap ids;
static char path[4096];       /* absolute: the program may chdir */
static unsigned char *chunk;  /* mapped file bytes [at, at + CHUNK) */
static uint64_t at, len;      /* len: bytes of trace so far */
static dev_t fdev;            /* the file we made, told apart from one */
static ino_t fino;            /* another process put at the same path */

/* Open our trace file again by its path; -1 if it is gone or is no longer
 * the file we made (another traced process replaced it: we must not
 * write into its trace). */
static int reopen(int flags)
{
    struct stat st;
    int fd = open(path, flags | O_CLOEXEC);
    if (fd >= 0 && (fstat(fd, &st) || st.st_dev != fdev || st.st_ino != fino)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void give_up(const char *why)
{
    struct shim_line l = {.n = 0};
    ln_str(&l, "catena: CATENA_TRACE: ");
    ln_str(&l, why);
    ln_str(&l, " ");
    ln_str(&l, path);
    ln_str(&l, "; recording stops");
    ln_put(&l, 2);
    shim_tracing = false;
    if (chunk)
        munmap(chunk, CATENA_TRACE_CHUNK);
    chunk = NULL;
}

/* Map the chunk that holds byte `len`, the file extended to its end. */
static bool map_next(void)
{
    uint64_t off = len / CATENA_TRACE_CHUNK * CATENA_TRACE_CHUNK;
    int fd = reopen(O_RDWR);
    if (fd < 0)
        return false;
    int e = fallocate(fd, 0, (off_t)off, CATENA_TRACE_CHUNK) ? errno : 0;
    if (e == EOPNOTSUPP || e == ENOSYS) /* no reservation on this file system */
        e = ftruncate(fd, (off_t)(off + CATENA_TRACE_CHUNK)) ? errno : 0;
    void *m = e ? MAP_FAILED
                : mmap(NULL, CATENA_TRACE_CHUNK, PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, (off_t)off);
    close(fd);
    if (m == MAP_FAILED)
        return false;
    if (chunk)
        munmap(chunk, CATENA_TRACE_CHUNK);
    chunk = m;
    at = off;
    return true;
}

/* After the exit destructor: one pwrite per record. */
static void write_through(const void *p, size_t n)
{
    int fd = reopen(O_WRONLY);
    if (fd < 0 || pwrite(fd, p, n, (off_t)len) != (ssize_t)n) {
        if (fd >= 0)
            close(fd);
        give_up("cannot write");
        return;
    }
    close(fd);
    len += n;
}

static void put(const void *p, size_t n)
{
    if (!shim_tracing)
        return;
    if (final_mode) {
        write_through(p, n);
        return;
    }
    const unsigned char *s = p;
    while (n) { /* a record may straddle two chunks */
        if (!chunk || len >= at + CATENA_TRACE_CHUNK) {
            if (!map_next()) {
                give_up("cannot extend (full, gone, or replaced by another "
                        "process)");
                return;
            }
        }
        size_t k = (size_t)(at + CATENA_TRACE_CHUNK - len);
        k = k < n ? k : n;
        memcpy(chunk + (len - at), s, k);
        len += k;
        s += k;
        n -= k;
    }
}

/* The path with "%p" replaced by the process id (a traced program that
 * runs others (each inherits CATENA_TRACE) needs one file per process),
 * made absolute. */
static void expand(const char *in)
{
    size_t n = 0;
    if (in[0] != '/' && getcwd(path, sizeof path - 64)) {
        n = strlen(path);
        path[n++] = '/';
    }
    for (const char *s = in; *s && n + 24 < sizeof path; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            struct shim_line l = {.n = 0};
            ln_dec(&l, (uint64_t)getpid());
            memcpy(path + n, l.buf, l.n);
            n += l.n;
            s++;
        } else {
            path[n++] = *s;
        }
    }
    path[n] = '\0';
}

void trace_init(void)
{
    if (!shim_opt.trace)
        return;
    expand(shim_opt.trace);
    shim_opt.trace = path;
    /* A new file, not the old one truncated: a process still writing the
     * old one through its mapping (a parent whose child runs a program
     * traced to the same path) must not get SIGBUS.  So a regular file
     * at the path is unlinked first; anything else is opened as given. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        struct shim_line l = {.n = 0};
        ln_str(&l, "catena: cannot create CATENA_TRACE file (a regular file) ");
        ln_str(&l, path);
        ln_put(&l, 2);
        return;
    }
    fdev = st.st_dev;
    fino = st.st_ino;
    close(fd);
    struct catena_trace_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CATENA_TRACE_MAGIC, 8);
    h.version = CATENA_TRACE_VERSION;
    shim_tracing = true;
    put(&h, sizeof h);
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
    shim_lock(&lock);
    if (final && shim_tracing && !final_mode) {
        /* the file's true length; later records are written through */
        int fd = reopen(O_RDWR);
        if (fd < 0 || ftruncate(fd, (off_t)len))
            give_up("cannot cut (gone, or replaced by another process)");
        if (fd >= 0)
            close(fd);
        if (chunk)
            munmap(chunk, CATENA_TRACE_CHUNK);
        chunk = NULL;
        final_mode = true;
    }
    shim_unlock(&lock);
}

void trace_child_fork(void)
{
    /* The mapping is the parent's file: the child must not write it. */
    if (chunk)
        munmap(chunk, CATENA_TRACE_CHUNK);
    chunk = NULL;
    shim_tracing = false;
    shim_lock_reset(&lock);
}
