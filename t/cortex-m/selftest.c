/*
 * selftest.c - proves the Cortex-M test harness itself: that a passing
 * program exits 0 and a failing one exits non-zero through semihosting and
 * QEMU, and that start-up, libgcc and newlib do their part.
 *
 *   -DSELFTEST_FAIL   adds a case that fails     (expect exit 1)
 *   -DSELFTEST_FAULT  adds a case that traps     (expect exit 99)
 *
 * Build with -DUNIT_BARE; see build-selftest.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"

extern char end[], __stack[]; /* common.ld */

static int initialised = 12345; /* .data: copied from flash by startup.c */
static int zeroed;              /* .bss: cleared by newlib's _start */

UNIT_TEST(t_pass)
{
    UNIT_EQ(1 + 1, 2);
    UNIT_ASSERT(sizeof(void *) == 4);
}

UNIT_TEST(t_startup)
{
    char here;
    uintptr_t lo = (uintptr_t)end, hi = (uintptr_t)__stack;
    UNIT_EQ(initialised, 12345);
    UNIT_EQ(zeroed, 0);
    /* the stack must be ours (see _stack_init in startup.c) */
    UNIT_ASSERT((uintptr_t)&here > lo && (uintptr_t)&here < hi);
    /* the heap must stay inside RAM: 8 MiB cannot fit in 4 MiB.  Results
     * go through volatile so GCC cannot elide the malloc calls. */
    void *volatile big = malloc(8u << 20);
    UNIT_ASSERT(big == NULL);
    void *volatile p = malloc(1u << 20);
    UNIT_ASSERT(p != NULL && (uintptr_t)p >= lo &&
                (uintptr_t)p + (1u << 20) <= hi);
    free(p);
}

/* volatile everywhere so that nothing is folded at compile time: the
 * point is to link and run __aeabi_uldivmod, __aeabi_ldivmod, memcpy. */
UNIT_TEST(t_libs)
{
    volatile uint64_t a = 0x0123456789abcdefu, b = 1000003u;
    uint64_t q = a / b, r = a % b;
    UNIT_ASSERT(r < b && q * b + r == a);
    volatile int64_t sa = -(int64_t)a, sb = 77;
    int64_t sq = sa / sb, sr = sa % sb;
    UNIT_ASSERT(sr <= 0 && sr > -77 && sq * 77 + sr == sa);

    char src[61], dst[64];
    for (unsigned i = 0; i < sizeof src; i++)
        src[i] = (char)(i * 7 + 1);
    memset(dst, 0, sizeof dst);
    memcpy(dst + 3, src, sizeof src); /* odd offset: byte/unaligned path */
    UNIT_ASSERT(memcmp(dst + 3, src, sizeof src) == 0 && dst[2] == 0);

    volatile float f = 1.5f; /* a VFP instruction on hard-float builds */
    UNIT_ASSERT(f * f == 2.25f);
}

#ifdef SELFTEST_FAIL
UNIT_TEST(t_fail) { UNIT_EQ(2 + 2, 5); }
#endif
#ifdef SELFTEST_FAULT
UNIT_TEST(t_fault) { __builtin_trap(); }
#endif

static const unit_case cases[] = {
    UNIT_CASE(t_pass),
    UNIT_CASE(t_startup),
    UNIT_CASE(t_libs),
#ifdef SELFTEST_FAIL
    UNIT_CASE(t_fail),
#endif
#ifdef SELFTEST_FAULT
    UNIT_CASE(t_fault),
#endif
};
UNIT_MAIN("selftest", cases)
