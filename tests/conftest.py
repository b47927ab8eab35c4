from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.domains import random_domain

# Modules whose tests run in real time (a deploy runtime's loop, a simulated robot in pace with the clock, DDS
# timeouts and latencies): `make test` (tests/run_suite.sh) runs them one at a time at normal priority, the rest
# beside them at nice 19 (docs/testing.md). Paths relative to tests/.
REALTIME_MODULES = frozenset(
    """
    deploy/test_deploy_cli_articulated.py deploy/test_excitation.py deploy/test_fault_injection_dds.py
    deploy/test_operator.py deploy/test_reference_articulated_dds.py deploy/test_runtime_articulated.py
    deploy/test_runtime_articulated_sil.py deploy/test_runtime_classes.py deploy/test_runtime_reference.py
    deploy/test_runtime_sil.py deploy/test_sil_randomization.py deploy/test_spool_down.py
    deploy/transport/test_dds_loopback.py deploy/transport/test_writers_dds.py
    drivers/test_crazyflie_bridge.py drivers/test_crazyflie_sil.py drivers/test_ctbr_deploy_e2e.py
    drivers/test_dynamixel.py drivers/test_fake_px4_dds.py drivers/test_foreign_sil.py
    drivers/test_foreign_sil_legged.py drivers/test_mavlink_fake.py drivers/test_mavlink_sil.py
    drivers/test_px4_bridge_dds.py drivers/test_px4_ctbr_sil.py drivers/test_px4_sil.py
    drivers/test_ros2_control_sil.py drivers/test_sim_articulated_node.py drivers/test_sim_robot.py
    drivers/test_unitree_sil.py drivers/test_unitree_sim.py
    policies/test_estimator.py::test_the_runtime_scores_the_policy_velocity_estimate_in_sil
    """.split()
)
TESTS = Path(__file__).resolve().parent


def pytest_configure(config):
    # One intra-op thread: the tests' tensors are small (tens to a few hundred envs), where a second OpenMP thread
    # buys nothing and, on a 2-core machine shared with the DDS tests' processes (or a second xdist worker), its
    # spin-waits cost up to 10x (tests/policies/test_pid.py's 256-env rpm hover: 37 s on two threads, 3.4 s on one,
    # the same RMS to the last digit). Tests that need more threads set them and restore them.
    torch.set_num_threads(1)
    # A process started without a ROS_DOMAIN_ID of its own (a `sim2real deploy` a test runs with the inherited
    # environment) would be on domain 0 in both of `make test`'s pytest processes at once: give each its own default
    # from its share (tests/domains.py).
    os.environ.setdefault("ROS_DOMAIN_ID", str(random_domain()))


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by the marker
def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`REALTIME_MODULES` ``realtime``; a listed path that names no test is an error (a
    renamed module would otherwise silently join the CPU-bound phase)."""
    found = set()
    for item in items:
        module = Path(item.fspath).resolve().relative_to(TESTS).as_posix()
        for key in (module, f"{module}::{item.originalname}"):
            if key in REALTIME_MODULES:
                item.add_marker(pytest.mark.realtime)
                found.add(key)
    missing = REALTIME_MODULES - found
    if missing and config.args_source is pytest.Config.ArgsSource.TESTPATHS:  # the whole suite was collected
        raise pytest.UsageError(
            f"tests/conftest.py REALTIME_MODULES names tests that were not collected: {sorted(missing)}"
        )


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
