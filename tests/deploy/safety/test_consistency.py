"""The state consistency gate, the suspect marking and input faults, with numbers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from deploy.safety import SafetyLayer, SafetyState, StateSample, a1_profile, crazyflie_profile, franka_profile
from deploy.safety.consistency import ConsistencyGate, GateResult, predicted_attitude, quat_angle_rad
from deploy.safety.quadrotor_control import GRAVITY_M_S2, HoverDescendController
from tests.deploy.safety.helpers import Driver, healthy_sample, tilted_quat
from tests.deploy.safety.quad_model import QuadModel

PROFILES = {"quadrotor": crazyflie_profile, "legged": a1_profile, "arm": franka_profile}


def active(name: str) -> Driver:
    d = Driver(PROFILES[name]())
    d.to_active()
    return d


def shifted(d: Driver, dp, stamp=None) -> StateSample:
    s = healthy_sample(d.profile, d.t if stamp is None else stamp)
    return replace(s, position_m=s.position_m + np.asarray(dp, dtype=float))


def test_1000_m_jump_is_rejected_and_raises_state_consistency_in_flight():
    d = active("quadrotor")
    truth = d.layer.latest_state
    assert d.layer.position_trusted
    d.t += 0.005
    assert not d.layer.on_state(shifted(d, (1000.0, 0.0, 0.0)), d.t)
    assert d.layer.latest_state is truth  # a rejected sample is not used
    assert not d.layer.position_trusted and d.layer.velocity_trusted
    d.step()  # the truth goes on
    assert d.layer.state is SafetyState.FALLBACK
    tr = d.layer.transitions[-1]
    assert tr.check == "state_consistency" and "1e+03 m off the prediction" in tr.reason
    assert d.layer.last_trusted_state is truth


def test_half_metre_below_the_truth_in_10_ms_is_rejected():
    gate = ConsistencyGate(crazyflie_profile())
    s0 = replace(healthy_sample(crazyflie_profile(), 1.0), velocity_m_s=np.array([0.5, 0.0, -0.3]))
    gate.accept(s0)
    predicted = s0.position_m + s0.velocity_m_s * 0.01
    truth = replace(s0, stamp_s=1.01, position_m=predicted)
    assert gate.check(truth).ok
    fake = replace(truth, position_m=predicted - np.array([0.0, 0.0, 0.5]))
    result = gate.check(fake)
    assert not result.ok and "0.5 m off the prediction" in result.reason
    # the limit at 10 ms: 0.1 m floor + 30 m/s^2 * (0.01 s)^2 / 4 = 0.10075 m
    assert gate.check(replace(truth, position_m=predicted + np.array([0.0, 0.0, 0.1007]))).ok
    assert not gate.check(replace(truth, position_m=predicted + np.array([0.0, 0.0, 0.1008]))).ok
    # a faked velocity cannot explain the jump: 100 m/s in 10 ms is a velocity jump
    fake_v = replace(fake, velocity_m_s=np.array([0.5, 0.0, -100.0]))
    result = gate.check(fake_v)
    assert not result.ok and result.velocity_bad and "velocity jumped" in result.reason


def test_limits_grow_with_the_gap():
    gate = ConsistencyGate(crazyflie_profile())
    gate.accept(healthy_sample(crazyflie_profile(), 0.0))
    later = healthy_sample(crazyflie_profile(), 0.1)  # 0.1 s: 0.1 + 30 * 0.01 / 4 = 0.175 m allowed
    assert gate.check(replace(later, position_m=later.position_m + np.array([0.17, 0.0, 0.0]))).ok
    assert not gate.check(replace(later, position_m=later.position_m + np.array([0.18, 0.0, 0.0]))).ok


def test_attitude_gate_follows_the_gyro():
    profile = crazyflie_profile()
    gate = ConsistencyGate(profile)
    w = np.array([10.0, -4.0, 2.0])  # a fast flip: 10 rad/s roll
    q0 = tilted_quat(0.3, (0.0, 1.0, 0.0))
    s0 = replace(healthy_sample(profile, 0.0), quat_wxyz=q0, body_rates_rad_s=w)
    gate.accept(s0)
    q1 = predicted_attitude(q0, w, w, 0.01)
    assert quat_angle_rad(q0, q1) == pytest.approx(np.linalg.norm(w) * 0.01, rel=1e-9)
    assert gate.check(replace(s0, stamp_s=0.01, quat_wxyz=q1)).ok
    assert gate.check(replace(s0, stamp_s=0.01, quat_wxyz=-q1)).ok  # q and -q are the same attitude
    # the same rotation without the gyro reading it: 0.11 rad off, under 0.1 + 1000 * 0.01^2 / 4 = 0.125 rad
    assert gate.check(replace(s0, stamp_s=0.01, quat_wxyz=q1, body_rates_rad_s=np.zeros(3))).ok
    # a 20 deg jump with the gyro at zero is not
    jump = replace(s0, stamp_s=0.01, quat_wxyz=tilted_quat(math.radians(20)), body_rates_rad_s=np.zeros(3))
    gate2 = ConsistencyGate(profile)
    gate2.accept(replace(s0, quat_wxyz=np.array([1.0, 0, 0, 0]), body_rates_rad_s=np.zeros(3)))
    result = gate2.check(jump)
    assert not result.ok and "attitude 20 deg off the gyro prediction" in result.reason


@pytest.mark.parametrize("name", ["legged", "arm"])
def test_joint_gate_per_joint(name):
    d = active(name)
    j = d.profile.joints
    dt = d.period
    s = healthy_sample(d.profile, d.t + dt)
    vel = np.asarray(j.velocity_max_rad_s)
    # every joint moving at its velocity limit, consistent with the reported velocity: accepted
    moving = replace(s, joint_pos_rad=s.joint_pos_rad + 0.5 * vel * dt, joint_vel_rad_s=vel)
    assert d.layer.gate.check(moving).ok
    # one joint 0.2 rad off with zero velocity: rejected, naming the joint
    q = s.joint_pos_rad.copy()
    q[3] += 0.2
    result = d.layer.gate.check(replace(s, joint_pos_rad=q))
    assert not result.ok and j.names[3] in result.reason
    q[3] = s.joint_pos_rad[3] + 0.09  # under the 0.1 rad floor
    assert d.layer.gate.check(replace(s, joint_pos_rad=q)).ok


def test_joint_gate_accepts_an_impact_the_velocities_report_and_still_refuses_a_jump():
    """A calf whose velocity changes by 24 rad/s within one 20 ms period (a foot striking the ground, a swing
    reversing) ends anywhere between the two velocities' displacements, up to 0.24 rad from the trapezoid: 0.2 rad
    off is accepted. The same 0.2 rad with the velocity unchanged is refused, and so is 0.45 rad with the change."""
    d = active("legged")
    dt = 0.02
    s = healthy_sample(d.profile, d.t + dt)
    anchor = d.layer.gate.anchors["joints"]
    v0, v_new, q = anchor.rate.copy(), anchor.rate.copy(), anchor.value.copy()
    v_new[2] = v0[2] - 24.0
    trapezoid = anchor.value[2] + 0.5 * (v0[2] + v_new[2]) * dt
    q[2] = trapezoid + 0.2  # it kept the old velocity for most of the period
    assert d.layer.gate.check(replace(s, joint_pos_rad=q, joint_vel_rad_s=v_new)).ok
    q[2] = anchor.value[2] + 0.2  # 0.2 rad with no velocity change: a jump (limit 0.1 + 500 dt^2 / 4 = 0.15)
    assert not d.layer.gate.check(replace(s, joint_pos_rad=q, joint_vel_rad_s=v0)).ok
    q[2] = trapezoid + 0.45  # beyond 0.15 + |dv| dt / 2 = 0.39 rad
    result = d.layer.gate.check(replace(s, joint_pos_rad=q, joint_vel_rad_s=v_new))
    assert not result.ok and d.profile.joints.names[2] in result.reason


def test_a_touchdown_may_stop_the_vehicle_within_one_sample_but_only_on_the_floor():
    """A vehicle coming down at 1.6 m/s stops on the floor between two 10 ms samples (the SIL ground does that in one
    step; a hard landing with motion capture looks alike): 1.6 m/s of change is over the 1.3 m/s a sample may
    change, but the floor explains it. The same stop 0.5 m up, a bounce faster than the fall plus the jump floor, or
    a sideways kick on the floor are still refused."""
    profile = crazyflie_profile()
    gate = ConsistencyGate(profile)

    def landing(z0: float, v_new) -> GateResult:
        v_old = np.array([0.3, 0.0, -1.6])
        gate.accept(replace(healthy_sample(profile, 1.0), position_m=np.array([0.0, 0.0, z0]), velocity_m_s=v_old))
        p_new = np.array([0.003, 0.0, max(z0 - 0.016, 0.0)])
        return gate.check(replace(healthy_sample(profile, 1.01), position_m=p_new, velocity_m_s=np.asarray(v_new)))

    assert landing(0.016, [0.0, 0.0, 0.0]).ok  # at rest on the floor
    assert landing(0.016, [0.1, 0.0, 0.5]).ok  # a bounce, friction took most of the horizontal speed
    assert landing(0.016, [0.3, 0.0, 2.8]).ok  # bounced back 1.6 m/s + 1.2 m/s of the usual per-sample change
    for z0, v_new in ((0.516, [0.0, 0.0, 0.0]), (0.016, [0.3, 0.0, 3.0]), (0.016, [1.7, 0.0, 0.0])):
        result = landing(z0, v_new)
        assert not result.ok and result.velocity_bad and "velocity jumped" in result.reason, (z0, v_new)
    # the floor explains the velocity, not the position: a stop 0.2 m off the trapezoid's path is refused
    gate.accept(replace(healthy_sample(profile, 2.0), position_m=np.array([0.0, 0.0, 0.016]),
                        velocity_m_s=np.array([0.0, 0.0, -1.6])))  # fmt: skip
    far = replace(healthy_sample(profile, 2.01), position_m=np.array([0.2, 0.0, 0.0]), velocity_m_s=np.zeros(3))
    result = gate.check(far)
    assert not result.ok and "off the prediction" in result.reason


def test_a_hard_landing_in_flight_leaves_the_position_trusted():
    """From hover at 1 m: falling at g until 1.5 m/s, then at 1.5 m/s onto the floor, where it stops at once."""
    d = active("quadrotor")
    z, vz = 1.0, 0.0
    while z > 0.0:
        d.t += 0.01
        vz_next = max(vz - GRAVITY_M_S2 * 0.01, -1.5)
        z, vz = z + 0.5 * (vz + vz_next) * 0.01, vz_next
        sample = replace(healthy_sample(d.profile, d.t), position_m=np.array([0.0, 0.0, max(z, 0.0)]))
        assert d.layer.on_state(replace(sample, velocity_m_s=np.array([0.0, 0.0, vz if z > 0.0 else 0.0])), d.t), z
    assert d.layer.position_trusted and d.layer.velocity_trusted
    assert d.layer.latest_state.velocity_m_s[2] == 0.0  # the stop was accepted


def test_legged_attitude_is_gated():
    d = active("legged")
    s = replace(healthy_sample(d.profile, d.t + 0.01), quat_wxyz=tilted_quat(0.5), body_rates_rad_s=np.zeros(3))
    assert not d.layer.on_state(s, d.t + 0.01)
    d.step()
    assert d.layer.state is SafetyState.FALLBACK and d.layer.transitions[-1].check == "state_consistency"


def test_stale_on_arrival_and_future_samples_are_refused_but_not_counted():
    profile = crazyflie_profile()
    layer = SafetyLayer(profile)
    assert layer.on_state(healthy_sample(profile, 0.0), 0.0)
    assert not layer.on_state(healthy_sample(profile, 0.05), 0.151)  # 0.101 s old on arrival > 0.1 s
    assert not layer.on_state(healthy_sample(profile, 0.157), 0.151)  # 6 ms in the future > 5 ms
    assert layer.on_state(healthy_sample(profile, 0.06), 0.151)  # 0.091 s old
    assert layer.position_trusted and not layer.trust.rejections


def test_interleaved_spoofer_truth_accepted_fakes_rejected_never_followed():
    """In flight, fakes 0.5 m below the truth interleaved with it for 3 s: every truth sample is accepted,
    every fake rejected (the gate compares with the last accepted sample, never re-anchors in flight)."""
    d = active("quadrotor")
    accepted, rejected = 0, 0
    for _ in range(300):
        d.t = round(d.t + 0.005, 9)
        rejected += not d.layer.on_state(shifted(d, (0.0, 0.0, -0.5)), d.t)
        d.step()
        accepted += d.layer.latest_state.stamp_s == d.t
    assert rejected == 300 and accepted == 300
    assert d.layer.state is SafetyState.FALLBACK and not d.layer.position_trusted
    np.testing.assert_allclose(d.layer.latest_state.position_m, [0.0, 0.0, 1.0])


def test_fake_track_alone_in_flight_is_never_followed():
    d = active("quadrotor")
    d.sample_fn = lambda t: shifted(d, (0.0, 0.0, -0.5), stamp=t)  # the truth stops, only the fake track arrives
    d.run(0.5)
    assert d.layer.state in (SafetyState.FALLBACK, SafetyState.ESTOP)
    np.testing.assert_allclose(d.layer.latest_state.position_m, [0.0, 0.0, 1.0])  # still the truth
    assert not d.layer.position_trusted


def test_on_the_ground_n_rejections_mark_suspect_and_k_agreeing_reanchor():
    profile = crazyflie_profile()
    c = profile.common
    d = Driver(profile)
    d.step()
    d.sample_fn = lambda t: shifted(d, (0.3, 0.0, 0.0), stamp=t)  # the motion capture re-zeroed by 0.3 m
    for _ in range(c.consistency_max_rejections - 1):
        d.step()
        assert d.layer.position_trusted  # a glitch or two on the ground is only counted
    d.step()
    assert not d.layer.position_trusted
    assert not d.layer.arm(d.t)
    d.run((c.consistency_reanchor_samples - c.consistency_max_rejections) * d.period)
    np.testing.assert_allclose(d.layer.latest_state.position_m, [0.3, 0.0, 1.0])  # re-anchored on the new track
    assert not d.layer.position_trusted  # but still suspect
    d.run(c.consistency_recover_s - 2 * d.period)
    assert not d.layer.position_trusted and not d.layer.arm(d.t)
    d.run(3 * d.period)
    assert d.layer.position_trusted and d.layer.arm(d.t)


def test_suspect_is_never_cleared_in_flight():
    d = active("quadrotor")
    d.layer.on_state(shifted(d, (1000.0, 0.0, 0.0), stamp=d.t + 0.001), d.t + 0.001)
    d.run(3.0)  # healthy truth for 3 s (the attitude-only fallback runs; its deadline is 8 s)
    assert d.layer.state is SafetyState.FALLBACK and not d.layer.position_trusted


def test_input_fault_refuses_arming_and_aborts_arming():
    d = Driver(crazyflie_profile())
    d.feed()
    d.layer.input_fault(d.t, "writers.pose", "2 writers publish state/pose: a, b")
    assert not d.layer.position_trusted
    d.step()
    assert not d.layer.arm(d.t)
    assert any(v.check == "input_integrity" and "writers.pose" in v.reason for v in d.layer.last_verdicts)
    d.layer.clear_input_fault("writers.pose")
    d.run(d.profile.common.consistency_recover_s + d.period)  # on the ground: trusted again after 1 s clean
    assert d.layer.position_trusted and d.layer.arm(d.t)
    d.layer.input_fault(d.t, "writers.command", "another commander", position_suspect=False)
    d.step()
    assert d.layer.state is SafetyState.DISARMED
    assert d.layer.transitions[-1].check == "input_integrity" and "arming aborted" in d.layer.transitions[-1].reason
    assert d.layer.position_trusted  # a pinned writer: the position is not suspect


@pytest.mark.parametrize("name", ["quadrotor", "legged", "arm"])
def test_input_fault_in_flight_is_fallback(name):
    d = active(name)
    t_fault = d.t
    d.layer.input_fault(d.t, "writers.pose", "2 writers publish state/pose", position_suspect=False)
    cmd = d.step()
    assert d.layer.state is SafetyState.FALLBACK and cmd.state is SafetyState.FALLBACK
    tr = d.layer.transitions[-1]
    assert tr.check == "input_integrity" and tr.time_s - t_fault <= d.period + 1e-9
    assert d.layer.position_trusted


def test_input_fault_cleared_in_flight_keeps_the_position_suspect():
    d = active("quadrotor")
    d.layer.input_fault(d.t, "writers.pose", "second writer")
    d.step()
    d.layer.clear_input_fault("writers.pose")
    d.run(1.5)
    assert d.layer.state is SafetyState.FALLBACK and not d.layer.position_trusted


def test_arm_fallback_holds_the_last_trusted_pose():
    d = active("arm")
    trusted = d.layer.latest_state.joint_pos_rad.copy()
    d.heartbeat_on = True
    drift = np.full(d.profile.command_size, 0.05)  # under the 0.1 rad floor each, consistent enough to accept

    def creeping(t):
        s = healthy_sample(d.profile, t)
        return replace(s, joint_pos_rad=s.joint_pos_rad + drift)

    d.layer.input_fault(d.t, "writers.joint_state", "second writer")  # suspect from here on
    d.sample_fn = creeping
    d.run(3.0)
    assert d.layer.state is SafetyState.FALLBACK
    np.testing.assert_allclose(d.layer.latest_state.joint_pos_rad, trusted + drift)  # the newest sample
    np.testing.assert_allclose(d.log[-1][1].values, np.clip(trusted, d.profile.command_low(), None))


def _noisy_flight(seconds: float, seed: int):
    """A Crazyflie model flying a figure eight (1 m/s, 1.6 m/s^2 peaks) with a cascaded PD controller, sampled
    at 100 Hz with the simulated robot's noise (2 mm, 5 mm/s, 0.005 rad/s) and +-2 ms stamp jitter."""
    profile = crazyflie_profile()
    body = profile.quadrotor.body
    model = QuadModel(body, motor_tau_s=0.03)
    model.p[:] = (0.0, 0.0, 1.0)
    ctl = HoverDescendController(profile.quadrotor)
    rng = np.random.default_rng(seed)
    dt, sub = 0.01, 10
    for k in range(round(seconds / dt)):
        t = k * dt
        ref = np.array([0.8 * math.sin(0.8 * t), 0.4 * math.sin(1.6 * t), 1.0 + 0.3 * math.sin(0.5 * t)])
        vref = np.array([0.64 * math.cos(0.8 * t), 0.64 * math.cos(1.6 * t), 0.15 * math.cos(0.5 * t)])
        accel = 4.0 * (ref - model.p) + 4.0 * (vref - model.v)
        force = body.mass_kg * (accel + np.array([0.0, 0.0, GRAVITY_M_S2]))
        rpm = ctl.attitude_command(force, model.q, model.w)
        for _ in range(sub):
            model.step(rpm, dt / sub)
        yield StateSample(
            t + dt + rng.uniform(-0.002, 0.002),
            model.p + rng.normal(0, 0.002, 3),
            model.v + rng.normal(0, 0.005, 3),
            model.q.copy(),
            model.w + rng.normal(0, 0.005, 3),
            battery_fraction=0.9,
        )


def test_normal_noisy_flight_for_30_s_never_trips_the_gate():
    profile = crazyflie_profile()
    layer = SafetyLayer(profile)
    n = 0
    max_tilt = 0.0
    for s in _noisy_flight(30.0, seed=3):
        assert layer.on_state(s, s.stamp_s + 0.002), layer.gate.check(s).reason
        max_tilt = max(max_tilt, 2 * math.acos(min(1.0, abs(s.quat_wxyz[0]))))
        n += 1
    assert n == 3000 and layer.position_trusted and not layer.trust.rejections
    assert max_tilt > math.radians(5)  # it did manoeuvre


def test_joints_are_gated_over_their_own_stamp_when_read_with_an_older_imu():
    """An articulated robot's JointState and Imu arrive as separate messages: read between the two publishes, a
    sample pairs joints one period newer with the previous Imu. Stamped with the older (the Imu's), the joints would
    seem to move a period in 0 s; gated over the JointState's own stamp they are consistent."""
    d = active("legged")
    anchor = d.layer.gate.anchors["joints"]
    dt = 0.02
    vel = np.full_like(anchor.rate, 15.0)
    moved = anchor.value + 0.5 * (anchor.rate + vel) * dt
    late_imu = replace(healthy_sample(d.profile, anchor.stamp_s + 0.0005), joint_pos_rad=moved, joint_vel_rad_s=vel)
    assert not d.layer.gate.check(late_imu).ok  # the old way: 0.15 rad in 0.5 ms
    own = replace(late_imu, joint_stamp_s=anchor.stamp_s + dt, attitude_stamp_s=late_imu.stamp_s)
    assert d.layer.gate.check(own).ok
