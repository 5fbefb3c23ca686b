/*
 * trace_check.c - read a CATENA_TRACE file back and validate it: the
 * header, known ops, ids unique while live, every free / realloc of a
 * live id, no id 0 except for failed allocations.  Prints a summary.
 *
 *   trace_check FILE [SIZE COUNT]
 *
 * exit 0 valid, 1 invalid (or, with SIZE and COUNT, fewer than COUNT
 * allocations of SIZE bytes: the records a test program made); no FILE:
 * skip (77).  A zero tail (a writer that did not exit normally) ends the
 * trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catena_trace.h"

/* Live ids: an open-addressing set (ids are dense, so hash by value). */
static unsigned long long *set;
static size_t cap, live, tombs; /* tombstones count as load */

static size_t home(unsigned long long id) { return (size_t)(id * 0x9e3779b97f4a7c15ull >> 7) & (cap - 1); }

static int has(unsigned long long id)
{
    for (size_t i = home(id);; i = (i + 1) & (cap - 1)) {
        if (set[i] == id)
            return 1;
        if (!set[i])
            return 0;
    }
}

static void add(unsigned long long id);
static void grow(void)
{
    unsigned long long *old = set;
    size_t oc = cap;
    if (live * 4 > cap || !cap) /* else rehashing at this size clears tombs */
        cap = cap ? cap * 2 : 1024;
    set = calloc(cap, sizeof *set);
    if (!set) {
        perror("calloc");
        exit(2);
    }
    live = tombs = 0;
    for (size_t i = 0; i < oc; i++)
        if (old[i] && old[i] != ~0ull)
            add(old[i]);
    free(old);
}

static void add(unsigned long long id)
{
    if ((live + tombs + 1) * 2 > cap)
        grow();
    size_t i = home(id);
    while (set[i] && set[i] != ~0ull)
        i = (i + 1) & (cap - 1);
    set[i] = id;
    live++;
}

static void del(unsigned long long id)
{
    for (size_t i = home(id);; i = (i + 1) & (cap - 1))
        if (set[i] == id) {
            set[i] = ~0ull; /* tombstone */
            live--;
            tombs++;
            return;
        }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 77;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    struct catena_trace_hdr h;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CATENA_TRACE_MAGIC, 8) ||
        h.version != CATENA_TRACE_VERSION) {
        fprintf(stderr, "%s: bad header\n", argv[1]);
        return 1;
    }
    grow();
    unsigned long long want_size = argc > 3 ? strtoull(argv[2], NULL, 0) : 0;
    unsigned long long want = argc > 3 ? strtoull(argv[3], NULL, 0) : 0, sized = 0;
    struct catena_trace_rec r;
    unsigned long long n = 0, count[6] = {0}, failed = 0, bad = 0, maxtid = 0;
    size_t got;
    while ((got = fread(&r, 1, sizeof r, f)) > 0) {
        if (r.op == 0) { /* the end: only zero bytes may follow (trace.h) */
            static const struct catena_trace_rec zero;
            int c = memcmp(&r, &zero, got) ? 1 : 0;
            while (!c && (c = getc(f)) == 0)
                ;
            if (c != 0 && c != EOF) {
                fprintf(stderr, "record %llu: data after the end\n", n + 1);
                return 1;
            }
            break;
        }
        if (got != sizeof r) {
            fprintf(stderr, "record %llu: truncated\n", n + 1);
            return 1;
        }
        n++;
        if (r.op < CATENA_TR_MALLOC || r.op > CATENA_TR_FREE) {
            fprintf(stderr, "record %llu: bad op %u\n", n, r.op);
            return 1;
        }
        count[r.op]++;
        if (r.op != CATENA_TR_FREE && r.size == want_size)
            sized++;
        if (r.tid > maxtid)
            maxtid = r.tid;
        if (r.op == CATENA_TR_FREE || (r.op == CATENA_TR_REALLOC && r.arg)) {
            unsigned long long id = r.op == CATENA_TR_FREE ? r.id : r.arg;
            if (!has(id)) {
                if (bad++ < 5)
                    fprintf(stderr, "record %llu: op %u of unknown id %llu\n", n, r.op, id);
                continue;
            }
            del(id);
        }
        if (r.op == CATENA_TR_FREE)
            continue;
        if (!r.id) {
            failed++;
            continue;
        }
        if (has(r.id)) {
            if (bad++ < 5)
                fprintf(stderr, "record %llu: id %llu created while live\n", n, (unsigned long long)r.id);
            continue;
        }
        add(r.id);
    }
    fclose(f);
    printf("%s: %llu records (malloc %llu calloc %llu realloc %llu memalign %llu free %llu), "
           "%llu failed, %zu live at end, %llu threads, %llu errors\n",
           argv[1], n, count[1], count[2], count[3], count[4], count[5], failed, live,
           maxtid + 1, bad);
    if (sized < want)
        fprintf(stderr, "%s: %llu allocations of %llu bytes, expected %llu\n", argv[1],
                sized, want_size, want);
    return bad || n == 0 || sized < want ? 1 : 0;
}
