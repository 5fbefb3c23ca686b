/*
 * test_unaligned.c - the library makes no unaligned memory access.
 *
 * v6-M (Cortex-M0) cannot make unaligned accesses at all; v7-M and v8-M
 * can, and GCC may use them there.  This program turns on the core's
 * unaligned trap (CCR.UNALIGN_TRP; QEMU implements it) around a randomized
 * workload over the whole API with odd sizes, offsets and buffers, so any
 * unaligned load or store in lib/ ends the run with a UsageFault, exit 99
 * (ERROR).  newlib's string functions legitimately make unaligned accesses
 * on v7-M, so this file brings byte-wise ones of its own, and nothing is
 * printed while the trap is on.
 */
#include "catena.h"
#include "unit.h"

#define CCR ((volatile uint32_t *)0xE000ED14)
#define UNALIGN_TRP (1u << 3)

/* Byte loops (kept as loops: GCC must not turn them back into calls). */
#define BYTEWISE __attribute__((optimize("no-tree-loop-distribute-patterns")))
BYTEWISE void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}
BYTEWISE void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp < sp)
        while (n--)
            *dp++ = *sp++;
    else
        while (n--)
            dp[n] = sp[n];
    return d;
}
BYTEWISE void *memset(void *d, int c, size_t n)
{
    unsigned char *dp = d;
    while (n--)
        *dp++ = (unsigned char)c;
    return d;
}
BYTEWISE int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n--; x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}

static void trap(int on)
{
    if (on)
        *CCR |= UNALIGN_TRP;
    else
        *CCR &= ~UNALIGN_TRP;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

#define ARENA (32 * 1024)
#define SLOTS 64
static uint64_t arena[ARENA / 8];
static unsigned char in[2048 + 8], out[2048 + 8];
static void *slot[SLOTS];
static size_t len[SLOTS];

/* The workload; returns 0, or the step that went wrong (no printing:
 * the trap is on). */
static unsigned long workload(unsigned long steps)
{
    catena_heap_t *h;
    if (catena_init(arena, sizeof arena - 4, &h) != 0)
        return 1;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (unsigned long s = 0; s < steps; s++) {
        size_t i = unit_below(SLOTS);
        size_t n = 1 + unit_below(unit_below(8) ? 200 : 2048);
        switch (unit_below(6)) {
        case 0:
        case 1:
            if (!slot[i]) {
                slot[i] = catena_alloc_flags(h, n, (unsigned)unit_below(2) * CATENA_ZERO);
                len[i] = slot[i] ? n : 0;
                break;
            }
            /* not allocated: write and read back at odd places */
            /* fall through */
        case 2:
            if (slot[i] && len[i] > 3) {
                size_t off = 1 + unit_below(len[i] - 2);
                size_t m = len[i] - off;
                if (catena_write(h, slot[i], off, in + 1, m) ||
                    catena_read(h, slot[i], off, out + 3, m) ||
                    memcmp(in + 1, out + 3, m) != 0)
                    return 100000 + s;
                uint8_t byte = 0;
                if (catena_write_byte(h, slot[i], off, 0xA5) ||
                    catena_read_byte(h, slot[i], off, &byte) || byte != 0xA5)
                    return 200000 + s;
                struct catena_iovec iov[4];
                if (catena_iov(h, slot[i], off, m, iov, 4) == 0)
                    return 300000 + s;
                const void *c = catena_get_contiguous(h, slot[i], off, m > 64 ? 64 : m, out + 5);
                if (!c)
                    return 400000 + s;
            }
            break;
        case 3:
            if (slot[i]) {
                void *p = catena_realloc(h, slot[i], n);
                if (p) {
                    slot[i] = p;
                    len[i] = n;
                }
            }
            break;
        case 4:
            if (slot[i] && unit_below(4) == 0) {
                void *p = catena_flatten(h, slot[i]);
                if (p)
                    slot[i] = p;
            }
            break;
        default:
            if (catena_free(h, slot[i]) != 0)
                return 500000 + s;
            slot[i] = NULL;
            len[i] = 0;
            break;
        }
        if (s % 64 == 0) {
            struct catena_stats st;
            catena_stats(h, &st);
            if (catena_check(h) != 0 || catena_frag(h) > 1000)
                return 600000 + s;
        }
    }
    return 0;
}

UNIT_TEST(t_no_unaligned_access)
{
    unit_seed(0xA11C0DE);
    trap(1);
    unsigned long bad = workload(UNIT_ITERS(200000));
    trap(0);
    UNIT_EQ(bad, 0);
}

static const unit_case cases[] = {
    UNIT_CASE(t_no_unaligned_access),
};
UNIT_MAIN("unaligned", cases)
