/* Start-up of a bare Cortex-M4F program on QEMU's netduinoplus2 (STM32F405, the Crazyflie 2.x MCU family).
 *
 * The vector table sits at the start of flash (0x08000000, aliased at 0 where the core fetches it). Reset copies
 * .data from flash, clears .bss, turns the FPU on (CPACR: CP10 and CP11 full access) before any float
 * instruction runs, calls main() and ends the emulation with main's return value (semihosting). A fault ends it
 * with status 3 and says so on the console. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void);
void Fault_Handler(void);

void Reset_Handler(void)
{
    const uint32_t *src = &_sidata;
    uint32_t *dst;
    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0u;
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    sh_exit(main());
}

void Fault_Handler(void)
{
    sh_puts("sim2real-mcu: fault (hard, memory, bus or usage)\n");
    sh_exit(3);
}

/* GCC may turn loops into calls of these four even in freestanding code (its documentation asks the environment
 * for them); there is no libc here, so here they are, compiled so that they do not call themselves. */
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memcpy(void *dst, const void *src, unsigned int n);
void *memmove(void *dst, const void *src, unsigned int n);
void *memset(void *dst, int value, unsigned int n);
int memcmp(const void *a, const void *b, unsigned int n);

NO_LIBCALL void *memcpy(void *dst, const void *src, unsigned int n)
{
    return memmove(dst, src, n);
}

NO_LIBCALL void *memmove(void *dst, const void *src, unsigned int n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s)
        while (n--) *d++ = *s++;
    else
        while (n--) d[n] = s[n];
    return dst;
}

NO_LIBCALL void *memset(void *dst, int value, unsigned int n)
{
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)value;
    return dst;
}

NO_LIBCALL int memcmp(const void *a, const void *b, unsigned int n)
{
    const unsigned char *x = a, *y = b;
    for (; n; --n, ++x, ++y)
        if (*x != *y) return *x - *y;
    return 0;
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t sim2real_vectors[16] = {
    (vector_t)&_estack, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
