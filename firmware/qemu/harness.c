/* The on-board policy under QEMU's netduinoplus2: outputs for the host to compare, and instructions counted.
 *
 * In (QEMU's working directory, semihosting): obs.bin, N observations of SIM2REAL_CF_OBS_DIM float32.
 * Out: out.bin, N physical commands of SIM2REAL_LAYOUT_ACTION_DIM float32; one console line
 *   sim2real-mcu n=N insn_total=T insn_min=A insn_max=B nop_check=C step_insn=S
 * and exit status 0 (1: bad input file, 2: cannot write, 3: a fault).
 *
 * Counting: run QEMU with `-icount shift=0`, so that its virtual clock advances 1 ns per guest instruction; TIM2
 * counts that clock at 1 GHz (QEMU's STM32F2xx timer model, prescaler 0), so a counter difference is the number of
 * instructions executed in between. nop_check counts a block of exactly 1000 NOPs, the proof that the method
 * holds on this QEMU build. These are instructions, not cycles: a Cortex-M4 spends more than one cycle on loads,
 * divisions and branches, and flash wait states add more. */
#include <stdint.h>

#include "semihost.h"
#include "sim2real_cf.h"

#define TIM2_BASE 0x40000000u
#define TIM2_CR1 (*(volatile uint32_t *)(TIM2_BASE + 0x00u))
#define TIM2_EGR (*(volatile uint32_t *)(TIM2_BASE + 0x14u))
#define TIM2_CNT (*(volatile uint32_t *)(TIM2_BASE + 0x24u))
#define TIM2_PSC (*(volatile uint32_t *)(TIM2_BASE + 0x28u))
#define TIM2_ARR (*(volatile uint32_t *)(TIM2_BASE + 0x2Cu))
#define BARRIER() __asm__ volatile("" ::: "memory")

static float obs[SIM2REAL_CF_OBS_DIM];
static float command[SIM2REAL_LAYOUT_ACTION_DIM];
static float forces[SIM2REAL_CF_MOTORS];
static sim2real_cf_t cf;
static char line[160];
static uint32_t line_len;

static void put(const char *text)
{
    while (*text && line_len + 1u < sizeof line) line[line_len++] = *text++;
    line[line_len] = 0;
}

static void put_u32(const char *key, uint32_t value)
{
    char digits[11];
    int n = 0;
    put(key);
    do digits[n++] = (char)('0' + value % 10u), value /= 10u;
    while (value);
    while (n && line_len + 1u < sizeof line) line[line_len++] = digits[--n];
    line[line_len] = 0;
}

/* instructions counted between two back-to-back reads: the second read itself */
__attribute__((noinline)) static uint32_t read_overhead(void)
{
    const uint32_t t0 = TIM2_CNT;
    const uint32_t t1 = TIM2_CNT;
    return t1 - t0;
}

__attribute__((noinline)) static uint32_t count_nops(uint32_t overhead)
{
    uint32_t t0, t1;
    t0 = TIM2_CNT;
    __asm__ volatile(".rept 1000\n\tnop\n\t.endr" ::: "memory");
    t1 = TIM2_CNT;
    return t1 - t0 - overhead;
}

/* a vehicle hovering 0.5 m above where it engaged, slightly tilted, turning slowly */
static const sim2real_cf_state_t hover = {
    {0.1f, -0.2f, 0.5f}, {0.05f, 0.0f, -0.02f}, {0.9990482f, 0.0261769f, -0.0348995f, 0.0087265f}, {0.1f, -0.05f, 0.2f}};

int main(void)
{
    uint32_t overhead, t0, t1, n, k, insn, total = 0u, lo = 0xFFFFFFFFu, hi = 0u, step;
    int32_t fin, fout, len;
    const uint32_t row = (uint32_t)sizeof obs;

    TIM2_PSC = 0u;
    TIM2_ARR = 0xFFFFFFFFu;
    TIM2_EGR = 1u; /* load the prescaler */
    TIM2_CR1 = 1u;
    overhead = read_overhead();

    fin = sh_open("obs.bin", SH_MODE_RB);
    fout = sh_open("out.bin", SH_MODE_WB);
    if (fin < 0 || fout < 0) {
        sh_puts("sim2real-mcu: cannot open obs.bin / out.bin in the working directory\n");
        return 1;
    }
    len = sh_flen(fin);
    if (len <= 0 || (uint32_t)len % row) {
        sh_puts("sim2real-mcu: obs.bin is not a whole number of observations\n");
        return 1;
    }
    n = (uint32_t)len / row;
    for (k = 0u; k < n; ++k) {
        if (sh_read(fin, obs, row) < 0) return 1;
        BARRIER();
        t0 = TIM2_CNT;
        sim2real_cf_policy(obs, command);
        t1 = TIM2_CNT;
        BARRIER();
        insn = t1 - t0 - overhead;
        total += insn;
        lo = insn < lo ? insn : lo;
        hi = insn > hi ? insn : hi;
        if (sh_write(fout, command, (uint32_t)sizeof command) < 0) return 2;
    }
    sh_close(fin);
    sh_close(fout);

    /* one whole control step (observation, policy, last action, motor map) after the first, whose history differs */
    sim2real_cf_reset(&cf, 0);
    sim2real_cf_step(&cf, &hover, command);
    BARRIER();
    t0 = TIM2_CNT;
    sim2real_cf_step(&cf, &hover, command);
    sim2real_cf_motor_forces(command, 0.12f, forces);
    t1 = TIM2_CNT;
    BARRIER();
    step = t1 - t0 - overhead;

    put_u32("sim2real-mcu n=", n);
    put_u32(" insn_total=", total);
    put_u32(" insn_min=", lo);
    put_u32(" insn_max=", hi);
    put_u32(" nop_check=", count_nops(overhead));
    put_u32(" step_insn=", step);
    put_u32(" layout_ok=", (uint32_t)sim2real_cf_layout_matches());
    put("\n");
    sh_puts(line);
    return 0;
}
