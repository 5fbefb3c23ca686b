/*
 * trace_check.c - read a CATENA_TRACE file back and validate it: the
 * header, known ops, ids unique while live, every free / realloc of a
 * live id, no id 0 except for failed allocations.  Prints a summary.
 *
 *   trace_check FILE      exit 0 valid, 1 invalid; no FILE: skip (77)
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
    struct catena_trace_rec r;
    unsigned long long n = 0, count[6] = {0}, failed = 0, bad = 0, maxtid = 0;
    while (fread(&r, sizeof r, 1, f) == 1) {
        n++;
        if (r.op < CATENA_TR_MALLOC || r.op > CATENA_TR_FREE) {
            fprintf(stderr, "record %llu: bad op %u\n", n, r.op);
            return 1;
        }
        count[r.op]++;
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
    return bad || n == 0 ? 1 : 0;
}
