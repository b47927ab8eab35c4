"""What the deploy runtime (deploy/runtime/core.py) needs from a policy and from the per-class adapter
(quadrotor: deploy/runtime/quadrotor.py; legged and arm: deploy/runtime/articulated.py). Torch-free.

The adapter's contract, in the manner of rsl_rl's ``VecEnv``:

    adapter.inputs                     {topic key: Subscription} of every state topic it reads; the first one is
                                       the primary stream (the runtime waits for its publisher)
    adapter.read() -> Reading | None   the newest state (None until every needed stream has delivered); never
                                       blocks; a malformed message is logged and ignored (the state goes stale)
    adapter.idle()                     called every cycle the layer is not ARMING/ACTIVE (stateful terms reset)
    adapter.act(reading, now, t, active)  -> Act: the command (command units) for this cycle; ``now`` is the
                                       cycle's monotonic time (s: a streamed reference advances on it, the clock
                                       of the cycle's stamps and log times), ``t`` the plan time (s since ACTIVE,
                                       None while ARMING)
    adapter.command_message(cmd, stamp_ns, vehicle_id)   the command message of the safety layer's SafeCommand
    adapter.at_rest(reading, cmd)      the robot has landed / stands still / is at rest (the plan's end may disarm)
    adapter.arm_refusal(reading)       why the plan may not start from this state ('' if it may; reading may be
                                       None: a malformed stream says why here)
    adapter.plan                       has ``duration_s``
    adapter.fallback_hold_s            None: the layer's fallback ends by itself (quadrotor: lands, disarms);
                                       else the runtime disarms after that many seconds of FALLBACK
    adapter.summary() -> dict          tracking numbers of the run
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from deploy.safety import SafeCommand, StateSample
from drivers.robot import RobotState
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec


class Policy(Protocol):
    obs_spec: ObsSpec
    action_spec: ActionSpec
    control_hz: float

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


@dataclass
class Reading:
    """One measured state: the robot state, its safety-layer sample, and the messages it came from (each
    recorded once)."""

    state: RobotState
    sample: StateSample
    messages: tuple
    torque_nm: np.ndarray | None = None


@dataclass
class Act:
    """What the adapter decided this cycle. action: (A,) command units or None (the layer holds / falls back);
    obs: the policy's observation when it ran; normalized: the policy's normalized action (logged);
    inference: seconds spent in the policy; phase: the plan phase, for logs; fault: why the robot must hand over
    to the fallback ('' if it need not), e.g. a reference stream that was lost; reference: (3,) world m the policy
    tracks this cycle (recorded as policy/reference and /tf world -> reference), None when there is none;
    excitation: (A,) normalized input added to the command for system identification (deploy.runtime.excitation,
    recorded as policy/excitation), None when there is none."""

    action: np.ndarray | None
    obs: np.ndarray | None = None
    normalized: np.ndarray | None = None
    inference: float | None = None
    phase: str = ""
    fault: str = ""
    reference: np.ndarray | None = None
    excitation: np.ndarray | None = None


class RobotAdapter(Protocol):
    inputs: dict[str, Any]
    plan: Any
    fallback_hold_s: float | None

    def read(self) -> Reading | None: ...

    def idle(self) -> None: ...

    def act(self, reading: Reading, now: float, t: float | None, active: bool) -> Act: ...

    def command_message(self, command: SafeCommand, stamp_ns: int, vehicle_id: str) -> Any: ...

    def at_rest(self, reading: Reading | None, command: SafeCommand) -> bool: ...

    def arm_refusal(self, reading: Reading | None) -> str: ...

    def summary(self) -> dict: ...
