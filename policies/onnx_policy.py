"""Load an exported ``policy.onnx`` on the robot: numpy + onnxruntime, no torch.

The file holds the actor (deterministic mean), the observation normalizer and the action scaling; its output is
the physical command (e.g. RPM per motor). Its ``metadata_props`` carry what the runtime must agree with: the
observation spec, the action spec, the control rate, the robot profile and its hash, the randomization digest,
the training commit, the task and the format version. :func:`load_policy` refuses a file without them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policies.onnx_digest import DigestError, verify
from sim.action_spec import ActionSpec
from sim.obs_spec import ObsSpec

FORMAT_VERSION = "1"
PREFIX = "sim2real."
INPUT_NAME = "obs"
OUTPUT_NAME = "command"  # physical command (N, A)
ACTION_OUTPUT_NAME = "action"  # normalized deterministic action (N, A), before clipping and scaling
ESTIMATE_OUTPUT_NAME = "estimate"  # an actor with a state estimator: its estimate (N, K), in the target's units
REQUIRED_KEYS = (
    "format_version",
    "task",
    "obs_spec",
    "action_spec",
    "control_hz",
    "profile",
    "profile_hash",
    "randomization_digest",
    "git_commit",
)


class PolicyFileError(ValueError):
    """An exported policy file is missing metadata or does not match what the runtime expects."""


def profile_hash(profile: Mapping[str, Any]) -> str:
    """Content hash of a robot profile (canonical JSON, sorted keys)."""
    text = json.dumps(profile, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ExportedPolicy:
    """A loaded ``policy.onnx``: ``policy(obs (D,) or (N, D)) -> physical command (A,) or (N, A)``."""

    path: Path
    obs_spec: ObsSpec
    action_spec: ActionSpec
    control_hz: float
    task: str
    profile: dict[str, Any]
    profile_hash: str
    randomization_digest: str
    git_commit: str
    format_version: str
    metadata: dict[str, str] = field(repr=False)
    session: Any = field(repr=False)
    digest: str = ""  # sha256 over the graph and every sim2real.* field (policies/onnx_digest.py)
    # the state estimator inside the graph (policies.estimator): {"target", "unit", ...} from the metadata, or None;
    # each run() then keeps its estimate (physical units, e.g. m/s in the base frame) in ``last_estimate``
    estimator: dict[str, Any] | None = None
    last_estimate: np.ndarray | None = field(default=None, repr=False)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.run(obs)[0]

    def action(self, obs: np.ndarray) -> np.ndarray:
        """The normalized (unclipped) action, for diagnostics and parity checks."""
        return self.run(obs)[1]

    def run(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.obs_spec.dim:
            raise PolicyFileError(
                f"{self.path.name}: expected observations of shape ({self.obs_spec.dim},) or (N, {self.obs_spec.dim}) "
                f"laid out as {list(self.obs_spec.names)}, got {tuple(np.shape(obs))}"
            )
        names = [OUTPUT_NAME, ACTION_OUTPUT_NAME] + [ESTIMATE_OUTPUT_NAME] * (self.estimator is not None)
        command, action, *estimate = self.session.run(names, {INPUT_NAME: np.ascontiguousarray(x)})
        if estimate:
            self.last_estimate = estimate[0][0] if single else estimate[0]
        return (command[0], action[0]) if single else (command, action)


def session_options():
    """1 intra-op thread, 1 inter-op thread, sequential, no spinning: predictable latency next to a control loop."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return so


def _validated(path: Path, raw: Mapping[str, str]) -> dict[str, str]:
    meta = {k[len(PREFIX) :]: v for k, v in raw.items() if k.startswith(PREFIX)}
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise PolicyFileError(
            f"{path}: metadata_props lack {[PREFIX + k for k in missing]}; a policy for the robot must carry them. "
            "Re-export it with `sim2real export RUN_DIR` (plain ONNX files from other tools are refused on purpose)"
        )
    if meta["format_version"] != FORMAT_VERSION:
        raise PolicyFileError(
            f"{path}: unknown policy format version {meta['format_version']!r}; this runtime reads version "
            f"{FORMAT_VERSION!r}. Update the runtime or re-export the policy with this version of sim2real"
        )
    return meta


def load_policy(path: str | Path) -> ExportedPolicy:
    """Load and check ``policy.onnx``; raises :class:`PolicyFileError` naming what is missing or wrong."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"policy file {str(path)!r} does not exist; export one with `sim2real export RUN_DIR`")
    data = path.read_bytes()
    try:
        session = ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a file that is not a model
        raise PolicyFileError(
            f"{path}: not a loadable ONNX model ({exc}); export one with `sim2real export RUN_DIR`"
        ) from None
    meta = _validated(path, session.get_modelmeta().custom_metadata_map)
    try:
        digest = verify(data, meta)
    except DigestError as exc:
        raise PolicyFileError(f"{path}: {exc}") from None
    obs_spec = ObsSpec.from_json(meta["obs_spec"])
    action_spec = ActionSpec.from_json(meta["action_spec"])
    profile = json.loads(meta["profile"])
    if profile_hash(profile) != meta["profile_hash"]:
        raise PolicyFileError(
            f"{path}: profile hash mismatch: metadata says {meta['profile_hash']}, the stored profile hashes to "
            f"{profile_hash(profile)}; the file was edited after export. Re-export it"
        )
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if INPUT_NAME not in inputs or {OUTPUT_NAME, ACTION_OUTPUT_NAME} - outputs:
        raise PolicyFileError(
            f"{path}: expected input {INPUT_NAME!r} and outputs {[OUTPUT_NAME, ACTION_OUTPUT_NAME]}, "
            f"found inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        )
    estimator = json.loads(meta["estimator"]) if "estimator" in meta else None
    if estimator is not None and ESTIMATE_OUTPUT_NAME not in outputs:
        raise PolicyFileError(
            f"{path}: the metadata declares a state estimator but the graph has no {ESTIMATE_OUTPUT_NAME!r} output; "
            "re-export it with `sim2real export RUN_DIR`"
        )
    if inputs[INPUT_NAME][-1] != obs_spec.dim:
        raise PolicyFileError(
            f"{path}: the network takes {inputs[INPUT_NAME][-1]} inputs but the observation spec declares "
            f"{obs_spec.dim} ({list(obs_spec.names)})"
        )
    return ExportedPolicy(
        path=path,
        obs_spec=obs_spec,
        action_spec=action_spec,
        control_hz=float(meta["control_hz"]),
        task=meta["task"],
        profile=profile,
        profile_hash=meta["profile_hash"],
        randomization_digest=meta["randomization_digest"],
        git_commit=meta["git_commit"],
        format_version=meta["format_version"],
        metadata=meta,
        session=session,
        digest=digest,
        estimator=estimator,
    )
