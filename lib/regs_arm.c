/*
 * regs_arm.c - GC roots on Cortex-M: the callee-saved registers.
 *
 * A conservative collector finds the roots a thread holds in two places:
 * its stack, and the registers the compiler keeps values in across calls.
 * Caller-saved registers (r0-r3, r12, lr) are already on the stack by the
 * time a collection runs, because its callers saved what they still need.
 * The callee-saved ones (AAPCS: r4-r11, and s16-s31 with an FPU, where GCC
 * may park an integer) can hold a live pointer that is nowhere in memory.
 *
 * Two entry points, both leaf-level assembly so that no compiler-generated
 * prologue can move a register's value out of sight first:
 *
 *  _catena_gc_scan_regs(h)  the collector's hook (catena_int.h): pushes
 *      the callee-saved registers and hands that stack area to
 *      catena_collect_root(h, ...), then restores them.  catena_collect
 *      calls it; it replaces gc.c's default (see the note at the end).
 *  _catena_spill_regs(regs) for ports that scan by themselves (e.g. an
 *      interpreter's own gc_collect): stores r4-r11 (and s16-s31) into
 *      regs[CATENA_REGS_WORDS] and returns the caller's stack pointer; scan
 *      regs[] and [returned SP, stack top).
 *
 * Instruction sets:
 *  - v6-M (Cortex-M0/M0+/M1) and v8-M Baseline (M23): PUSH and STM take
 *    only r0-r7, so r8-r11 go through low registers first.
 *  - v7-M, v7E-M, v8-M Mainline (M3, M4, M7, M33, M55): one PUSH/STM.
 *  - with a VFP (__ARM_FP): also s16-s31 (VPUSH/VSTM).
 * Every access is a word access to a word-aligned address, and SP stays
 * 8-byte aligned at the call (AAPCS).
 *
 * Off Cortex-M this file defines nothing.
 */
#include <stdint.h>
#include "catena_int.h"

#if defined(__arm__) && defined(__thumb__) && \
    (defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M')

/* Words of the buffer: r4-r11, then s16-s31 when there is an FPU. */
#ifndef CATENA_REGS_WORDS
#define CATENA_REGS_WORDS 24
#endif

void *_catena_spill_regs(uintptr_t regs[CATENA_REGS_WORDS]);

/* Naked: no prologue or epilogue, so SP and the callee-saved registers are
 * exactly the caller's.  r0 = regs on entry, the result on exit. */
__attribute__((naked)) void *
_catena_spill_regs(__attribute__((unused)) uintptr_t regs[CATENA_REGS_WORDS])
{
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
    __asm__ volatile(
        "stmia  r0!, {r4-r7}\n\t" /* regs[0..3]; r0 += 16 */
        "mov    r1, r8\n\t"       /* high registers go through low ones */
        "mov    r2, r9\n\t"
        "mov    r3, r10\n\t"
        "stmia  r0!, {r1-r3}\n\t" /* regs[4..6] */
        "mov    r1, r11\n\t"
        "str    r1, [r0]\n\t"     /* regs[7] */
        "mov    r0, sp\n\t"
        "bx     lr\n\t");
#else
    __asm__ volatile(
        "stmia  r0, {r4-r11}\n\t" /* regs[0..7] */
#if defined(__ARM_FP)
        "add    r1, r0, #32\n\t"
        "vstmia r1, {s16-s31}\n\t" /* regs[8..23] */
#endif
        "mov    r0, sp\n\t"
        "bx     lr\n\t");
#endif
}

/* catena_collect_root(h, ptrs, n) takes r0 = h (our own argument), r1 =
 * the saved registers on the stack, r2 = their number (lr rides along;
 * scanning a code address is harmless).  One pad word below them keeps
 * SP 8-byte aligned at the call; it is not scanned. */
__attribute__((naked)) void
_catena_gc_scan_regs(__attribute__((unused)) catena_heap_t *h)
{
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
    __asm__ volatile(
        "push   {r4-r7, lr}\n\t"  /* 5 words */
        "mov    r4, r8\n\t"
        "mov    r5, r9\n\t"
        "mov    r6, r10\n\t"
        "mov    r7, r11\n\t"
        "push   {r4-r7}\n\t"      /* r8-r11: 4 words */
        "sub    sp, #4\n\t"       /* pad */
        "add    r1, sp, #4\n\t"
        "movs   r2, #9\n\t"
        "bl     catena_collect_root\n\t"
        "add    sp, #4\n\t"
        "pop    {r4-r7}\n\t"
        "mov    r8, r4\n\t"
        "mov    r9, r5\n\t"
        "mov    r10, r6\n\t"
        "mov    r11, r7\n\t"
        "pop    {r4-r7, pc}\n\t");
#elif defined(__ARM_FP)
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t" /* 9 words */
        "vpush  {s16-s31}\n\t"    /* 16 words */
        "sub    sp, #4\n\t"       /* pad */
        "add    r1, sp, #4\n\t"
        "movs   r2, #25\n\t"
        "bl     catena_collect_root\n\t"
        "add    sp, #4\n\t"
        "vpop   {s16-s31}\n\t"
        "pop    {r4-r11, pc}\n\t");
#else
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t" /* 9 words */
        "sub    sp, #4\n\t"       /* pad */
        "add    r1, sp, #4\n\t"
        "movs   r2, #9\n\t"
        "bl     catena_collect_root\n\t"
        "add    sp, #4\n\t"
        "pop    {r4-r11, pc}\n\t");
#endif
}

/* Linking note: if gc.c defines a weak default of _catena_gc_scan_regs, a
 * program linked against libcatena.a would keep that default, because an
 * archive member is only extracted for an undefined symbol.  gc.c must
 * therefore leave the hook undefined on Cortex-M (this file's condition). */

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int catena_regs_arm_unused;
#endif
