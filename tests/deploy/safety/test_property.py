"""Property: whatever the inputs, every command leaving the layer is finite and within the profile's limits.

For every command c_k returned by ``filter(action, now_k, ...)``, with c_{k-1} the previous one:
  P1  values (and kp, kd when present) are finite and have the profile's shape (A,).
  P2  c_k.mode is STOP  <=>  c_k.state is DISARMED or ESTOP; a STOP command is the stop command:
      quadrotor all 0 RPM; joint robots kp = kd = 0 with targets inside [low, high].
  P3  a non-STOP command lies inside [low, high] elementwise (quadrotor [min_rpm, max_rpm]).
  P4  if neither c_k nor c_{k-1} is STOP: |c_k - c_{k-1}| <= max_rate * max(now_k - now_{k-1}, 0) (+1e-9 relative).
  P5  a non-STOP command that follows a STOP command (or is the first command) is emitted in ARMING.
  P6  joint gains: 0 <= kp <= profile kp; 0 <= kd <= max(profile kd, damping kd).
Cutting to STOP is always allowed (it is the zero command); leaving STOP only happens through ARMING, whose
first command (quadrotor idle min_rpm, joints hold the measured pose) is not rate-limited against the stop.

And over the whole sequence (e-stop latch and reset):
  P7  after any ``estop()`` call or any state sample reporting the hardware e-stop input (accepted or not), every
      command up to the next successful ``reset()`` is emitted in ESTOP (so the first ``filter`` after it is);
      ``disarm`` and ``arm`` change nothing there.
  P8  ``reset()`` succeeds only in ESTOP and leaves DISARMED; an ``arm()`` after it succeeds only once a
      heartbeat and a state sample were accepted after the reset, and never while an input fault is present.
The events also include spoofed samples (position / joint jumps, attitude jumps), input faults and their
clearing, and resets.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.safety import CommandMode, SafetyLayer, SafetyState, a1_profile, crazyflie_profile, franka_profile
from tests.deploy.safety.helpers import healthy_sample, nominal_action, tilted_quat, with_common

WILD = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 0.0, -1.0, 1e5])
SCALE = st.floats(-3.0, 3.0, allow_nan=False)


def check_command(profile, prev, prev_now, cmd, now) -> None:
    low, high, rate = profile.command_low(), profile.command_high(), profile.command_max_rate_per_s()
    v = cmd.values
    assert v.shape == low.shape and np.all(np.isfinite(v)), cmd  # P1
    stopped = cmd.state in (SafetyState.DISARMED, SafetyState.ESTOP)
    assert (cmd.mode is CommandMode.STOP) == stopped, cmd  # P2
    if profile.joints is not None:
        kp, kd = cmd.kp_nm_per_rad, cmd.kd_nm_s_per_rad
        assert kp.shape == low.shape and np.all(np.isfinite(kp)) and np.all(np.isfinite(kd))
        kd_max = max(profile.joints.kd_nm_s_per_rad)
        if profile.legged is not None:
            kd_max = max(kd_max, profile.legged.damping_kd_nm_s_per_rad)
        assert np.all((kp >= 0) & (kp <= np.asarray(profile.joints.kp_nm_per_rad)))  # P6
        assert np.all((kd >= 0) & (kd <= kd_max))
    if cmd.mode is CommandMode.STOP:
        if profile.quadrotor is not None:
            assert not v.any(), cmd
        else:
            assert not cmd.kp_nm_per_rad.any() and not cmd.kd_nm_s_per_rad.any()
            assert np.all((v >= low) & (v <= high)), cmd
        return
    assert np.all((v >= low) & (v <= high)), cmd  # P3
    if prev is None or prev.mode is CommandMode.STOP:
        assert cmd.state is SafetyState.ARMING, (prev, cmd)  # P5
        return
    dt = max(now - prev_now, 0.0) if math.isfinite(now) and math.isfinite(prev_now) else 0.0
    allowed = rate * dt + 1e-9 * (1.0 + np.abs(v))
    assert np.all(np.abs(v - prev.values) <= allowed), (prev, cmd, dt)  # P4


@st.composite
def events(draw, size: int):
    kind = draw(
        st.sampled_from(
            ["tick"] * 6 + ["state"] * 4 + ["heartbeat"] * 2 + ["arm", "disarm", "estop", "reset", "spoof", "fault"]
        )
    )
    if kind == "spoof":
        jump = draw(st.one_of(st.floats(-1000.0, 1000.0, allow_nan=False), st.sampled_from([0.05, 0.5, 1e6])))
        return ("spoof", jump, draw(st.booleans()))
    if kind == "fault":
        return ("fault", draw(st.sampled_from(["writers.pose", "writers.command"])), draw(st.booleans()))
    if kind == "tick":
        dt = draw(st.one_of(st.just(None), st.floats(-0.2, 0.6, allow_nan=False), st.sampled_from([math.nan, 1e9])))
        action = draw(
            st.one_of(
                st.just("nominal"),
                st.just(None),
                st.lists(SCALE, min_size=size, max_size=size),
                st.lists(st.one_of(SCALE, WILD), min_size=size, max_size=size),
                st.lists(SCALE, min_size=1, max_size=size + 2),
            )
        )
        inference = draw(st.one_of(st.just(0.001), st.floats(-1.0, 1.0, allow_nan=False), WILD))
        return ("tick", dt, action, inference)
    if kind == "state":
        age = draw(st.one_of(st.just(0.0), st.floats(-1.0, 2.0, allow_nan=False), WILD))
        faults = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "position_m",
                        "quat_wxyz",
                        "joint_pos_rad",
                        "joint_vel_rad_s",
                        "battery_fraction",
                        "observation",
                        "estop_pressed",
                    ]
                ),
                st.one_of(SCALE, WILD),
                max_size=2,
            )
        )
        return ("state", age, faults)
    return (kind,)


def apply_fault(sample, faults: dict):
    changes = {}
    for name, value in faults.items():
        current = getattr(sample, name)
        if name == "estop_pressed":
            changes[name] = value != 0.0
        elif name == "battery_fraction" or current is None:
            changes[name] = value
        else:
            arr = np.array(current, dtype=float)
            arr[0] = value if not math.isfinite(value) or abs(value) > 10 else arr[0] + value
            changes[name] = arr
    return replace(sample, **changes)


def spoofed(profile, stamp: float, jump: float, attitude: bool):
    """A sample whose position (quadrotor) or joint positions jump by ``jump`` (m or rad) with no velocity to
    explain it; ``attitude``: the quaternion jumps by min(|jump|, pi) rad with the gyro at zero."""
    sample = healthy_sample(profile, stamp)
    if attitude:
        return replace(sample, quat_wxyz=tilted_quat(min(abs(jump), math.pi)), body_rates_rad_s=np.zeros(3))
    if profile.quadrotor is not None:
        return replace(sample, position_m=sample.position_m + np.array([jump, 0.0, 0.0]))
    return replace(sample, joint_pos_rad=sample.joint_pos_rad + jump)


def run_sequence(profile, seq) -> list:
    layer = SafetyLayer(profile)
    period = profile.common.control_period_s
    size = profile.command_size
    now, prev, prev_now = 0.0, None, 0.0
    nominal = nominal_action(profile)
    latched = False  # P7: an e-stop was requested and not reset
    since_reset = {"heartbeat": True, "state": True}  # P8
    for ev in seq:
        if ev[0] == "tick":
            _, dt, action, inference = ev
            now = now + (period if dt is None else dt)
            if action == "nominal":
                action = nominal
            elif action is not None:
                action = np.asarray(action, dtype=float)  # a wrong size passes through: the layer must cope
                if len(action) == size:
                    action = nominal + action * (profile.command_high() - profile.command_low()) / 4
            cmd = layer.filter(action, now, inference)
            check_command(profile, prev, prev_now, cmd, now)
            if latched:
                assert cmd.state is SafetyState.ESTOP and cmd.mode is CommandMode.STOP, cmd  # P7
            prev, prev_now = cmd, now
            if not math.isfinite(now):
                now = prev_now = layer._last_now  # the layer keeps its own finite time
        elif ev[0] == "state":
            _, age, faults = ev
            sample = apply_fault(healthy_sample(profile, now - age), faults)
            latched = latched or bool(sample.estop_pressed)
            since_reset["state"] |= layer.on_state(sample, now)
        elif ev[0] == "spoof":
            since_reset["state"] |= layer.on_state(spoofed(profile, now, ev[1], ev[2]), now)
        elif ev[0] == "fault":
            _, name, clear = ev
            if clear:
                layer.clear_input_fault(name)
            else:
                layer.input_fault(now, name, "a second writer", position_suspect=name != "writers.command")
        elif ev[0] == "heartbeat":
            before = layer.last_heartbeat_s
            layer.heartbeat(now)
            since_reset["heartbeat"] |= layer.last_heartbeat_s is not None and layer.last_heartbeat_s != before
        elif ev[0] == "arm":
            state = layer.state
            armed = layer.arm(now)
            if armed:  # P8
                assert state is SafetyState.DISARMED and not latched and not layer.input_faults
                assert since_reset["heartbeat"] and since_reset["state"]
        elif ev[0] == "disarm":
            layer.disarm(now)
            assert not latched or layer.state is SafetyState.ESTOP  # P7
        elif ev[0] == "reset":
            state = layer.state
            if layer.reset(now):  # P8
                assert state is SafetyState.ESTOP and layer.state is SafetyState.DISARMED
                latched = False
                since_reset = {"heartbeat": False, "state": False}
            else:
                assert layer.state is state
        else:
            layer.estop(now)
            latched = True
            assert layer.state is SafetyState.ESTOP  # P7
    return layer.transitions


def fast(profile):
    """Arming window of one period, so short random sequences reach ACTIVE and FALLBACK."""
    return with_common(profile, arming_duration_s=profile.common.control_period_s)


PROFILES = {"quadrotor": fast(crazyflie_profile()), "legged": fast(a1_profile()), "arm": fast(franka_profile())}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sequences(profile):
    return st.lists(events(profile.command_size), min_size=1, max_size=80)


@SETTINGS
@given(seq=sequences(PROFILES["quadrotor"]))
def test_property_quadrotor(seq):
    run_sequence(PROFILES["quadrotor"], seq)


@SETTINGS
@given(seq=sequences(PROFILES["legged"]))
def test_property_legged(seq):
    run_sequence(PROFILES["legged"], seq)


@SETTINGS
@given(seq=sequences(PROFILES["arm"]))
def test_property_arm(seq):
    run_sequence(PROFILES["arm"], seq)


def test_random_sequences_reach_every_state():
    """The property tests are not vacuous: seeded random sequences of the same kind visit every state and
    the property is checked on all of them."""
    rng = np.random.default_rng(1)
    for profile in PROFILES.values():
        seen_states = set()
        for _ in range(40):
            seq = [("heartbeat",), ("state", 0.0, {}), ("arm",)]
            for _ in range(60):
                r = rng.random()
                if r < 0.5:
                    seq += [("heartbeat",), ("state", 0.0, {} if rng.random() < 0.9 else {"position_m": 1e300})]
                    seq.append(("tick", None, "nominal" if rng.random() < 0.95 else None, 0.001))
                elif r < 0.9:
                    seq.append(
                        ("tick", float(rng.uniform(0, 0.05)), list(rng.uniform(-3, 3, profile.command_size)), 0.001)
                    )
                else:
                    seq.append([("arm",), ("disarm",), ("estop",), ("tick", 0.6, "nominal", 0.001)][rng.integers(4)])
            transitions = run_sequence(profile, seq)
            seen_states |= {tr.to_state for tr in transitions}
        assert {SafetyState.ARMING, SafetyState.ACTIVE, SafetyState.FALLBACK, SafetyState.ESTOP} <= seen_states
