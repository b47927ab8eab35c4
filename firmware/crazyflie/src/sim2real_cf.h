/* The Crazyflie on-board policy step, free of firmware headers so that a host compiler can test it.
 *
 * One step: the estimator's state -> the observation vector the policy saw in simulation (layout from
 * policy_layout.h, generated from the same policy.onnx as policy.h) -> policy.h -> rotor speeds -> per-motor thrust
 * as a fraction of the firmware's THRUST_MAX, in the firmware's motor order. It mirrors deploy/observation.py's
 * ObservationBuilder and deploy/runtime/quadrotor.py's last_action; tests/firmware compares the two.
 *
 * Frames. The estimator: world x, y horizontal, z up; body x forward, y left, z up (the simulator's FLU/ENU).
 * The simulator's motor M1 (front-right) spins clockwise seen from above; a Crazyflie's M1 spins counter-clockwise
 * (its force-torque mixer raises M2 and M4 for a positive yaw torque, power_distribution_quadrotor.c). Turning the
 * policy's body frame a quarter turn clockwise (SIM2REAL_CF_BODY_QUARTER_TURNS -1) makes the two agree: the
 * policy's front-right rotor is then the Crazyflie's M2 (back-right, clockwise), its M2 the Crazyflie's M3, and so
 * on. The policy's world frame is turned with the body at engage, so the policy starts level and at yaw 0. */
#ifndef SIM2REAL_CF_H
#define SIM2REAL_CF_H

#include "policy_layout.h"

/* Quarter turns (counter-clockwise, about z) from the Crazyflie's body frame to the policy's: -1 for a stock
 * Crazyflie 2.x (spin directions above), 0 for a vehicle whose M1 spins clockwise like the simulator's. */
#ifndef SIM2REAL_CF_BODY_QUARTER_TURNS
#define SIM2REAL_CF_BODY_QUARTER_TURNS -1
#endif

#define SIM2REAL_CF_OBS_DIM (SIM2REAL_LAYOUT_BASE_DIM * (1 + SIM2REAL_LAYOUT_HISTORY_STEPS))
#define SIM2REAL_CF_MOTORS 4

enum sim2real_term {
    SIM2REAL_TERM_POSITION_ERROR,          /* position - target, world, m */
    SIM2REAL_TERM_ROTATION_MATRIX,         /* body -> world, row-major */
    SIM2REAL_TERM_LINEAR_VELOCITY,         /* world, m/s */
    SIM2REAL_TERM_ANGULAR_VELOCITY,        /* gyro, body, rad/s */
    SIM2REAL_TERM_REFERENCE_VELOCITY,      /* of the reference, world, m/s */
    SIM2REAL_TERM_LAST_ACTION,             /* previous normalized action */
    SIM2REAL_TERM_POSITION_ERROR_INTEGRAL  /* clamped integral of position_error, m s */
};

typedef struct {
    int term;    /* enum sim2real_term */
    int size;    /* values */
    float scale; /* applied after computing the term, as sim.obs_spec.ObsSpec.assemble */
} sim2real_cf_term_t;

/* The estimator's state and the gyro, in the Crazyflie's frames (above). */
typedef struct {
    float position[3];   /* m, world */
    float velocity[3];   /* m/s, world */
    float quaternion[4]; /* w, x, y, z, body -> world */
    float gyro[3];       /* rad/s, body */
} sim2real_cf_state_t;

typedef struct {
    float target[3];          /* m, the reference position, estimator's world frame */
    float target_velocity[3]; /* m/s, its velocity, estimator's world frame */
    float cos_w, sin_w;       /* policy world = estimator's world turned by psi_w about z */
    float integral[3];        /* m s, policy world frame */
    float last_action[SIM2REAL_LAYOUT_ACTION_DIM];
    float obs[SIM2REAL_CF_OBS_DIM]; /* the last observation: base vector, then the previous ones, newest first */
    unsigned int steps; /* steps since engage */
} sim2real_cf_t;

/* Start a flight (the simulator's episode start): integral, history and last action back to zero, the reference at
 * the vehicle's position, and the policy's world frame turned so that the heading in `at_engage` is the policy's
 * yaw 0 (with at_engage NULL: the estimator's world turned by the body quarter turns only, reference at 0). */
void sim2real_cf_reset(sim2real_cf_t *cf, const sim2real_cf_state_t *at_engage);

/* The reference the policy tracks from the next step on: position (m) and velocity (m/s), estimator's world. */
void sim2real_cf_set_reference(sim2real_cf_t *cf, const float position[3], const float velocity[3]);

/* One control period: builds cf->obs from `state`, runs the policy, and writes the rotor speeds (RPM, the
 * policy's motor order M1..M4) to `rpm`. Call it once per period of SIM2REAL_LAYOUT_CONTROL_HZ. */
void sim2real_cf_step(sim2real_cf_t *cf, const sim2real_cf_state_t *state, float rpm[SIM2REAL_LAYOUT_ACTION_DIM]);

/* Only the observation (cf->obs) and its bookkeeping, without running the policy; `command` is the physical
 * command the policy gave for it, which becomes the next last_action. For tests of the builder. */
void sim2real_cf_observe(sim2real_cf_t *cf, const sim2real_cf_state_t *state);
void sim2real_cf_commanded(sim2real_cf_t *cf, const float command[SIM2REAL_LAYOUT_ACTION_DIM]);

/* The policy alone: obs (SIM2REAL_CF_OBS_DIM) -> physical command. */
void sim2real_cf_policy(const float *obs, float command[SIM2REAL_LAYOUT_ACTION_DIM]);

/* Rotor speeds (RPM, policy order) -> per-motor thrust kf rpm^2 as a fraction of thrust_max (N per motor), clipped
 * to [0, 1], in the Crazyflie's motor order: what control_t.normalizedForces takes (controlModeForce). */
void sim2real_cf_motor_forces(const float rpm[SIM2REAL_LAYOUT_ACTION_DIM], float thrust_max,
                              float forces[SIM2REAL_CF_MOTORS]);

/* 1 when policy.h and policy_layout.h come from the same export (same observation spec), else 0. */
int sim2real_cf_layout_matches(void);

#endif /* SIM2REAL_CF_H */
