"""sim2real: the one command-line entry point, a thin dispatcher into the packages.

Each sub-command lives in a module exposing ``add_arguments(parser)`` and ``run(args) -> int``; it is
imported only when used, so ``sim2real deploy`` on the robot computer never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "policies.demo",
        "the main job on the default CPU: fly the quadrotor baseline, write log, plots and report",
    ),
    "train": (
        "policies.train",
        "train a policy with rsl_rl PPO (asymmetric actor-critic) into runs/<task>/<timestamp>",
    ),
    "export": (
        "policies.export",
        "export a run's actor to policy.onnx (normalizer, action scaling, metadata) and policy.h",
    ),
    "eval": ("policies.evaluate", "evaluate a run or policy.onnx across the randomization beside the PID baseline"),
    "compare": (
        "policies.compare",
        "never worse: a retrained policy against the one it would replace, on the identified and default "
        "randomizations and the fitted vehicle",
    ),
    "deploy": ("deploy.cli", "fly an exported policy on a robot (or the simulated one, --sil) behind the safety layer"),
    "operator": (
        "deploy.operator",
        "the operator in the loop: heartbeat, arm/disarm/reset/land and e-stop from keyboard, gamepad or a script",
    ),
    "replay": (
        "deploy.replay.cli",
        "replay a logged run: policy on logged observations vs logged actions, re-simulation gap, report",
    ),
    "sysid": ("calibration.sysid.cli", "identify simulator parameters from a logged flight -> randomization spec"),
    "view": (
        "deploy.recording.view",
        "look at a deploy log: MuJoCo viewer, or one PNG (--png) of track, reference, charts",
    ),
    "calibrate": (
        "calibration.cli",
        "calibrate camera intrinsics, hand-eye, IMU noise/biases, thrust curves -> ROS/Kalibr YAML, robot profile, randomization spec",
    ),
}


#: Errors that mean "the input is wrong", each with a message saying what was expected and what to do: the
#: command line answers them with that one line and exit code 2, not a traceback. Looked up only in modules
#: already imported (an exception of a module never imported cannot be raised), so the deploy path stays torch-free.
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("sim.randomization", "RandomizationSpecError"),
    ("sim.obs_spec", "ObsSpecError"),
    ("sim.action_spec", "ActionSpecError"),
    ("sim.quadrotor.params", "ProfileError"),
    ("sim.articulated.profile", "ArticulatedProfileError"),
    ("sim.articulated.robots", "RobotModelError"),
    ("policies.actor", "CheckpointError"),
    ("policies.onnx_policy", "PolicyFileError"),
    ("sim.overrides", "OverrideError"),
    ("sim.robot_variants", "RobotVariantError"),
    ("policies.train_cfg", "TrainConfigError"),
    ("policies.evaluate", "EvalSettingsError"),
    ("policies.compare", "CompareError"),
    ("deploy.profile", "DeployProfileError"),
    ("deploy.safety.limits", "ProfileError"),
    ("deploy.transport.errors", "TransportError"),
    ("deploy.replay.errors", "ReplayError"),
    ("deploy.recording.reader", "LogFormatError"),
    ("deploy.recording.errors", "RecorderError"),
)


def user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of :data:`USER_ERRORS`."""
    for module, name in USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


def _module_of(module: str):
    return importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the chosen command's parser fully: importing every command would import torch everywhere.
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = _module_of(COMMANDS[name][0])
        parser = argparse.ArgumentParser(prog=f"sim2real {name}", description=COMMANDS[name][1])
        parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
    else:
        parser = argparse.ArgumentParser(prog="sim2real", description=__doc__.splitlines()[0])
        parser.add_argument(
            "command", choices=sorted(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items())
        )
        parser.parse_args(argv[:1])
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(module.run(args) or 0)
    except Exception as exc:
        if not user_error(exc):
            raise
        logging.getLogger(f"sim2real.{name}").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
