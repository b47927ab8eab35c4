"""``sim2real export RUN_DIR_OR_CHECKPOINT``: ``policy.onnx`` (+ ``policy.h``) next to the checkpoint.

The ONNX graph is written node by node (no tracing): ``obs -> (obs - mean) / denom -> MLP [-> tanh] -> action``
(the deterministic action in normalized units; the tanh for actors that end in one, e.g. TD3's)
``-> clip(-1, 1) * scale + offset -> clip(low, high) -> command`` (physical units, e.g. RPM). Opset pinned to :data:`OPSET`. Metadata: see :mod:`policies.onnx_policy`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from policies.actor import ActorWeights, Checkpoint, load_checkpoint
from policies.onnx_digest import stamp
from policies.onnx_policy import (
    ACTION_OUTPUT_NAME,
    ESTIMATE_OUTPUT_NAME,
    FORMAT_VERSION,
    INPUT_NAME,
    OUTPUT_NAME,
    PREFIX,
    profile_hash,
)
from sim.action_spec import ActionSpec

log = logging.getLogger("sim2real.export")

OPSET = 17
IR_VERSION = 8  # what onnxruntime >= 1.17 reads for opset 17


def build_onnx(w: ActorWeights, spec: ActionSpec, metadata: dict[str, str]):
    """The ONNX model (``onnx.ModelProto``) of actor + normalizer + scaling, checked. An actor with a state
    estimator also outputs ``estimate``: the estimator's output divided by the target's observation scale (metadata
    ``estimator``), i.e. in the target's physical units."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    estimate_scale = float(json.loads(metadata.get("estimator", "{}")).get("scale", 1.0))
    if spec.dim != w.action_dim:
        raise ValueError(f"the actor outputs {w.action_dim} actions, the action spec declares {spec.dim}")
    f32 = np.float32
    inits, nodes = [], []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=f32), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def hidden(x: str, name: str) -> str:
        return node("Tanh", [x], name) if w.activation == "tanh" else node("Elu", [x], name, alpha=1.0)

    x = node("Sub", [INPUT_NAME, const("obs_mean", w.mean)], "obs_centred")
    x = node("Div", [x, const("obs_denom", w.denom)], "obs_normalized")
    if w.estimator:  # the state estimator (policies.estimator): its output appended to the normalized observation
        e = x
        for i, (weight, bias) in enumerate(w.estimator):
            e = node("MatMul", [e, const(f"estimator_w{i}", weight.T.copy())], f"estimator_matmul{i}")
            e = node("Add", [e, const(f"estimator_b{i}", bias)], f"estimator_linear{i}")
            e = hidden(e, f"estimator_hidden{i}") if i < len(w.estimator) - 1 else e
        x = node("Concat", [x, e], "actor_input", axis=-1)
        node("Div", [e, const("estimate_scale", np.full(w.estimate_dim, estimate_scale))], ESTIMATE_OUTPUT_NAME)
    x_in = x  # what the actor's MLPs read

    def mlp(x: str, layers: list, prefix: str, out: str) -> str:
        """Linear layers with the hidden activation between them, none after the last (named ``out``)."""
        for i, (weight, bias) in enumerate(layers):
            last = i == len(layers) - 1
            x = node("MatMul", [x, const(f"{prefix}w{i}", weight.T.copy())], f"{prefix}matmul{i}")
            x = node("Add", [x, const(f"{prefix}b{i}", bias)], out if last else f"{prefix}linear{i}")
            x = x if last else hidden(x, f"{prefix}hidden{i}")
        return x

    plain = not w.residual and w.output_activation != "tanh"
    x = mlp(x, w.layers, "", ACTION_OUTPUT_NAME if plain else f"linear{len(w.layers) - 1}")
    if w.residual:  # a bounded residual actor (policies.residual): prior + scale * tanh(residual)
        r = node("Tanh", [mlp(x_in, w.residual, "residual_", "residual_linear")], "residual_squashed")
        r = node("Mul", [r, const("residual_scale", np.full(w.action_dim, w.residual_scale))], "residual_scaled")
        squash = w.output_activation == "tanh"
        x = node("Add", [x, r], "prior_plus_residual" if squash else ACTION_OUTPUT_NAME)
    if w.output_activation == "tanh":
        x = node("Tanh", [x], ACTION_OUTPUT_NAME)
    a = node("Clip", [x, const("minus_one", -1.0), const("one", 1.0)], "action_clipped")
    a = node("Mul", [a, const("action_scale", spec.scale)], "action_scaled")
    a = node("Add", [const("action_offset", spec.offset), a], "command_unclipped")
    a = node("Max", [a, const("command_low", spec.low)], "command_above_low")
    node("Min", [a, const("command_high", spec.high)], OUTPUT_NAME)

    graph = helper.make_graph(
        nodes,
        "sim2real_policy",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", w.obs_dim])],
        [
            helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", w.action_dim]),
            helper.make_tensor_value_info(ACTION_OUTPUT_NAME, TensorProto.FLOAT, ["batch", w.action_dim]),
        ]
        + [helper.make_tensor_value_info(ESTIMATE_OUTPUT_NAME, TensorProto.FLOAT, ["batch", w.estimate_dim])]
        * bool(w.estimator),
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sim2real", ir_version=IR_VERSION
    )
    helper.set_model_props(model, {PREFIX + k: v for k, v in metadata.items()})
    stamp(model, PREFIX)  # the digest over the graph and every field: edits after export are refused at load
    onnx.checker.check_model(model, full_check=True)
    return model


def metadata_of(ck: Checkpoint) -> dict[str, str]:
    """The ``sim2real.*`` metadata_props (prefix added by :func:`build_onnx`)."""
    infos = ck.infos
    profile = infos["profile"]
    robot = {"robot": str(infos["robot"])} if infos.get("robot") else {}  # the variant eval rebuilds (sim.tasks)
    est = infos["actor"].get("estimator")  # what the state estimator inside the graph estimates (policies.estimator)
    estimator = {"estimator": json.dumps(est, sort_keys=True, separators=(",", ":"))} if est else {}
    return {
        **robot,
        "format_version": FORMAT_VERSION,
        "task": infos["task"],
        "obs_spec": infos["obs_spec"],
        "action_spec": infos["action_spec"],
        "control_hz": repr(float(infos["control_hz"])),
        "profile": json.dumps(profile, sort_keys=True, separators=(",", ":")),
        "profile_hash": profile_hash(profile),
        "randomization_digest": infos["randomization_digest"],
        "randomization": json.dumps(infos["randomization"], sort_keys=True, separators=(",", ":")),
        "git_commit": infos["git_commit"],
        "checkpoint": ck.path.name,
        "iteration": str(infos["iteration"]),
        "seed": str(infos["seed"]),
        "output": "physical command, units in action_spec",
        **estimator,
        # a bounded residual actor (policies.residual): action = prior + residual_scale * tanh(residual)
        **({"residual_scale": repr(ck.weights.residual_scale)} if ck.weights.residual else {}),
    }


def export(checkpoint: str | Path, out_dir: Path | None = None, header: bool = True) -> dict[str, Path]:
    """Write ``policy.onnx`` (and ``policy.h``) for a checkpoint or run directory; returns the paths."""
    import onnx

    ck = load_checkpoint(checkpoint)
    out_dir = Path(out_dir) if out_dir is not None else ck.path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_onnx(ck.weights, ck.action_spec, metadata_of(ck))
    paths = {"onnx": out_dir / "policy.onnx"}
    onnx.save(model, str(paths["onnx"]))
    if header:
        from policies.c_export import write_header

        paths["header"] = write_header(ck.weights, ck.action_spec, ck.obs_spec, out_dir / "policy.h", metadata_of(ck))
    return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="run directory (latest model_<it>.pt) or a checkpoint file")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: beside the checkpoint)")
    p.add_argument("--no-header", action="store_true", help="skip policy.h (plain C for microcontrollers)")


def run(args: argparse.Namespace) -> int:
    from policies.onnx_policy import load_policy

    paths = export(args.checkpoint, args.out, header=not args.no_header)
    policy = load_policy(paths["onnx"])  # read back through the robot's loader: refuse to hand out a bad file
    log.info(
        "exported %s: task %s, %d obs -> %d %s commands at %g Hz, profile %s, randomization %s, commit %s",
        paths["onnx"],
        policy.task,
        policy.obs_spec.dim,
        policy.action_spec.dim,
        policy.action_spec.interface,
        policy.control_hz,
        policy.profile_hash,
        policy.randomization_digest,
        policy.git_commit,
    )
    for p in paths.values():
        print(p)
    return 0
