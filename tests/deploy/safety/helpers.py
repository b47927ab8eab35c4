"""Shared scaffolding for the safety tests: healthy states per robot class and a fixed-period driver."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from deploy.safety import SafeCommand, SafetyLayer, SafetyProfile, SafetyState, StateSample
from deploy.safety.limits import RobotClass

LEVEL = np.array([1.0, 0.0, 0.0, 0.0])


def tilted_quat(angle_rad: float, axis=(1.0, 0.0, 0.0)) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    return np.array([math.cos(angle_rad / 2), *(math.sin(angle_rad / 2) * axis)])


def hover_rpm(profile: SafetyProfile) -> float:
    body = profile.quadrotor.body
    return math.sqrt(body.mass_kg * 9.81 / (4 * body.kf_n_per_rpm2))


def healthy_sample(profile: SafetyProfile, stamp_s: float) -> StateSample:
    if profile.robot_class is RobotClass.QUADROTOR:
        return StateSample(
            stamp_s,
            position_m=np.array([0.0, 0.0, 1.0]),
            velocity_m_s=np.zeros(3),
            quat_wxyz=LEVEL.copy(),
            body_rates_rad_s=np.zeros(3),
            battery_fraction=0.9,
            observation=np.zeros(18),
        )
    n = profile.command_size
    return StateSample(
        stamp_s,
        quat_wxyz=LEVEL.copy(),
        body_rates_rad_s=np.zeros(3),
        joint_pos_rad=nominal_action(profile),
        joint_vel_rad_s=np.zeros(n),
        joint_torque_nm=np.zeros(n),
        observation=np.zeros(3 * n),
        battery_fraction=0.9,
    )


def nominal_action(profile: SafetyProfile) -> np.ndarray:
    if profile.robot_class is RobotClass.QUADROTOR:
        return np.full(4, hover_rpm(profile))
    return (profile.command_low() + profile.command_high()) / 2.0


@dataclass
class Driver:
    """Runs the layer at the profile's control period. Each hook can be replaced to inject a fault."""

    profile: SafetyProfile
    layer: SafetyLayer = None
    t: float = 0.0
    heartbeat_on: bool = True
    sample_fn: Callable[[float], StateSample | None] = None
    action_fn: Callable[[float], np.ndarray | None] = None
    inference_s: float = 0.001
    log: list[tuple[float, SafeCommand]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layer = self.layer or SafetyLayer(self.profile)
        self.sample_fn = self.sample_fn or (lambda t: healthy_sample(self.profile, t))
        self.action_fn = self.action_fn or (lambda t: nominal_action(self.profile))

    @property
    def period(self) -> float:
        return self.profile.common.control_period_s

    def feed(self) -> None:
        if self.heartbeat_on:
            self.layer.heartbeat(self.t)
        sample = self.sample_fn(self.t)
        if sample is not None:
            self.layer.on_state(sample, self.t)

    def step(self) -> SafeCommand:
        self.t = round(self.t + self.period, 9)
        self.feed()
        cmd = self.layer.filter(self.action_fn(self.t), self.t, self.inference_s)
        self.log.append((self.t, cmd))
        return cmd

    def run(self, duration_s: float) -> list[tuple[float, SafeCommand]]:
        start = len(self.log)
        for _ in range(round(duration_s / self.period)):
            self.step()
        return self.log[start:]

    def to_active(self) -> None:
        self.feed()
        assert self.layer.arm(self.t), "healthy robot failed to arm"
        for _ in range(1000):
            self.step()
            if self.layer.state is SafetyState.ACTIVE:
                self.run(0.1)
                return
        raise AssertionError(f"never reached ACTIVE: {self.layer.transitions}")


def with_common(profile: SafetyProfile, **changes) -> SafetyProfile:
    return replace(profile, common=replace(profile.common, **changes))


def loose_gate(profile: SafetyProfile) -> SafetyProfile:
    """The consistency gate opened wide: for tests that teleport the state to inject another check's fault."""
    profile = with_common(profile, attitude_jump_rad=math.pi)
    if profile.quadrotor is not None:
        q = profile.quadrotor
        consistency = replace(q.consistency, position_jump_m=1e6, velocity_jump_m_s=1e6)
        return replace(profile, quadrotor=replace(q, consistency=consistency))
    return replace(profile, joints=replace(profile.joints, position_jump_rad=1e6))
