"""The deploy runtime: one control cycle for every robot class, behind the safety layer. Torch-free.

    newest state -> safety.on_state -> observation -> policy -> safety.filter -> command on the wire -> log

The per-class part is a :class:`~deploy.runtime.contract.RobotAdapter` (its contract: deploy/runtime/contract.py).

The seam to the robot is the topic table (docs/transport.md): a robot, simulated or real, is whatever
publishes the state topics and obeys the command topic. Bridges to vendor protocols are processes that speak
that table on one side and the vendor's protocol on the other.

What the runtime guarantees, whatever the adapter (docs/safety.md, "The runtime"):

- The operator is in the loop: with an :class:`~deploy.operator.OperatorLink` the heartbeat, arm, disarm,
  reset, land and e-stop come from the operator's process. An e-stop from any writer latches ESTOP at the next
  cycle. Without a link (``operator=None``, Python API only: tests and simulation) the runtime heartbeats for
  itself and arms by itself, and says so at WARNING.
- Inputs are trusted only from one writer: before arming, a second writer on any state topic, or another
  commander on the command topic, refuses arming; the writers it arms with are pinned (samples of any other
  writer are dropped), and a writer appearing in flight is an input fault (FALLBACK).
- The plan never overrides safety: its end disarms only when the adapter reports the robot at rest; a plan
  that ends without rest within ``settle_s`` hands over to the fallback.
- Every way out is safe: an exception in the policy or the observation -> FALLBACK and the flight goes on; a
  recorder failure is reported and control goes on; SIGINT/SIGTERM -> the operator's land (FALLBACK), a
  second signal -> ESTOP; whatever ends the loop, a stop command is the last command sent.
"""

from __future__ import annotations

import logging
import math
import signal
import time

import numpy as np

from deploy.loop import FixedRateLoop, LoopStats
from deploy.runtime.clock import ros_stamp_ns
from deploy.runtime.contract import Act, Policy, Reading, RobotAdapter
from deploy.runtime.run_log import RunLog
from deploy.runtime.signals import install_signal_handler, restore_signal_handlers
from deploy.safety import CommandMode, SafeCommand, SafetyLayer, SafetyState
from deploy.transport import Ros2Node, TransportConfig
from drivers.vehicle import default_vehicle_id

log = logging.getLogger("sim2real.runtime")

RUNNING = (SafetyState.ARMING, SafetyState.ACTIVE)


class Runtime:
    """Wires a policy to a robot over ROS 2 topics behind the safety layer; :meth:`cycle` is one control period,
    :meth:`run` arms, runs the plan at the policy rate and ends safely.

    vehicle_id: carried in every command (the robot rejects commands for another vehicle); operator: an
    ``OperatorLink`` (None: self-operated, for tests and simulation); settle_s: how long after the plan's end
    the robot may take to come to rest before the fallback takes over."""

    def __init__(
        self,
        adapter: RobotAdapter,
        policy: Policy,
        node: Ros2Node,
        transport: TransportConfig,
        safety: SafetyLayer,
        recorder=None,
        *,
        operator=None,
        vehicle_id: str = "",
        realtime_priority: int | None = None,
        settle_s: float = 5.0,
    ):
        self.adapter, self.policy, self.safety, self.recorder = adapter, policy, safety, recorder
        self.node, self.transport = node, transport
        self.operator = operator
        self.vehicle_id = vehicle_id or default_vehicle_id(transport.namespace)
        self.realtime_priority, self.settle_s = realtime_priority, settle_s
        cmd = transport.topic(self.command_key)
        self.command_topic = cmd
        # The command writer exists from the first arming on: a runtime that never arms is invisible to the
        # robot and to another runtime already flying it (which would see a second commander and fall back).
        self.command_pub = None
        self.command_watch = node.subscription(cmd.name, cmd.msg_type, cmd.qos)  # other commanders, by discovery
        self.plan_start_s: float | None = None
        self.phase = "disarmed"
        self.loop_error: str | None = None
        self.end_reason = ""
        self.run_log = RunLog(recorder)
        self._stop_requests = 0
        self._arm_requested = operator is None
        self._last_reading: Reading | None = None
        self._pinned = False
        self._faults: dict[str, str] = {}
        self._arm_wait = ""  # the last reason arming waited, logged once per reason
        if operator is None:
            log.warning("no operator link: this runtime heartbeats and arms by itself (tests and simulation only)")

    @property
    def command_key(self) -> str:
        return getattr(self.adapter, "command_key", "motor_command")

    # ------------------------------------------------------------------ inputs
    def _operator(self, now: float) -> None:
        if self.operator is None:
            self.safety.heartbeat(now)
            return
        inputs = self.operator.poll(now)
        if inputs.heartbeat_s is not None:
            self.safety.heartbeat(inputs.heartbeat_s)
        if inputs.estop:
            self.safety.estop(now, "operator e-stop (safety/estop)")
        for command in inputs.commands:
            self._operator_command(command, now)

    def _operator_command(self, command: str, now: float) -> None:
        log.info("operator: %s", command)
        if command == "arm":
            self._arm_requested = True
        elif command == "disarm":
            self._arm_requested = False
            if self.safety.state is SafetyState.ACTIVE and not self.adapter_at_rest():
                self.safety.request_fallback(now, "operator disarm in flight: land first", "operator.disarm")
            else:
                self.safety.disarm(now, "operator disarm")
        elif command == "reset":
            self.safety.reset(now)
        elif command == "land":
            if self.safety.state is SafetyState.ACTIVE:
                self.safety.request_fallback(now, "operator land", "operator.land")
            elif self.safety.state is SafetyState.ARMING:
                self.safety.disarm(now, "operator land while arming")
        else:
            log.warning("operator command %r ignored: expected arm, disarm, reset or land", command)

    def adapter_at_rest(self) -> bool:
        return self.adapter.at_rest(self._last_reading, self.safety.last_command)

    def _writers(self, now: float) -> None:
        """Second writers on the state topics and other commanders on the command topic."""
        from deploy.transport import foreign_writers

        faults: dict[str, str] = {}
        for key, sub in self.adapter.inputs.items():
            writers = sub.writers()
            if len(writers) > 1:
                names = ", ".join(str(w) for w in writers)
                faults[f"writers.{key}"] = f"{len(writers)} writers publish {sub.topic}: {names}"
        others = foreign_writers(self.command_watch)
        if others:
            faults["writers.command"] = (
                f"another commander publishes {self.command_watch.topic}: {', '.join(str(w) for w in others)}"
            )
        for name, reason in faults.items():
            if self._faults.get(name) != reason:
                pinned = self._pinned and name != "writers.command"
                self.safety.input_fault(now, name, reason, position_suspect=not pinned)
        for name in set(self._faults) - set(faults):
            self.safety.clear_input_fault(name)
        self._faults = faults

    def _pinned_subs(self) -> list:
        """The state inputs, and the heartbeat of the operator who armed (another operator's heartbeat must not
        keep a robot alive whose operator is gone). Commands and e-stops are heard from everyone."""
        subs = list(self.adapter.inputs.values())
        heartbeat = getattr(self.operator, "heartbeat_sub", None)
        return subs if heartbeat is None else [*subs, heartbeat]

    def _pin(self) -> None:
        for sub in self._pinned_subs():
            sub.pin_current()
        self._pinned = True

    def _unpin(self) -> None:
        if self._pinned:
            for sub in self._pinned_subs():
                sub.unpin()
            self._pinned = False

    # ------------------------------------------------------------------ the cycle
    def cycle(self, now: float) -> float | None:
        """One control period. Returns the inference time (s) when the policy ran."""
        self._operator(now)
        self._writers(now)
        reading = self.adapter.read()
        if reading is not None:
            self.safety.on_state(reading.sample, now)
            self._last_reading = reading
        act = Act(None)
        running = self.safety.state in RUNNING
        if not running:
            self.adapter.idle()
            self.phase = self.safety.state.value
        elif reading is not None:
            active = self.safety.state is SafetyState.ACTIVE
            if active and self.plan_start_s is None:
                self.plan_start_s = now
            t = None if self.plan_start_s is None else now - self.plan_start_s
            try:
                act = self.adapter.act(reading, now, t, active)
                self.phase = act.phase
                if act.fault and self.safety.state is SafetyState.ACTIVE:
                    self.safety.request_fallback(now, act.fault, "runtime.reference")
            except Exception as exc:  # a spec error, a broken model, a bug: the fallback lands the robot
                self.loop_error = f"{type(exc).__name__}: {exc}"
                log.exception("the policy step failed; handing over to the fallback")
                self.safety.request_fallback(now, f"policy step failed: {self.loop_error}", "runtime.exception")
                act = Act(None)
        command = self.safety.filter(act.action, now, act.inference)
        stamp = ros_stamp_ns(now)
        msg = self.adapter.command_message(command, stamp, self.vehicle_id)
        if self.command_pub is not None:
            self.command_pub.publish(msg)
            self._record(reading, act, msg, stamp)
        else:
            self._record(reading, act, None, stamp)
        return act.inference

    def _record(self, reading: Reading | None, act: Act, msg, stamp: int) -> None:
        self.run_log.cycle(reading, act, msg, stamp, self.safety.transitions)

    # ------------------------------------------------------------------ a run
    def _can_arm(self, now: float) -> str:
        """Why arming must wait ('' when it may be tried)."""
        if not self._arm_requested:
            return "waiting for the operator's arm command"
        if self._faults:
            return "; ".join(self._faults.values())
        why = self.adapter.arm_refusal(self._last_reading)
        if why:
            return why
        return "no state from the robot" if self._last_reading is None else ""

    def _try_arm(self, now: float) -> bool:
        why = self._can_arm(now)
        if not why and self.safety.arm(now):
            self.plan_start_s = None
            self._pin()
            if self.command_pub is None:
                cmd = self.command_topic
                self.command_pub = self.node.publisher(cmd.name, cmd.msg_type, cmd.qos)
            return True
        if why and why != self._arm_wait:
            log.info("not arming: %s", why)
        self._arm_wait = why
        return False

    def wait_and_arm(self, timeout_s: float = 5.0) -> None:
        """Cycle at the policy rate until the layer arms; RuntimeError with the reason after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            self.cycle(now)
            if self._try_arm(now):
                return
            if now > deadline:
                raise RuntimeError(
                    f"could not arm within {timeout_s} s: {self._can_arm(now) or self.safety.last_verdicts}"
                )
            time.sleep(1.0 / self.policy.control_hz)

    def run(self, timeout_s: float = 5.0) -> LoopStats:
        """Arm within ``timeout_s`` of the first request, run the plan at the policy rate, end safely. Raises
        RuntimeError when it cannot arm (the robot was never commanded anything but a stop)."""
        loop = FixedRateLoop(self.policy.control_hz, realtime_priority=self.realtime_priority)
        state = {"end": math.inf, "armed": False, "arm_deadline": None, "fb": None, "why": ""}
        previous = install_signal_handler(self._signal)
        try:
            stats = loop.run(lambda now: self._step(now, state, timeout_s), duration_s=self._duration(timeout_s))
        except BaseException as exc:
            self.loop_error = self.loop_error or f"{type(exc).__name__}: {exc}"
            log.error("the control loop ended by %s; sending a stop command", self.loop_error)
            raise
        finally:
            restore_signal_handlers(previous)
            self._final_stop()
        if not state["armed"]:
            raise RuntimeError(f"could not arm within {timeout_s} s: {state['why']}")
        return stats

    def _duration(self, timeout_s: float) -> float:
        hold = self.adapter.fallback_hold_s or 0.0
        fallback = self.safety.profile.fallback_max_s
        return timeout_s + self.plan_duration + self.settle_s + hold + fallback + 10.0

    @property
    def plan_duration(self) -> float:
        return float(self.adapter.plan.duration_s)

    def _step(self, now: float, st: dict, timeout_s: float):
        if self._stop_requests:
            self._on_stop_request(now)
        if not st["armed"]:
            inference = self.cycle(now)
            if self._arm_requested and st["arm_deadline"] is None:
                st["arm_deadline"] = now + timeout_s
            if self.safety.state is SafetyState.ESTOP or self._stop_requests:
                st["why"] = "e-stop" if self.safety.state is SafetyState.ESTOP else "stop requested"
                self.end_reason = f"not armed: {st['why']}"
                return False
            if self._try_arm(now):
                st["armed"] = True
            elif st["arm_deadline"] is not None and now > st["arm_deadline"]:
                st["why"] = self._can_arm(now) or str(self.safety.last_verdicts)
                self.end_reason = f"not armed: {st['why']}"
                return False
            return inference
        inference = self.cycle(now)
        s = self.safety.state
        if st["end"] == math.inf:
            if s is SafetyState.ACTIVE and self.plan_start_s is not None:
                t = now - self.plan_start_s
                if t > self.plan_duration:
                    if self.adapter_at_rest():
                        self.safety.disarm(now, "plan complete, robot at rest")
                        self.end_reason = "plan complete"
                    elif t > self.plan_duration + self.settle_s:
                        self.safety.request_fallback(
                            now, f"plan complete but not at rest within {self.settle_s} s", "runtime.plan"
                        )
            elif s is SafetyState.FALLBACK and self.adapter.fallback_hold_s is not None and st["fb"] is None:
                st["fb"] = now + self.adapter.fallback_hold_s
            if s is SafetyState.FALLBACK and st.get("fb") is not None and now > st["fb"]:
                self.safety.disarm(now, f"fallback held {self.adapter.fallback_hold_s} s")
            if self.safety.state in (SafetyState.DISARMED, SafetyState.ESTOP):
                self.end_reason = self.end_reason or self.safety.transitions[-1].reason
                st["end"] = now + 0.2  # a few stop commands go out before the loop ends
        elif now > st["end"]:
            return False
        return inference

    # ------------------------------------------------------------------ leaving safely
    def request_stop(self) -> None:
        """Ask the run to end safely (what SIGINT/SIGTERM do): land first; a second request e-stops."""
        self._stop_requests += 1

    def _on_stop_request(self, now: float) -> None:
        if self._stop_requests >= 2:
            if self.safety.state is not SafetyState.ESTOP:
                self.safety.estop(now, "second stop request (signal)")
        elif self.safety.state is SafetyState.ACTIVE:
            self.safety.request_fallback(now, "stop requested (signal): landing", "runtime.signal")
        elif self.safety.state is SafetyState.ARMING:
            self.safety.disarm(now, "stop requested (signal) while arming")

    def _signal(self, signum: int) -> None:
        log.warning("%s received: %s", signal.Signals(signum).name, "landing" if not self._stop_requests else "e-stop")
        self.request_stop()

    def _final_stop(self) -> None:
        """Whatever ended the loop: the last command on the wire is a stop, and the log says why."""
        now = time.monotonic()
        if self.command_pub is None:  # never armed: nothing was ever commanded
            self._unpin()
            self._record_end(ros_stamp_ns(now))
            return
        try:
            if self.safety.state in RUNNING or self.safety.state is SafetyState.FALLBACK:
                self.safety.estop(now, f"the control loop ended ({self.loop_error or 'unexpectedly'})")
            command = self.safety.filter(None, now, None)
            if command.mode is not CommandMode.STOP:  # cannot happen after an e-stop; never send anything else
                command = SafeCommand(np.zeros_like(command.values), CommandMode.STOP, self.safety.state, now, "end")
            stamp = ros_stamp_ns(now)
            msg = self.adapter.command_message(command, stamp, self.vehicle_id)
            for _ in range(3):
                self.command_pub.publish(msg)
            self._record(self._last_reading, Act(None), msg, stamp)
            self._record_end(stamp)
        except Exception:
            log.exception("could not send the final stop command; the robot's own command timeout must stop it")
        self._unpin()

    def _record_end(self, stamp: int) -> None:
        """The log says why the run ended (topic ``status``), and what went wrong on the way."""
        why = self.end_reason or (self.safety.transitions[-1].reason if self.safety.transitions else "never armed")
        self.run_log.end(f"run ended: {why}" + (f"; loop error: {self.loop_error}" if self.loop_error else ""), stamp)

    @property
    def recorder_error(self) -> str | None:
        """Why the flight recorder stopped (None while it writes, or without one)."""
        return self.run_log.error

    def summary(self) -> dict:
        out = {"tracking": self.adapter.summary(), "end": self.end_reason}
        if self.recorder_error is not None:
            out["recorder_error"] = self.recorder_error
        if self.loop_error is not None:
            out["loop_error"] = self.loop_error
        return out
