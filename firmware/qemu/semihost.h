/* ARM semihosting from a Cortex-M (bkpt 0xAB): console output, host files and exit status, no libc.
 *
 * QEMU answers these with `-semihosting-config enable=on,target=native`; on a real board a debug probe does
 * (openocd `arm semihosting enable`). Operation numbers and argument blocks: ARM "Semihosting for AArch32 and
 * AArch64", version 2.0. */
#ifndef SIM2REAL_SEMIHOST_H
#define SIM2REAL_SEMIHOST_H

#include <stdint.h>

#define SH_SYS_OPEN 0x01
#define SH_SYS_CLOSE 0x02
#define SH_SYS_WRITE0 0x04
#define SH_SYS_WRITE 0x05
#define SH_SYS_READ 0x06
#define SH_SYS_FLEN 0x0C
#define SH_SYS_EXIT_EXTENDED 0x20
#define SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define SH_MODE_RB 1 /* fopen "rb" */
#define SH_MODE_WB 5 /* fopen "wb" */

static inline int32_t sh_call(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline uint32_t sh_strlen(const char *s)
{
    uint32_t n = 0;
    while (s[n]) ++n;
    return n;
}

/* A host file (relative paths: QEMU's working directory); -1 when it cannot be opened. */
static inline int32_t sh_open(const char *path, int32_t mode)
{
    const uint32_t block[3] = {(uint32_t)path, (uint32_t)mode, sh_strlen(path)};
    return sh_call(SH_SYS_OPEN, block);
}

static inline void sh_close(int32_t handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    (void)sh_call(SH_SYS_CLOSE, block);
}

/* Bytes read, or -1 when fewer than len arrived. */
static inline int32_t sh_read(int32_t handle, void *buffer, uint32_t len)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, len};
    return sh_call(SH_SYS_READ, block) == 0 ? (int32_t)len : -1;
}

/* 0 on success, -1 when not everything was written. */
static inline int32_t sh_write(int32_t handle, const void *buffer, uint32_t len)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, len};
    return sh_call(SH_SYS_WRITE, block) == 0 ? 0 : -1;
}

static inline int32_t sh_flen(int32_t handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    return sh_call(SH_SYS_FLEN, block);
}

static inline void sh_puts(const char *text)
{
    (void)sh_call(SH_SYS_WRITE0, text);
}

/* Ends the emulation; QEMU exits with `status`. */
static inline void sh_exit(int32_t status)
{
    const uint32_t block[2] = {SH_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)sh_call(SH_SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

#endif /* SIM2REAL_SEMIHOST_H */
