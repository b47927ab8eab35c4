/* The Crazyflie on-board policy step (sim2real_cf.h). C99, float only, no allocation, no libm. */
#define SIM2REAL_POLICY_STATIC_BUFFERS /* the stabilizer task has a 1.8 KB stack (crazyflie-firmware config.h) */
#include "policy.h"
#include "sim2real_cf.h"

#if SIM2REAL_CF_OBS_DIM != SIM2REAL_POLICY_OBS_DIM || SIM2REAL_LAYOUT_ACTION_DIM != SIM2REAL_POLICY_ACTION_DIM
#error "policy.h and policy_layout.h disagree on the observation or action size: generate both from one policy.onnx (python -m firmware.layout POLICY.onnx)"
#endif
#if SIM2REAL_LAYOUT_ACTION_DIM != SIM2REAL_CF_MOTORS
#error "the on-board controller drives 4 motors: export a quadrotor policy with the rpm action interface"
#endif

/* cos and sin of the body quarter turns, exact */
#if SIM2REAL_CF_BODY_QUARTER_TURNS == 0
#define BODY_C 1.0f
#define BODY_S 0.0f
#elif SIM2REAL_CF_BODY_QUARTER_TURNS == 1
#define BODY_C 0.0f
#define BODY_S 1.0f
#elif SIM2REAL_CF_BODY_QUARTER_TURNS == -1
#define BODY_C 0.0f
#define BODY_S -1.0f
#elif SIM2REAL_CF_BODY_QUARTER_TURNS == 2
#define BODY_C -1.0f
#define BODY_S 0.0f
#else
#error "SIM2REAL_CF_BODY_QUARTER_TURNS must be -1, 0, 1 or 2"
#endif

#define BASE SIM2REAL_LAYOUT_BASE_DIM
#define HISTORY SIM2REAL_LAYOUT_HISTORY_STEPS

static const sim2real_cf_term_t terms[SIM2REAL_LAYOUT_NUM_TERMS] = SIM2REAL_LAYOUT_TERMS;

/* (9,) rotation matrix body -> world, row-major, from w, x, y, z (deploy.observation.rotation_matrix) */
static void rotation_matrix(const float q[4], float r[9])
{
    const float w = q[0], x = q[1], y = q[2], z = q[3];
    const float xx = x * x, yy = y * y, zz = z * z, xy = x * y, xz = x * z, yz = y * z;
    const float wx = w * x, wy = w * y, wz = w * z;
    r[0] = 1.0f - 2.0f * (yy + zz), r[1] = 2.0f * (xy - wz), r[2] = 2.0f * (xz + wy);
    r[3] = 2.0f * (xy + wz), r[4] = 1.0f - 2.0f * (xx + zz), r[5] = 2.0f * (yz - wx);
    r[6] = 2.0f * (xz - wy), r[7] = 2.0f * (yz + wx), r[8] = 1.0f - 2.0f * (xx + yy);
}

/* a world vector in the policy's world frame */
static void to_policy_world(const sim2real_cf_t *cf, const float v[3], float out[3])
{
    out[0] = cf->cos_w * v[0] + cf->sin_w * v[1];
    out[1] = -cf->sin_w * v[0] + cf->cos_w * v[1];
    out[2] = v[2];
}

void sim2real_cf_set_reference(sim2real_cf_t *cf, const float position[3], const float velocity[3])
{
    int i;
    for (i = 0; i < 3; ++i) cf->target[i] = position[i], cf->target_velocity[i] = velocity[i];
}

void sim2real_cf_reset(sim2real_cf_t *cf, const sim2real_cf_state_t *at_engage)
{
    static const float zero[3] = {0.0f, 0.0f, 0.0f};
    float c0 = 1.0f, s0 = 0.0f;
    int i;
    sim2real_cf_set_reference(cf, at_engage ? at_engage->position : zero, zero);
    for (i = 0; i < 3; ++i) cf->integral[i] = 0.0f;
    for (i = 0; i < SIM2REAL_LAYOUT_ACTION_DIM; ++i) cf->last_action[i] = 0.0f;
    for (i = 0; i < SIM2REAL_CF_OBS_DIM; ++i) cf->obs[i] = 0.0f;
    cf->steps = 0u;
    if (at_engage) { /* heading: the body x axis seen in the world's xy plane */
        float r[9], n2;
        rotation_matrix(at_engage->quaternion, r);
        n2 = r[0] * r[0] + r[3] * r[3];
        if (n2 > 1e-6f) {
            const float inv = 1.0f / __builtin_sqrtf(n2);
            c0 = r[0] * inv, s0 = r[3] * inv;
        }
    }
    cf->cos_w = c0 * BODY_C - s0 * BODY_S; /* psi_w = heading + body turn */
    cf->sin_w = s0 * BODY_C + c0 * BODY_S;
}

static int term_values(sim2real_cf_t *cf, const sim2real_cf_state_t *s, int term, float v[9])
{
    float e[3], r[9], m[9];
    int i;
    switch (term) {
    case SIM2REAL_TERM_POSITION_ERROR:
    case SIM2REAL_TERM_POSITION_ERROR_INTEGRAL:
        for (i = 0; i < 3; ++i) e[i] = s->position[i] - cf->target[i];
        to_policy_world(cf, e, v);
        return 3;
    case SIM2REAL_TERM_ROTATION_MATRIX: /* Rz(-psi_w) R Rz(psi_b) */
        rotation_matrix(s->quaternion, r);
        for (i = 0; i < 3; ++i) {
            m[3 * i] = BODY_C * r[3 * i] + BODY_S * r[3 * i + 1];
            m[3 * i + 1] = -BODY_S * r[3 * i] + BODY_C * r[3 * i + 1];
            m[3 * i + 2] = r[3 * i + 2];
        }
        for (i = 0; i < 3; ++i) {
            v[i] = cf->cos_w * m[i] + cf->sin_w * m[3 + i];
            v[3 + i] = -cf->sin_w * m[i] + cf->cos_w * m[3 + i];
            v[6 + i] = m[6 + i];
        }
        return 9;
    case SIM2REAL_TERM_LINEAR_VELOCITY:
        to_policy_world(cf, s->velocity, v);
        return 3;
    case SIM2REAL_TERM_ANGULAR_VELOCITY: /* Rz(-psi_b) gyro */
        v[0] = BODY_C * s->gyro[0] + BODY_S * s->gyro[1];
        v[1] = -BODY_S * s->gyro[0] + BODY_C * s->gyro[1];
        v[2] = s->gyro[2];
        return 3;
    case SIM2REAL_TERM_REFERENCE_VELOCITY:
        to_policy_world(cf, cf->target_velocity, v);
        return 3;
    case SIM2REAL_TERM_LAST_ACTION:
        for (i = 0; i < SIM2REAL_LAYOUT_ACTION_DIM; ++i) v[i] = cf->last_action[i];
        return SIM2REAL_LAYOUT_ACTION_DIM;
    default:
        return 0;
    }
}

void sim2real_cf_observe(sim2real_cf_t *cf, const sim2real_cf_state_t *state)
{
    float v[9];
    int t, i, at = 0;
    for (i = BASE * (HISTORY + 1) - 1; i >= BASE; --i) cf->obs[i] = cf->obs[i - BASE]; /* previous ones, one back */
    for (t = 0; t < SIM2REAL_LAYOUT_NUM_TERMS; ++t) {
        const int n = term_values(cf, state, terms[t].term, v);
        if (terms[t].term == SIM2REAL_TERM_POSITION_ERROR_INTEGRAL) { /* sim.obs_terms.integrate_position_error */
            for (i = 0; i < 3; ++i) {
                float g = cf->integral[i] + v[i] * SIM2REAL_LAYOUT_CONTROL_DT;
                g = g < -SIM2REAL_LAYOUT_INTEGRAL_LIMIT ? -SIM2REAL_LAYOUT_INTEGRAL_LIMIT : g;
                cf->integral[i] = g > SIM2REAL_LAYOUT_INTEGRAL_LIMIT ? SIM2REAL_LAYOUT_INTEGRAL_LIMIT : g;
                v[i] = cf->integral[i];
            }
        }
        for (i = 0; i < n && i < terms[t].size; ++i) cf->obs[at + i] = v[i] * terms[t].scale;
        at += terms[t].size;
    }
    if (cf->steps == 0u) /* a flight starts with copies of its first observation */
        for (i = BASE; i < BASE * (HISTORY + 1); ++i) cf->obs[i] = cf->obs[i % BASE];
    ++cf->steps;
}

void sim2real_cf_commanded(sim2real_cf_t *cf, const float command[SIM2REAL_LAYOUT_ACTION_DIM])
{
    int i;
    for (i = 0; i < SIM2REAL_LAYOUT_ACTION_DIM; ++i) { /* deploy/runtime/quadrotor.py: clip(to_normalized(command)) */
        const float a = (command[i] - sim2real_action_offset[i]) / sim2real_action_scale[i];
        cf->last_action[i] = a < -1.0f ? -1.0f : (a > 1.0f ? 1.0f : a);
    }
}

void sim2real_cf_policy(const float *obs, float command[SIM2REAL_LAYOUT_ACTION_DIM])
{
    sim2real_policy(obs, command);
}

void sim2real_cf_step(sim2real_cf_t *cf, const sim2real_cf_state_t *state, float rpm[SIM2REAL_LAYOUT_ACTION_DIM])
{
    sim2real_cf_observe(cf, state);
    sim2real_policy(cf->obs, rpm);
    sim2real_cf_commanded(cf, rpm);
}

void sim2real_cf_motor_forces(const float rpm[SIM2REAL_LAYOUT_ACTION_DIM], float thrust_max,
                              float forces[SIM2REAL_CF_MOTORS])
{
    int k;
    for (k = 0; k < SIM2REAL_CF_MOTORS; ++k) {
        const float f = rpm[k] > 0.0f ? SIM2REAL_LAYOUT_KF * rpm[k] * rpm[k] / thrust_max : 0.0f; /* NaN -> 0 */
        /* the policy's rotor k sits where the Crazyflie's rotor k - turns is (positions counted clockwise) */
        forces[(k - SIM2REAL_CF_BODY_QUARTER_TURNS + 8) % 4] = f < 1.0f ? f : 1.0f;
    }
}

int sim2real_cf_layout_matches(void)
{
    const char *a = SIM2REAL_POLICY_OBS_SPEC, *b = SIM2REAL_LAYOUT_OBS_SPEC;
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}
