/*
 * unit.h - the thin, portable test layer shared by every test program.
 *
 * A test file writes its cases once:
 *
 *     UNIT_TEST(t_alloc) { UNIT_ASSERT(p != NULL); UNIT_EQ(a, b); }
 *     static const unit_case cases[] = { UNIT_CASE(t_alloc), ... };
 *     UNIT_MAIN("core", cases)
 *
 * On a hosted build with Check (HAVE_CHECK) each case runs as a Check loop
 * test, forked, and Check prints its summary.  Without Check (32-bit
 * builds, bare-metal Cortex-M under QEMU) a small runner does the same job
 * with setjmp and prints "N passed, N failed".  Exit status is 0 only when
 * every case passed.
 *
 * UNIT_ITERS(n) scales a loop count: the environment variable UNIT_SCALE
 * (hosted) multiplies it, for long runs; UNIT_SCALE=0.1 style fractions are
 * given in per cent by UNIT_SCALE_PCT (e.g. 10 under valgrind).  Bare
 * metal has no environment: -DUNIT_BARE_PCT=P scales at compile time.
 */
#ifndef CATENA_UNIT_H
#define CATENA_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} unit_case;

#define UNIT_TEST(name) static void name(void)
#define UNIT_CASE(name) { #name, name }

static const char *unit_current = "";

/* Deterministic PRNG (splitmix64): every random test prints its seed. */
static uint64_t unit_rng_state = 0x9e3779b97f4a7c15u;
static inline uint64_t unit_rand(void)
{
    uint64_t z = (unit_rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
static inline void unit_seed(uint64_t s) { unit_rng_state = s; }
/* Uniform in [0, n), n > 0. */
static inline size_t unit_below(size_t n) { return (size_t)(unit_rand() % n); }

static inline unsigned long unit_iters(unsigned long n)
{
#ifndef UNIT_BARE
    const char *s = getenv("UNIT_SCALE");
    const char *p = getenv("UNIT_SCALE_PCT");
    if (s && atol(s) > 0)
        n *= (unsigned long)atol(s);
    if (p && atol(p) > 0)
        n = n * (unsigned long)atol(p) / 100;
    if (n == 0)
        n = 1;
#endif
#ifdef UNIT_BARE_PCT
    /* bare metal under QEMU: a compile-time scale, in per cent */
    n = n * (unsigned long)(UNIT_BARE_PCT) / 100;
    if (n == 0)
        n = 1;
#endif
    return n;
}
#define UNIT_ITERS(n) unit_iters(n)

#if defined(HAVE_CHECK) && !defined(UNIT_BARE)
#include <check.h>

#define UNIT_ASSERT(c) ck_assert_msg((c), "[%s] %s", unit_current, #c)
#define UNIT_EQ(a, b)                                                      \
    do {                                                                   \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);      \
        ck_assert_msg(unit_a_ == unit_b_, "[%s] %s == %s (%lld != %lld)",  \
                      unit_current, #a, #b, unit_a_, unit_b_);             \
    } while (0)

static const unit_case *unit_cases;

START_TEST(unit_loop)
{
    unit_current = unit_cases[_i].name;
    unit_cases[_i].fn();
}
END_TEST

static inline int unit_main(const char *suite, const unit_case *cases,
                            size_t n)
{
    unit_cases = cases;
    Suite *s = suite_create(suite);
    TCase *tc = tcase_create(suite);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, unit_loop, 0, (int)n);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}

#else /* the bare runner */
#include <setjmp.h>

static jmp_buf unit_jmp;
/* newlib-nano's printf has no %lld: format 64-bit values ourselves. */
static void unit_put_ll(long long v)
{
    char b[24], *p = b + sizeof b;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
                                  : (unsigned long long)v;
    *--p = 0;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    fputs(p, stdout);
}
static void unit_fail(const char *file, int line, const char *msg)
{
    printf("FAIL %s (%s:%d): %s\n", unit_current, file, line, msg);
    longjmp(unit_jmp, 1);
}
#define UNIT_ASSERT(c)                                                     \
    do {                                                                   \
        if (!(c))                                                          \
            unit_fail(__FILE__, __LINE__, #c);                             \
    } while (0)
#define UNIT_EQ(a, b)                                                      \
    do {                                                                   \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);      \
        if (unit_a_ != unit_b_) {                                          \
            fputs("  ", stdout);                                           \
            unit_put_ll(unit_a_);                                          \
            fputs(" != ", stdout);                                         \
            unit_put_ll(unit_b_);                                          \
            putchar('\n');                                                 \
            unit_fail(__FILE__, __LINE__, #a " == " #b);                   \
        }                                                                  \
    } while (0)

static inline int unit_main(const char *suite, const unit_case *cases,
                            size_t n)
{
    volatile unsigned pass = 0, fail = 0;
    for (volatile size_t i = 0; i < n; i++) {
        unit_current = cases[i].name;
        if (setjmp(unit_jmp) == 0) {
            cases[i].fn();
            pass++;
        } else {
            fail++;
        }
    }
    printf("%s: %u passed, %u failed\n", suite, pass, fail);
    return fail ? 1 : 0;
}
#endif

#ifdef CATENA_H
/* The byte at off of a catena object, or -1 when catena_read_byte fails
 * (its error stays in catena_last_error). */
static inline int unit_byte(catena_heap_t *h, const void *obj, size_t off)
{
    uint8_t b;
    return catena_read_byte(h, obj, off, &b) ? -1 : b;
}
#endif

#define UNIT_MAIN(suite, cases)                                            \
    int main(void)                                                         \
    {                                                                      \
        return unit_main(suite, cases, sizeof(cases) / sizeof(cases[0]));  \
    }

#endif /* CATENA_UNIT_H */
