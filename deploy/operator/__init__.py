"""``sim2real operator``: the human operator in the loop of the deploy runtime, as a separate process.

It publishes on the robot's namespace (topic keys of deploy/transport/topics.py, docs/operator.md):

- ``operator_heartbeat`` (``operator/heartbeat``, std_msgs/Header, sensor_data) at ``--rate`` Hz (20): stamp = the
  operator's wall clock, frame_id = the operator id (``user@host:pid``). The runtime's dead-man check falls back
  when heartbeats stop arriving (``max_heartbeat_age_s``, 0.5 s by default);
- ``operator_command`` (``operator/command``, std_msgs/String, default = RELIABLE): ``arm|disarm|reset|land``;
- ``estop`` (``safety/estop``, std_msgs/Bool, RELIABLE): a burst of 5 ``true`` over 50 ms when pressed, then ``true``
  again at the heartbeat rate while the e-stop is held. The operator releases it only with ``reset``.

Heartbeat QoS, sensor_data (BEST_EFFORT): a heartbeat says "the operator is alive *now*"; a retransmitted old one
is worth nothing, and a RELIABLE writer may block (up to 0.1 s) or queue stale samples when the link is bad. A lossy
link then shows as missing heartbeats, and the runtime falls back, which is what a lossy operator link should cause.

Inputs: the keyboard (single keys, terminal in cbreak mode, restored on exit), a gamepad (pygame, optional), or a
script (``--script "arm@1,land@8"``) for software-in-the-loop and tests. The runtime side reads all three topics
with :class:`OperatorLink`. Torch-free: imports deploy.msgs, deploy.transport, the standard library and yaml.

Modules: link.py (:class:`OperatorLink`, the runtime's side), inputs.py (keyboard, gamepad, script), cli.py
(:class:`Operator`, the publisher, and the command line).
"""

from __future__ import annotations

from deploy.operator.cli import (
    ESTOP_BURST,
    ESTOP_BURST_SPACING_S,
    Operator,
    add_arguments,
    default_operator_id,
    main,
    run,
    transport_config,
)
from deploy.operator.inputs import (
    ACTIONS,
    GAMEPAD_MAP,
    KEYS,
    SCRIPT_ACTIONS,
    GamepadMapper,
    GamepadSource,
    KeyboardSource,
    OperatorError,
    ScriptSource,
    cbreak,
    open_pygame_joystick,
    parse_gamepad_map,
    parse_script,
)
from deploy.operator.link import COMMANDS, OperatorInputs, OperatorLink, log

__all__ = [
    "ACTIONS",
    "COMMANDS",
    "ESTOP_BURST",
    "ESTOP_BURST_SPACING_S",
    "GAMEPAD_MAP",
    "KEYS",
    "SCRIPT_ACTIONS",
    "GamepadMapper",
    "GamepadSource",
    "KeyboardSource",
    "Operator",
    "OperatorError",
    "OperatorInputs",
    "OperatorLink",
    "ScriptSource",
    "add_arguments",
    "cbreak",
    "default_operator_id",
    "log",
    "main",
    "open_pygame_joystick",
    "parse_gamepad_map",
    "parse_script",
    "run",
    "transport_config",
]
