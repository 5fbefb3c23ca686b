/*
 * test_regs.c - lib/regs_arm.c sees every callee-saved register.
 *
 * t_spill loads known values into r4-r6 and r8-r11 (r7 is Thumb's frame
 * pointer, which GCC may refuse to give up) and, with an FPU, into s16-s31,
 * calls _catena_spill_regs, and checks the buffer and the returned stack
 * pointer.  t_gc_roots keeps an object's only reference in one register at
 * a time, runs a collection whose only root scan is _catena_gc_scan_regs,
 * and checks that the object survived while an unreferenced one died.
 */
#include "catena.h"
#include "unit.h"

#define CATENA_REGS_WORDS 24
void *_catena_spill_regs(uintptr_t regs[CATENA_REGS_WORDS]);

static uintptr_t regs[CATENA_REGS_WORDS];
static uintptr_t sp_seen;

/* noinline: the explicit register variables must live just here. */
static __attribute__((noinline)) void spill(void)
{
    register uintptr_t r0 __asm__("r0") = (uintptr_t)regs;
    register uintptr_t r4 __asm__("r4") = 0xC0DE0004u;
    register uintptr_t r5 __asm__("r5") = 0xC0DE0005u;
    register uintptr_t r6 __asm__("r6") = 0xC0DE0006u;
    register uintptr_t r8 __asm__("r8") = 0xC0DE0008u;
    register uintptr_t r9 __asm__("r9") = 0xC0DE0009u;
    register uintptr_t r10 __asm__("r10") = 0xC0DE000Au;
    register uintptr_t r11 __asm__("r11") = 0xC0DE000Bu;
#ifdef __ARM_FP
    register float s16 __asm__("s16") = 16.0f;
    register float s23 __asm__("s23") = 23.0f;
    register float s31 __asm__("s31") = 31.0f;
    __asm__ volatile("bl _catena_spill_regs"
                     : "+r"(r0)
                     : "r"(r4), "r"(r5), "r"(r6), "r"(r8), "r"(r9),
                       "r"(r10), "r"(r11), "t"(s16), "t"(s23), "t"(s31)
                     : "r1", "r2", "r3", "r12", "lr", "memory", "cc");
#else
    __asm__ volatile("bl _catena_spill_regs"
                     : "+r"(r0)
                     : "r"(r4), "r"(r5), "r"(r6), "r"(r8), "r"(r9),
                       "r"(r10), "r"(r11)
                     : "r1", "r2", "r3", "r12", "lr", "memory", "cc");
#endif
    sp_seen = r0;
}

static float word_as_float(uintptr_t w)
{
    float f;
    uint32_t u = (uint32_t)w;
    memcpy(&f, &u, sizeof f);
    return f;
}

UNIT_TEST(t_spill)
{
    char here;
    memset(regs, 0, sizeof regs);
    spill();
    UNIT_EQ(regs[0], 0xC0DE0004u);
    UNIT_EQ(regs[1], 0xC0DE0005u);
    UNIT_EQ(regs[2], 0xC0DE0006u);
    UNIT_EQ(regs[4], 0xC0DE0008u);
    UNIT_EQ(regs[5], 0xC0DE0009u);
    UNIT_EQ(regs[6], 0xC0DE000Au);
    UNIT_EQ(regs[7], 0xC0DE000Bu);
#ifdef __ARM_FP
    UNIT_ASSERT(word_as_float(regs[8]) == 16.0f);
    UNIT_ASSERT(word_as_float(regs[15]) == 23.0f);
    UNIT_ASSERT(word_as_float(regs[23]) == 31.0f);
#else
    (void)word_as_float;
    for (int i = 8; i < CATENA_REGS_WORDS; i++)
        UNIT_EQ(regs[i], 0); /* left alone without an FPU */
#endif
    /* SP at the call: below this frame, word-aligned, not far below */
    uintptr_t mine = (uintptr_t)&here;
    UNIT_ASSERT(sp_seen % 4 == 0);
    UNIT_ASSERT(sp_seen < mine && mine - sp_seen < 256);
}

/* ---- the collector's hook ------------------------------------------- */
void _catena_gc_scan_regs(catena_heap_t *h);

static uint64_t arena[4096 / 8];
static volatile uintptr_t hidden;

/* Run start / _catena_gc_scan_regs / end with `ref` only in register
 * `which` (4, 8, 11, or 16 for s16); everything else scans nothing. */
static __attribute__((noinline)) void collect_with(catena_heap_t *h,
                                                   uintptr_t ref, int which)
{
    UNIT_EQ(catena_collect_start(h), 0);
    register uintptr_t r0 __asm__("r0") = (uintptr_t)h;
#define SCAN_WITH(reg)                                                     \
    do {                                                                   \
        register uintptr_t v __asm__(reg) = ref;                           \
        __asm__ volatile("bl _catena_gc_scan_regs"                          \
                         : "+r"(r0), "+r"(v)                               \
                         :                                                 \
                         : "r1", "r2", "r3", "r12", "lr", "memory", "cc"); \
    } while (0)
    switch (which) {
    case 4: SCAN_WITH("r4"); break;
    case 8: SCAN_WITH("r8"); break;
    case 11: SCAN_WITH("r11"); break;
#ifdef __ARM_FP
    case 16: {
        float f;
        uint32_t u = (uint32_t)ref;
        memcpy(&f, &u, sizeof f);
        register float s16 __asm__("s16") = f;
        __asm__ volatile("bl _catena_gc_scan_regs"
                         : "+r"(r0), "+t"(s16)
                         :
                         : "r1", "r2", "r3", "r12", "lr", "memory", "cc");
        break;
    }
#endif
    default: UNIT_ASSERT(!"register");
    }
    UNIT_EQ(catena_collect_end(h), 0);
}

UNIT_TEST(t_gc_roots)
{
    static const int which[] = { 4, 8, 11,
#ifdef __ARM_FP
                                 16,
#endif
    };
    catena_heap_t *h;
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    for (size_t k = 0; k < sizeof which / sizeof which[0]; k++) {
        /* the dead object's handle is kept complemented in memory: in
         * plain form it could sit in a callee-saved register of this
         * function and be (rightly) kept alive by the scan */
        hidden = ~(uintptr_t)catena_alloc(h, 40);
        void *live = catena_alloc(h, 40);
        UNIT_ASSERT(live && hidden != ~(uintptr_t)0);
        /* only the handle's value travels, through one register */
        collect_with(h, (uintptr_t)live, which[k]);
        UNIT_ASSERT(catena_size(h, live) >= 40);
        UNIT_EQ(catena_size(h, (void *)~hidden), 0);
        /* and without it, the object dies */
        collect_with(h, (uintptr_t)live ^ 1u, which[k]); /* not a handle */
        UNIT_EQ(catena_size(h, live), 0);
    }
}

static const unit_case cases[] = {
    UNIT_CASE(t_spill),
    UNIT_CASE(t_gc_roots),
};
UNIT_MAIN("regs", cases)
