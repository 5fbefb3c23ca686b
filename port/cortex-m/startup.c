/*
 * startup.c - minimal Cortex-M start-up for running tests under QEMU.
 *
 * newlib's rdimon crt0 (_start) sets SP, zeroes .bss (__bss_start__ to
 * __bss_end__), opens the semihosting handles, runs constructors, calls
 * main and exit(main's value); but it has no vector table and does not copy
 * .data, so the core cannot boot from it alone.  This file adds what is
 * missing, hands over to _start, and keeps SP in our RAM (_stack_init).
 *
 * Portable to v6-M (Cortex-M0), v7-M, v7E-M and v8-M Mainline: plain C plus
 * a few instructions every M profile has.
 */
#include <stdint.h>
#include <string.h>

/* From the linker script (common.ld). */
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __stack[];

extern void _start(void) __attribute__((noreturn));
void cm_reset(void) __attribute__((noreturn));
void cm_fault(void) __attribute__((noreturn));
void cm_fault_report(const uint32_t *frame) __attribute__((noreturn, used));
void _stack_init(void); /* newlib crt0 hook, see below */

/* Exit status for a fault: automake reports 99 as ERROR, not as FAIL. */
#define CM_FAULT_STATUS 99

/* Entries 2..15: every system exception ends the run.  Interrupts (16 up)
 * are never enabled, so the table stops here. */
struct cm_vectors {
    uint32_t *sp;
    void (*handler[15])(void);
};

__attribute__((section(".vectors"), used))
static const struct cm_vectors cm_vectors = {
    __stack,
    {
        cm_reset,
        cm_fault, cm_fault, cm_fault, cm_fault, cm_fault, /* 2..6 */
        cm_fault, cm_fault, cm_fault, cm_fault, cm_fault, /* 7..11 */
        cm_fault, cm_fault, cm_fault, cm_fault,           /* 12..15 */
    },
};

void cm_reset(void)
{
#ifdef __ARM_FP
    /* Before any VFP instruction (newlib's hard-float code uses them):
     * grant full access to CP10/CP11, else the first one faults (NOCP). */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || \
    defined(__ARM_ARCH_8M_MAIN__)
    /* Enable MemManage, BusFault and UsageFault (SHCSR) so a fault is
     * reported as what it is rather than escalating to HardFault. */
    *(volatile uint32_t *)0xE000ED24 |= 7u << 16;
#endif
    /* crt0 keeps its own state in .data (the SYS_HEAPINFO block), so this
     * must come before _start.  memcpy needs no initialised data itself. */
    memcpy(__data_start, __data_load,
           (size_t)((char *)__data_end - (char *)__data_start));
    _start();
}

/* rdimon's _start moves SP to the stack base that QEMU's SYS_HEAPINFO
 * reports: the top of the board's largest RAM (the 16 MiB PSRAM at
 * 0x21000000 on AN385/AN386, 0x80000000 on AN505), outside the RAM our
 * linker script describes.  _sbrk lets the heap grow from `end` up to SP,
 * i.e. across the SSRAM's mirror and the unmapped gap after it: a big
 * malloc would silently alias .data/.bss.  _start then calls this weak
 * hook with nothing on the stack yet, so we move SP back to __stack; the
 * heap is then bounded by our RAM. */
__attribute__((naked)) void _stack_init(void)
{
    __asm__ volatile("ldr r0, =__stack\n\tmov sp, r0\n\tbx lr\n\t.ltorg");
}

/* Raw semihosting call: usable from a fault handler, where newlib's state
 * (stdio buffers, locks) may be what is broken. */
static uint32_t cm_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void cm_puts(const char *s) { cm_semihost(0x04, s); } /* SYS_WRITE0 */

static void cm_puthex(uint32_t v)
{
    char buf[11] = "0x";
    for (int i = 0; i < 8; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    buf[10] = 0;
    cm_puts(buf);
}

/* Naked so that r0 is the exception frame as the core stacked it (we only
 * ever run on MSP).  bl, not b: v6-M's b reaches just +-2 KiB. */
__attribute__((naked)) void cm_fault(void)
{
    __asm__ volatile("mrs r0, msp\n\tbl cm_fault_report");
}

void cm_fault_report(const uint32_t *frame)
{
    static const char *const names[] = {
        "exception 0", "reset", "NMI", "HardFault", "MemManage",
        "BusFault", "UsageFault", "SecureFault", "exception 8",
        "exception 9", "exception 10", "SVCall", "DebugMonitor",
        "exception 13", "PendSV", "SysTick",
    };
    uint32_t ipsr;
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || \
    defined(__ARM_ARCH_8M_MAIN__)
    /* A test may have turned on the unaligned trap (CCR.UNALIGN_TRP); the
     * code below and newlib's may make unaligned accesses: turn it off. */
    *(volatile uint32_t *)0xE000ED14 &= ~(1u << 3);
#endif
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1ff;
    cm_puts("\n*** ");
    cm_puts(ipsr < 16 ? names[ipsr] : "interrupt");
    cm_puts(" at pc ");
    cm_puthex(frame[6]);
    cm_puts(", lr ");
    cm_puthex(frame[5]);
    cm_puts("\n");
    /* SYS_EXIT_EXTENDED {ADP_Stopped_ApplicationExit, status}: the only
     * 32-bit semihosting exit that carries a status (QEMU supports it). */
    static const uint32_t block[2] = { 0x20026, CM_FAULT_STATUS };
    cm_semihost(0x20, block);
    for (;;)
        ; /* not reached */
}
