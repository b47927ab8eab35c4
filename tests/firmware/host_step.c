/* Host driver of the Crazyflie on-board step (firmware/crazyflie/src/sim2real_cf.c), for tests/firmware.
 *
 * usage: host_step steps IN OUT K ALIGN
 *   IN: K rows of 19 float32: position 3, velocity 3, quaternion w x y z, gyro 3 (rad/s), reference position 3,
 *       reference velocity 3. The first row starts the flight (ALIGN 1: its heading is the policy's yaw 0).
 *   OUT: K rows of obs (SIM2REAL_CF_OBS_DIM), command (4, RPM), motor forces (4, THRUST_MAX 0.12 N), float32.
 * usage: host_step motors IN OUT K
 *   IN: K rows of 4 rotor speeds (RPM, policy order); OUT: K rows of 4 normalized forces (Crazyflie order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim2real_cf.h"

#define ROW_IN 19
#define THRUST_MAX_N 0.12f

static sim2real_cf_t cf;

static int run_steps(FILE *in, FILE *out, long k, int align)
{
    float row[ROW_IN], rpm[4], forces[4];
    sim2real_cf_state_t s;
    long i;
    for (i = 0; i < k; ++i) {
        if (fread(row, sizeof(float), ROW_IN, in) != ROW_IN) return 1;
        memcpy(s.position, row, sizeof s.position);
        memcpy(s.velocity, row + 3, sizeof s.velocity);
        memcpy(s.quaternion, row + 6, sizeof s.quaternion);
        memcpy(s.gyro, row + 10, sizeof s.gyro);
        if (i == 0) sim2real_cf_reset(&cf, align ? &s : NULL);
        sim2real_cf_set_reference(&cf, row + 13, row + 16);
        sim2real_cf_step(&cf, &s, rpm);
        sim2real_cf_motor_forces(rpm, THRUST_MAX_N, forces);
        fwrite(cf.obs, sizeof(float), SIM2REAL_CF_OBS_DIM, out);
        fwrite(rpm, sizeof(float), 4, out);
        fwrite(forces, sizeof(float), 4, out);
    }
    return 0;
}

static int run_motors(FILE *in, FILE *out, long k)
{
    float rpm[4], forces[4];
    long i;
    for (i = 0; i < k; ++i) {
        if (fread(rpm, sizeof(float), 4, in) != 4) return 1;
        sim2real_cf_motor_forces(rpm, THRUST_MAX_N, forces);
        fwrite(forces, sizeof(float), 4, out);
    }
    return 0;
}

int main(int argc, char **argv)
{
    FILE *in, *out;
    int rc;
    if (argc < 5) {
        fprintf(stderr, "usage: %s steps|motors IN OUT K [ALIGN]\n", argv[0]);
        return 2;
    }
    in = fopen(argv[2], "rb");
    out = fopen(argv[3], "wb");
    if (!in || !out) return 2;
    if (!sim2real_cf_layout_matches()) return 3;
    rc = strcmp(argv[1], "motors") == 0 ? run_motors(in, out, atol(argv[4]))
                                        : run_steps(in, out, atol(argv[4]), argc > 5 && atoi(argv[5]));
    fclose(in);
    fclose(out);
    return rc;
}
