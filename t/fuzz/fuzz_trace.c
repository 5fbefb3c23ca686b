/*
 * fuzz_trace.c - the trace reader of `catena-bench replay` (bench/trace.c)
 * on arbitrary files.  trace_load reads a path, so the input goes to a
 * memfd and the reader opens it through /proc/self/fd.
 *
 * Checked: a rejected file gets a message; an accepted one becomes a
 * well-formed stream (slots below nslots, every free of a live slot,
 * nothing live at the end), and writing that stream as a trace and
 * reading it back gives the very same stream.
 */
#define _GNU_SOURCE
#include "fuzz.h"
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c)) {                                                        \
            fprintf(stderr, "fuzz_trace: %s:%d: %s\n", __FILE__, __LINE__, \
                    #c);                                                   \
            abort();                                                       \
        }                                                                  \
    } while (0)

static int fd_in = -1, fd_out = -1;
static char path_in[64], path_out[64];

static void open_files(void)
{
    if (fd_in >= 0)
        return;
    fd_in = memfd_create("fuzz-trace-in", 0);
    fd_out = memfd_create("fuzz-trace-out", 0);
    CHECK(fd_in >= 0 && fd_out >= 0);
    snprintf(path_in, sizeof path_in, "/proc/self/fd/%d", fd_in);
    snprintf(path_out, sizeof path_out, "/proc/self/fd/%d", fd_out);
}

/* A stream as the benchmark runners rely on it. */
static void well_formed(const struct bstream *s)
{
    unsigned char *live = calloc(s->nslots ? s->nslots : 1, 1);
    CHECK(live != NULL);
    size_t allocs = 0;
    for (size_t i = 0; i < s->nops; i++) {
        const struct bop *o = &s->ops[i];
        if (o->kind == BOP_TICK)
            continue;
        CHECK(o->slot < s->nslots);
        switch (o->kind) {
        case BOP_ALLOC:
            CHECK(!live[o->slot]);
            live[o->slot] = 1;
            break;
        case BOP_FREE:
        case BOP_REALLOC:
            CHECK(live[o->slot]);
            live[o->slot] = o->kind == BOP_REALLOC;
            break;
        default:
            CHECK(!"known op kind");
        }
        allocs += o->kind == BOP_ALLOC;
    }
    for (size_t i = 0; i < s->nslots; i++)
        CHECK(!live[i]);
    CHECK(allocs > 0);
    free(live);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_files();
    CHECK(ftruncate(fd_in, 0) == 0);
    CHECK(pwrite(fd_in, data, size, 0) == (ssize_t)size);
    struct bstream s, t;
    char err[256] = "";
    if (trace_load(path_in, &s, err, sizeof err) != 0) {
        CHECK(err[0] != '\0'); /* a rejection says why */
        return 0;
    }
    well_formed(&s);
    /* round trip: save, load, the same stream */
    CHECK(trace_save(&s, path_out) == 0);
    CHECK(trace_load(path_out, &t, err, sizeof err) == 0);
    CHECK(t.nops == s.nops && t.nslots == s.nslots);
    CHECK(memcmp(t.ops, s.ops, s.nops * sizeof *s.ops) == 0);
    CHECK(t.hash == s.hash && t.peak_live == s.peak_live);
    bstream_free(&s);
    bstream_free(&t);
    return 0;
}
