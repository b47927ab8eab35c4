"""What the runtime writes to the flight log each cycle, and how it survives a failing recorder. Torch-free.

Every state message once (in every safety state), the reference, observation, action and excitation of a cycle
that ran the policy, the command sent, and the safety transitions since the last cycle; at the end, why the run
ended (topic ``status``). A recorder error (a full disk, the writer process gone) is kept in :attr:`RunLog.error`
and logged once; control goes on without a log (docs/runtime.md, "Every way out is safe").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from deploy.msgs import String
from deploy.recording import RecorderError
from deploy.runtime.clock import ros_minus_monotonic_ns
from deploy.runtime.contract import Act, Reading

log = logging.getLogger("sim2real.runtime")


class RunLog:
    """The runtime's writes to ``recorder`` (None: no log)."""

    def __init__(self, recorder: Any = None):
        self.recorder = recorder
        self.error: str | None = None
        self._transitions = 0  # safety transitions written so far
        self._recorded: dict[type, object] = {}  # the last state message written, per type

    @property
    def writing(self) -> bool:
        return self.recorder is not None and self.error is None

    def cycle(self, reading: Reading | None, act: Act, msg: Any, stamp: int, transitions: Sequence[Any]) -> None:
        if not self.writing:
            return
        rec = self.recorder
        try:
            if reading is not None:
                for m in reading.messages:  # each state message once, in every safety state
                    if m is not self._recorded.get(type(m)):
                        rec.write_state(m, stamp)
                        self._recorded[type(m)] = m
            if act.reference is not None:
                rec.write_reference(act.reference, stamp)
            if act.obs is not None:
                rec.write_observation(act.obs.tolist(), stamp)
            if act.normalized is not None:
                rec.write_action(act.normalized.tolist(), stamp)
            if act.excitation is not None:
                rec.write_excitation(act.excitation.tolist(), stamp)
            if msg is not None:
                rec.write_command(msg, stamp)
            self._transitions = rec.write_safety_transitions(transitions, self._transitions, ros_minus_monotonic_ns())
        except (RecorderError, OSError) as exc:  # a full disk must not end the flight
            self.error = str(exc)
            log.error("the flight recorder failed; control goes on without a log: %s", exc)

    def end(self, text: str, stamp: int) -> None:
        """The log says why the run ended (topic ``status``)."""
        if not self.writing:
            return
        try:
            self.recorder.write_key("status", String(text), stamp)
        except (RecorderError, OSError) as exc:
            self.error = str(exc)
