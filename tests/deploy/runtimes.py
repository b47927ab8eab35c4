"""The deploy runtime as the tests build it: one Runtime with the adapter of the robot class, self-operated
(operator=None: the Python API's mode for tests and simulation; `sim2real deploy` always has an operator)."""

from __future__ import annotations

import numpy as np

from deploy.runtime import QuadrotorAdapter, Runtime
from deploy.runtime.articulated import ArticulatedAdapter


def quadrotor_runtime(
    policy, node, transport, safety, recorder=None, plan=None, state_input="pose_twist", **kwargs
) -> Runtime:
    return Runtime(
        QuadrotorAdapter(policy, node, transport, plan, safety.profile.quadrotor, state_input=state_input),
        policy,
        node,
        transport,
        safety,
        recorder,
        **kwargs,
    )


def articulated_runtime(
    policy, node, transport, safety, default_pose, robot_class, recorder=None, plan=None, **kwargs
) -> Runtime:
    names = tuple(safety.profile.joints.names)
    adapter = ArticulatedAdapter(policy, node, transport, names, np.asarray(default_pose), robot_class, plan)
    return Runtime(adapter, policy, node, transport, safety, recorder, **kwargs)
