/* The exported policy as a Crazyflie out-of-tree controller, with the hover button as a dead-man switch.
 *
 * Target: crazyflie-firmware 2026.08 (bitcraze/crazyflie-firmware). The API used, and where it is declared:
 * - controllerOutOfTreeInit / Test / controllerOutOfTree: src/modules/interface/controller/controller.h,
 *   enabled by CONFIG_CONTROLLER_OOT (which also makes it the default controller, src/modules/src/Kconfig);
 * - control_t.controlMode = controlModeForce with normalizedForces[4] in [0, 1], setpoint_t, state_t,
 *   sensorData_t (gyro in deg/s), RATE_DO_EXECUTE: src/modules/interface/stabilizer_types.h;
 * - normalizedForces -> motor: src/modules/src/power_distribution_quadrotor.c (f * UINT16_MAX), then
 *   motorsCompensateBatteryVoltage (src/drivers/src/motors.c) reads that value as thrust / THRUST_MAX newtons and
 *   finds the PWM giving it at the present battery voltage (CONFIG_ENABLE_THRUST_BAT_COMPENSATED, default y);
 * - THRUST_MAX: src/platform/interface/platform_defaults_cf2.h (0.12 N per motor with 2.1+ propellers);
 * - the hover setpoint (cfclient's hover button, cflib send_hover_setpoint): hoverDecoder in
 *   src/modules/src/crtp_commander_generic.c (z absolute, x/y velocity in the body frame).
 *
 * Behaviour: while hover setpoints arrive (each younger than s2r.timeoutMs) the policy flies: on the first one it
 * takes the present position as the start point and resets its observation history, then climbs the reference
 * at s2r.climbRate to s2r.height above the start point and holds it there, as deploy/runtime/quadrotor.py's plan
 * does. Without them the motors are off at once: releasing the button drops the vehicle from where it is. The
 * policy runs every 1000 / SIM2REAL_LAYOUT_CONTROL_HZ stabilizer ticks; the ticks between hold its command. */
#include <stdbool.h>
#include <stdint.h>

#include "FreeRTOS.h"
#include "task.h"

#include "app.h"
#include "controller.h"
#include "log.h"
#include "param.h"
#include "platform_defaults.h"
#include "stabilizer_types.h"
#include "usec_time.h"

#define DEBUG_MODULE "S2R"
#include "debug.h"

#include "sim2real_cf.h"

#ifndef CONFIG_ENABLE_THRUST_BAT_COMPENSATED
#error "sim2real commands per-motor thrust as a fraction of THRUST_MAX: enable CONFIG_ENABLE_THRUST_BAT_COMPENSATED"
#endif
#if (RATE_MAIN_LOOP % SIM2REAL_LAYOUT_CONTROL_HZ) != 0
#error "the policy's control rate must divide the 1000 Hz stabilizer loop"
#endif

#define DEG_TO_RAD 0.0174532925f

static sim2real_cf_t cf;
static sim2real_cf_state_t now;
static float rpm[SIM2REAL_CF_MOTORS];
static float forces[SIM2REAL_CF_MOTORS];
static float start[3];
static uint32_t steps; /* policy steps since engage */
static uint8_t engaged, layoutOk;

/* parameters, group s2r */
static float height = 0.3f;     /* m above the start point */
static float climbRate = 0.5f;  /* m/s */
static uint16_t timeoutMs = 200; /* a hover setpoint older than this is a released button (send them at >= 10 Hz) */

/* logs, group s2r */
static uint32_t stepUs; /* duration of the last policy step, us */

void appMain(void)
{
    DEBUG_PRINT("sim2real policy controller: hold the hover button to fly, release to stop the motors\n");
    while (1) vTaskDelay(M2T(2000));
}

void controllerOutOfTreeInit(void)
{
    layoutOk = (uint8_t)sim2real_cf_layout_matches();
    engaged = 0;
    for (int i = 0; i < SIM2REAL_CF_MOTORS; ++i) forces[i] = 0.0f;
}

bool controllerOutOfTreeTest(void)
{
    if (!layoutOk) DEBUG_PRINT("policy.h and policy_layout.h come from different exports: run python -m firmware.layout\n");
    return layoutOk != 0;
}

static bool hoverHeld(const setpoint_t *sp)
{
    const uint32_t age = T2M(xTaskGetTickCount() - sp->timestamp);
    return sp->mode.z == modeAbs && sp->mode.x == modeVelocity && sp->mode.y == modeVelocity && sp->velocity_body &&
           age <= timeoutMs;
}

static bool allFinite(const float *v, int n)
{
    for (int i = 0; i < n; ++i)
        if (!(v[i] - v[i] == 0.0f)) return false; /* NaN and +-inf */
    return true;
}

static void readState(const state_t *state, const sensorData_t *sensors)
{
    now.position[0] = state->position.x, now.position[1] = state->position.y, now.position[2] = state->position.z;
    now.velocity[0] = state->velocity.x, now.velocity[1] = state->velocity.y, now.velocity[2] = state->velocity.z;
    now.quaternion[0] = state->attitudeQuaternion.w, now.quaternion[1] = state->attitudeQuaternion.x;
    now.quaternion[2] = state->attitudeQuaternion.y, now.quaternion[3] = state->attitudeQuaternion.z;
    now.gyro[0] = sensors->gyro.x * DEG_TO_RAD, now.gyro[1] = sensors->gyro.y * DEG_TO_RAD;
    now.gyro[2] = sensors->gyro.z * DEG_TO_RAD;
}

static void policyStep(void)
{
    const float t = (float)steps / (float)SIM2REAL_LAYOUT_CONTROL_HZ;
    const float climbed = climbRate * t;
    const float dz = climbed < height ? climbed : height;
    const float reference[3] = {start[0], start[1], start[2] + dz};
    const float velocity[3] = {0.0f, 0.0f, climbed < height ? climbRate : 0.0f};
    const uint64_t t0 = usecTimestamp();
    sim2real_cf_set_reference(&cf, reference, velocity);
    sim2real_cf_step(&cf, &now, rpm);
    sim2real_cf_motor_forces(rpm, THRUST_MAX, forces);
    stepUs = (uint32_t)(usecTimestamp() - t0);
    ++steps;
}

void controllerOutOfTree(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors,
                         const state_t *state, const stabilizerStep_t stabilizerStep)
{
    control->controlMode = controlModeForce;
    if (!layoutOk || !hoverHeld(setpoint)) {
        engaged = 0;
    } else if (RATE_DO_EXECUTE(SIM2REAL_LAYOUT_CONTROL_HZ, stabilizerStep)) {
        readState(state, sensors);
        if (!allFinite(now.position, 3) || !allFinite(now.velocity, 3) || !allFinite(now.quaternion, 4) ||
            !allFinite(now.gyro, 3)) {
            engaged = 0;
        } else {
            if (!engaged) { /* the simulator's episode start */
                for (int i = 0; i < 3; ++i) start[i] = now.position[i];
                sim2real_cf_reset(&cf, &now);
                steps = 0;
                engaged = 1;
            }
            policyStep();
        }
    }
    for (int i = 0; i < SIM2REAL_CF_MOTORS; ++i) {
        if (!engaged) forces[i] = 0.0f;
        control->normalizedForces[i] = forces[i];
    }
}

PARAM_GROUP_START(s2r)
PARAM_ADD(PARAM_FLOAT, height, &height)
PARAM_ADD(PARAM_FLOAT, climbRate, &climbRate)
PARAM_ADD(PARAM_UINT16, timeoutMs, &timeoutMs)
PARAM_GROUP_STOP(s2r)

LOG_GROUP_START(s2r)
LOG_ADD(LOG_UINT8, engaged, &engaged)
LOG_ADD(LOG_UINT32, stepUs, &stepUs)
LOG_ADD(LOG_FLOAT, m1, &forces[0])
LOG_ADD(LOG_FLOAT, m2, &forces[1])
LOG_ADD(LOG_FLOAT, m3, &forces[2])
LOG_ADD(LOG_FLOAT, m4, &forces[3])
LOG_GROUP_STOP(s2r)
