/*
 * fuzz.h - what the harnesses of t/fuzz/ share: the libFuzzer entry point
 * they define, and a byte reader that turns the input into choices.
 *
 * Each harness is built twice: with clang -fsanitize=fuzzer (make fuzz),
 * and as a plain program with replay.c's main(), which runs every file of
 * its corpus directory (make check: each crash found becomes a regression
 * test by adding the input to t/fuzz/corpus/<name>/).
 */
#ifndef CATENA_FUZZ_H
#define CATENA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, consumed from the front; 0 once it is used up. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline unsigned fuzz_byte(struct fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

#endif
