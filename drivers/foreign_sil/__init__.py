"""Quadrotors the project did not write, dressed as hardware: foreign software-in-the-loop robots.

Each module wraps one simulator installed from PyPI (the ``dev`` extra) with that package's own vehicle
parameters, behind the same topics as the project's SIL robot (``drivers/sim_robot.py``): ``command/motors`` in,
``state/pose``, ``state/twist``, ``state/battery`` out, stamped in ROS time. ``sim2real deploy --sil --sil-robot
rotorpy`` (or a profile's ``sil: {robot: rotorpy}``) flies a policy in one through the real runtime, as it would
fly hardware; ``benchmarks/sim2sim.py`` measures it (docs/sim2sim.md).

    python -m drivers.foreign_sil --sim rotorpy|drone_models --seconds 30 [--namespace /sim2real] [--seed 0]
"""

from __future__ import annotations

import importlib

#: simulator name -> (module, class). Imported on use: each pulls in its own package.
SIMULATORS = {
    "rotorpy": ("drivers.foreign_sil.rotorpy_quad", "RotorpyQuadrotor"),
    "drone_models": ("drivers.foreign_sil.drone_models_quad", "DroneModelsQuadrotor"),
}


def make_vehicle(sim: str, **kwargs):
    """The foreign vehicle of simulator ``sim`` (a key of :data:`SIMULATORS`)."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown foreign simulator {sim!r}; expected one of {sorted(SIMULATORS)}")
    module, cls = SIMULATORS[sim]
    return getattr(importlib.import_module(module), cls)(**kwargs)
