"""``sim2real calibrate camera|hand-eye|imu|thrust``: command-line front end of the calibration package.

Each sub-command writes its files into ``--out`` (default ``calibration_out/<kind>``) and prints one JSON
summary line on stdout (machine output); messages go through logging.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from calibration.errors import CalibrationError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", required=True, metavar="{camera,hand-eye,imu,thrust}")

    cam = sub.add_parser("camera", help="camera intrinsics from board images -> ROS camera calibration YAML")
    cam.add_argument("images", nargs="+", help="image files showing the board (same size)")
    cam.add_argument("--board", choices=("charuco", "chessboard"), required=True)
    cam.add_argument(
        "--squares", nargs=2, type=int, required=True, metavar=("X", "Y"), help="number of squares (not inner corners)"
    )
    cam.add_argument("--square-size", type=float, required=True, help="square side, metres")
    cam.add_argument("--marker-size", type=float, help="ArUco marker side, metres (charuco)")
    cam.add_argument("--dictionary", default="5X5_100", help="ArUco dictionary, e.g. 5X5_100, 4X4_50 (charuco)")
    cam.add_argument(
        "--model",
        choices=("pinhole", "rational", "fisheye"),
        default="pinhole",
        help="pinhole = plumb_bob; rational = rational_polynomial; fisheye = equidistant",
    )
    cam.add_argument("--camera-name", default="camera")
    cam.add_argument("--reject-factor", type=float, default=3.0, help="drop views with RMS > factor x median view RMS")
    cam.add_argument("--out", type=Path, default=Path("calibration_out/camera"))

    he = sub.add_parser("hand-eye", help="camera-to-flange (eye-in-hand) or camera-to-base (eye-to-hand)")
    he.add_argument("poses", type=Path, help="POSES.yaml: flange poses in base + board poses in camera")
    he.add_argument("--mode", choices=("eye_in_hand", "eye_to_hand"), help="overrides the file's mode")
    he.add_argument("--out", type=Path, default=Path("calibration_out/hand_eye"))

    imu = sub.add_parser(
        "imu", help="IMU biases, scale/misalignment, Allan noise -> Kalibr imu.yaml + randomization spec"
    )
    imu.add_argument("log", type=Path, help=".mcap, rosbag2 folder or .csv with a static IMU log")
    imu.add_argument("--topic", help="sensor_msgs/Imu topic (default: the only one)")
    imu.add_argument("--multi-position", action="store_true", help="the log holds the IMU still in many orientations")
    imu.add_argument("--gravity", type=float, default=9.80665, help="local gravity, m/s^2")
    imu.add_argument("--noise-spread", type=float, default=0.5, help="obs noise std drawn in [1-s, 1+s] x measured")
    imu.add_argument("--episode-s", type=float, default=20.0, help="episode length for the bias random-walk term, s")
    imu.add_argument("--out", type=Path, default=Path("calibration_out/imu"))

    th = sub.add_parser("thrust", help="thrust-stand CSV -> quadrotor motor profile + randomization spec")
    th.add_argument("stand", type=Path, help="CSV: [time,] command, rpm, thrust, torque, voltage (SI)")
    th.add_argument("--command-unit", default="PWM", help="unit of the command column, written into the profile")
    th.add_argument("--map-degree", type=int, default=1, help="degree of the command -> rpm polynomial")
    th.add_argument("--out", type=Path, default=Path("calibration_out/thrust"))


def _camera(args) -> dict:
    from calibration.boards import BoardSpec
    from calibration.camera import calibrate_camera, load_images, save_coverage_png
    from calibration.camera_model import write_ros_yaml

    board = BoardSpec(args.board, *args.squares, args.square_size, args.marker_size, args.dictionary)
    images, names = load_images(args.images)
    result = calibrate_camera(images, board, args.model, names=names, reject_factor=args.reject_factor)
    result.camera = type(result.camera)(
        result.camera.K,
        result.camera.D,
        result.camera.width,
        result.camera.height,
        result.camera.model,
        args.camera_name,
    )
    write_ros_yaml(result.camera, args.out / "camera.yaml")
    summary = result.summary()
    summary["coverage"] = save_coverage_png(result, args.out / "coverage.png")
    return summary


def _hand_eye(args) -> dict:
    from calibration.handeye import calibrate_hand_eye
    from calibration.handeye_io import read_poses_yaml, write_result_yaml

    mode, flange, board = read_poses_yaml(args.poses)
    mode = args.mode or mode
    results = calibrate_hand_eye(flange, board, mode)
    write_result_yaml(args.out / "hand_eye.yaml", mode, results)
    for r in results.values():
        log.info(
            "%-10s rot residual %.4f deg, trans residual %.5f m (%s)",
            r.method,
            r.rotation_residual_deg,
            r.translation_residual_m,
            r.backend,
        )
    return {"mode": mode, "poses": len(flange), "methods": {m: r.summary() for m, r in results.items()}}


def _imu(args) -> dict:
    from calibration.allan import save_allan_png
    from calibration.imu import imu_noise, multi_position_accel, static_biases
    from calibration.imu_io import read_imu_log
    from calibration.imu_outputs import imu_randomization_spec, kalibr_dict, write_kalibr_yaml

    imu = read_imu_log(args.log, args.topic)
    out: dict = {"samples": len(imu.time), "rate_hz": imu.rate_hz, "duration_s": imu.duration_s, "topic": imu.topic}
    biases = None
    if args.multi_position:
        cal = multi_position_accel(imu, args.gravity)
        out["accel_calibration"] = {
            "scale": cal.scale.tolist(),
            "misalignment_rad": cal.misalignment_rad.tolist(),
            "bias_m_s2": cal.bias.tolist(),
            "poses": cal.poses,
            "residual_rms_m_s2": cal.residual_rms,
            "raw_residual_rms_m_s2": cal.raw_residual_rms,
        }
    else:
        biases = static_biases(imu, args.gravity)
        out["gyro_bias_rad_s"] = biases.gyro_bias.tolist()
        out["accel_bias_m_s2_if_level"] = biases.accel_bias.tolist()
        out["gravity_magnitude_error_m_s2"] = biases.gravity_magnitude_error
        if imu.duration_s < 60:
            log.warning(
                "log is %.0f s long: Allan deviation needs >= 1 min for white noise and hours for random walk",
                imu.duration_s,
            )
        noise = imu_noise(imu)
        for sensor in ("gyro", "accel"):
            if not noise.random_walk(sensor)[1]:
                log.warning(
                    "%s random walk not visible (no +1/2 slope): writing an upper bound; record a longer log", sensor
                )
        write_kalibr_yaml(noise, imu.topic, args.out / "imu.yaml")
        imu_randomization_spec(
            noise, biases, args.noise_spread, args.episode_s, name=f"imu{imu.topic.replace('/', '-')}"
        ).to_yaml(args.out / "imu_randomization.yaml")
        notes = {s: (noise.noise_density(s), noise.random_walk(s)[0]) for s in ("gyro", "accel")}
        save_allan_png(noise.taus, noise.gyro_adev, noise.accel_adev, str(args.out / "allan.png"), notes)
        out["kalibr"] = kalibr_dict(noise, imu.topic)
    (args.out / "imu_calibration.json").write_text(json.dumps(out, indent=2))
    return out


def _thrust(args) -> dict:
    from calibration.thrust import (
        fit_thrust_stand,
        profile_dict,
        read_stand_csv,
        thrust_randomization_spec,
        write_profile_yaml,
    )
    from calibration.thrust_report import save_thrust_png

    cal = fit_thrust_stand(read_stand_csv(args.stand), map_degree=args.map_degree)
    write_profile_yaml(cal, args.out / "quadrotor_profile.yaml", args.command_unit)
    thrust_randomization_spec(cal).to_yaml(args.out / "thrust_randomization.yaml")
    save_thrust_png(cal, args.out / "thrust_fit.png", args.command_unit)
    return {"profile": profile_dict(cal, args.command_unit), "rel_std": cal.rel_std, "steps": len(cal.steps)}


HANDLERS = {"camera": _camera, "hand-eye": _hand_eye, "imu": _imu, "thrust": _thrust}


def run(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        summary = HANDLERS[args.kind](args)
    except CalibrationError as exc:
        log.error("%s", exc)
        return 1
    summary["out"] = str(args.out)
    sys.stdout.write(json.dumps(summary, default=float) + "\n")
    log.info("wrote %s", ", ".join(sorted(p.name for p in args.out.iterdir())))
    return 0
