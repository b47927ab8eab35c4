"""The robot state on the wire by ROS convention (deploy/state_wire.py): the twist in the body frame, Odometry's
twist in its child frame, and the runtime's world-frame state (and so the policy's observation) unchanged."""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

from deploy.msgs import Odometry, PoseStamped, Twist, TwistStamped, Vector3, make_header
from deploy.observation import Context, ObservationBuilder
from deploy.profile import DeployProfileError, load_deploy_profile
from deploy.runtime import QuadrotorAdapter
from deploy.safety import crazyflie_profile
from deploy.state_wire import TwistFrameError, odometry_state, state_messages, world_velocity
from deploy.transport import LOOPBACK_CONFIG, Ros2Node, TransportConfig
from drivers.robot import RobotState
from sim.obs_spec import ObsSpec, ObsTerm
from tests.deploy.test_profile import LAUNCH, FakePolicy
from tests.domains import random_domain


def _tilted_yawed() -> np.ndarray:
    """(4,) w, x, y, z: yaw 2.0 rad, then pitch 0.4 rad, then roll -0.3 rad (ZYX), body -> world."""
    half = np.array([2.0, 0.4, -0.3]) / 2
    qz = np.array([np.cos(half[0]), 0, 0, np.sin(half[0])])
    qy = np.array([np.cos(half[1]), 0, np.sin(half[1]), 0])
    qx = np.array([np.cos(half[2]), np.sin(half[2]), 0, 0])

    def mul(a, b):
        aw, ax, ay, az = a
        bw, bx, by, bz = b
        return np.array(
            [aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
             aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw]
        )  # fmt: skip

    return mul(mul(qz, qy), qx)


def _wire(msg):
    """The message as a subscriber receives it (CDR and back)."""
    return type(msg).deserialize(msg.serialize())


Q = _tilted_yawed()
V_WORLD = np.array([0.7, -0.2, 0.35])  # m/s
RATES = np.array([0.1, -0.4, 0.9])  # rad/s, body


def test_yaw_only_twist_by_hand() -> None:
    """Yawed +90 deg: flying world +x (east) is flying body -y (to the right)."""
    yaw90 = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    pose, twist, odom = state_messages(5, [1.0, 2.0, 3.0], yaw90, [1.0, 0.0, 0.0], [0.0, 0.0, 0.5])
    lin = twist.twist.linear
    np.testing.assert_allclose([lin.x, lin.y, lin.z], [0.0, -1.0, 0.0], atol=1e-12)
    assert (pose.header.frame_id, twist.header.frame_id) == ("world", "base_link")
    assert (odom.header.frame_id, odom.child_frame_id) == ("world", "base_link")
    assert odom.twist.twist == twist.twist and odom.pose.pose == pose.pose
    assert list(odom.pose.covariance) == [0.0] * 36 and list(odom.twist.covariance) == [0.0] * 36


def test_body_twist_of_a_tilted_yawed_vehicle_gives_the_same_world_velocity_observation() -> None:
    """The observation built from the body-frame twist (pose + twist, or Odometry) equals the one built from the
    world-frame velocity of the earlier convention."""
    _, twist, odom = (_wire(m) for m in state_messages(1, [0.1, 0.2, 1.0], Q, V_WORLD, RATES))
    body = np.array([twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z])
    assert np.abs(body - V_WORLD).max() > 0.3  # the tilt and yaw do change the numbers on the wire
    np.testing.assert_allclose(np.linalg.norm(body), np.linalg.norm(V_WORLD), rtol=1e-12)
    velocity, rates = world_velocity(Q, twist)
    np.testing.assert_allclose(velocity, V_WORLD, atol=1e-12)
    np.testing.assert_allclose(rates, RATES, atol=0)
    position, quat, v_odom, w_odom = odometry_state(odom)
    np.testing.assert_allclose(v_odom, V_WORLD, atol=1e-12)
    np.testing.assert_allclose(quat, Q, atol=1e-15)

    spec = ObsSpec((ObsTerm("rotation_matrix", 9), ObsTerm("linear_velocity", 3), ObsTerm("angular_velocity", 3)))
    context = Context(np.zeros(3), np.zeros(3), np.zeros(4, dtype=np.float32))
    before = ObservationBuilder(spec).build(RobotState(0.0, position, Q, V_WORLD, RATES), context)
    for v, w in ((velocity, rates), (v_odom, w_odom)):
        now = ObservationBuilder(spec).build(RobotState(0.0, position, quat, v, w), context)
        np.testing.assert_allclose(now, before, atol=1e-7)


@pytest.mark.parametrize("frame", ["world", "odom", "", "/map"])
def test_a_twist_in_a_world_frame_is_refused(frame: str) -> None:
    with pytest.raises(TwistFrameError, match="body frame"):
        world_velocity(Q, TwistStamped(make_header(1, frame), Twist(Vector3(1.0, 0.0, 0.0))))
    with pytest.raises(TwistFrameError, match="child_frame_id"):
        odometry_state(Odometry(make_header(1, "world"), frame))


def test_adapter_reads_odometry_and_pose_twist_alike_and_refuses_an_old_twist() -> None:
    """Over DDS: the runtime's two state inputs give the same world-frame state; a twist stamped ``world`` (the
    earlier convention) is no state at all."""
    domain = random_domain()
    transport = TransportConfig()
    limits = crazyflie_profile().quadrotor
    with Ros2Node("deploy", domain_id=domain, config=LOOPBACK_CONFIG) as node:
        odom_in = QuadrotorAdapter(FakePolicy(), node, transport, limits=limits, state_input="odometry")
        pose_twist_in = QuadrotorAdapter(FakePolicy(), node, transport, limits=limits)
        pubs = {k: node.publisher(transport.topic(k).name, transport.topic(k).msg_type, transport.topic(k).qos)
                for k in ("pose", "twist", "odom")}  # fmt: skip
        assert list(odom_in.inputs) == ["odom", "battery"] and list(pose_twist_in.inputs)[:2] == ["pose", "twist"]

        def publish(old_twist: bool = False) -> None:
            pose, twist, odom = state_messages(time.time_ns(), [0.1, 0.2, 1.0], Q, V_WORLD, RATES)
            if old_twist:
                twist = TwistStamped(make_header(time.time_ns(), "world"), Twist(Vector3(*V_WORLD), Vector3(*RATES)))
            for key, msg in (("pose", pose), ("twist", twist), ("odom", odom)):
                pubs[key].publish(msg)

        readings, deadline = (None, None), time.monotonic() + 10.0
        while None in readings and time.monotonic() < deadline:
            publish()
            time.sleep(0.02)
            readings = (odom_in.read(), pose_twist_in.read())
        assert None not in readings
        for reading in readings:
            np.testing.assert_allclose(reading.state.linear_velocity, V_WORLD, atol=1e-9)
            np.testing.assert_allclose(reading.state.angular_velocity, RATES, atol=1e-12)
            np.testing.assert_allclose(reading.sample.velocity_m_s, V_WORLD, atol=1e-9)
        # every state message that arrived (a log keeps them all), each once
        assert {type(m) for m in readings[0].messages} == {Odometry}
        assert {type(m) for m in readings[1].messages} == {PoseStamped, TwistStamped}
        assert all(sum(m is o for o in r.messages) == 1 for r in readings for m in r.messages)
        deadline = time.monotonic() + 10.0
        while pose_twist_in.twist_sub.latest().header.frame_id != "world" and time.monotonic() < deadline:
            publish(old_twist=True)
            time.sleep(0.02)
        assert pose_twist_in.read() is None and "earlier convention" in pose_twist_in._bad_twist
        assert odom_in.read() is not None  # the Odometry stream is not affected


def test_profile_state_input(tmp_path) -> None:
    data = yaml.safe_load((LAUNCH / "sim_quadrotor.yaml").read_text())
    data["robot"] = str(LAUNCH / data["robot"])
    path = tmp_path / "p.yaml"
    for section, expected in ((None, "pose_twist"), ({"input": "odometry"}, "odometry"), ({"input": "odom"}, None)):
        path.write_text(yaml.safe_dump({**data, "state": section}))
        if expected is None:
            with pytest.raises(DeployProfileError, match=r"state.input: expected one of \['pose_twist', 'odometry'\]"):
                load_deploy_profile(path)
        else:
            assert load_deploy_profile(path).state_input == expected
