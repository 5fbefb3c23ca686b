/*
 * fuzz_api.c - the heap API from fuzzer bytes: each step picks an
 * operation of t/model.h (alloc, free, realloc, realloc_contig, flatten,
 * writes, every read path, links, collections, bad arguments, chaining
 * on/off) and the model takes every further choice from the input.  The
 * model checks each result and the counters, and catena_check runs after
 * every step; a mismatch aborts with the step that failed.
 *
 * The heap is small (about 100 blocks) so that short inputs reach full,
 * fragmented and chained states.
 */
#include "fuzz.h"
#include "model.h"

#define FUZZ_ARENA 2048
#define FUZZ_SLOTS 24
#define FUZZ_STEPS 4000

static uint64_t arena[FUZZ_ARENA / 8];

/* Two bytes per choice: enough for any size in this heap. */
static uint64_t take(void *ctx)
{
    struct fuzz_in *in = ctx;
    unsigned hi = fuzz_byte(in);
    return (uint64_t)hi << 8 | fuzz_byte(in);
}

static void die(const char *what)
{
    (void)what; /* already printed with seed and step */
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct model m = {.rand = take, .rctx = &in, .die = die};
    model_init(&m, arena, sizeof arena, FUZZ_SLOTS);
    m.maxsize = m.total * MODEL_BS / 2;
    while (in.n && m.step < FUZZ_STEPS)
        model_step(&m, (int)(fuzz_byte(&in) % M_NOPS));
    if (!m.chaining)
        model_step(&m, M_CHAINING);
    model_fini(&m);
    return 0;
}
