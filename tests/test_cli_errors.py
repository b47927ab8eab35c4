"""Bad values given to ``sim2real replay`` and ``sim2real sysid``: one line saying what was expected, exit code 2,
nothing written (the train / export / eval cases are in tests/policies/test_cli_errors.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import sim2real

GOLDEN = Path(__file__).resolve().parent / "deploy" / "data" / "golden_small.mcap"


def run(argv: list[str], caplog) -> tuple[int, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = sim2real.main(argv)
    return code, [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("command", ["replay", "sysid"])
def test_a_missing_log_is_named(tmp_path, caplog, command):
    code, errors = run([command, str(tmp_path / "nothing.mcap"), "--out", str(tmp_path / "out")], caplog)
    assert code == 2 and len(errors) == 1 and "log" in errors[0] and "does not exist" in errors[0], errors
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["replay", "sysid"])
def test_a_file_that_is_not_a_log_is_named(tmp_path, caplog, command):
    garbage = tmp_path / "flight.mcap"
    garbage.write_bytes(b"not a log at all")
    code, errors = run([command, str(garbage), "--out", str(tmp_path / "out")], caplog)
    assert code == 2 and len(errors) == 1 and "is not an MCAP file" in errors[0], errors
    assert [p.name for p in tmp_path.iterdir()] == ["flight.mcap"]


def test_replay_refuses_a_negative_latency_and_a_missing_or_damaged_policy(tmp_path, caplog):
    out = ["--out", str(tmp_path / "out"), "--no-resim"]
    code, errors = run(["replay", str(GOLDEN), "--latency", "-1", *out], caplog)
    assert code == 2 and errors == ["--latency: expected control steps >= 0, got -1"], errors
    code, errors = run(["replay", str(GOLDEN), "--policy", str(tmp_path / "policy.onnx"), *out], caplog)
    assert code == 2 and "policy file" in errors[0] and "does not exist" in errors[0], errors
    damaged = tmp_path / "policy.onnx"
    damaged.write_bytes(b"\x08\x07\x12")  # the first bytes of a model, then nothing
    code, errors = run(["replay", str(GOLDEN), "--policy", str(damaged), *out], caplog)
    assert code == 2 and "not a loadable ONNX model" in errors[0], errors
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-latency", "-1"], "--max-latency: expected control steps >= 0, got -1"),
        (["--substeps", "0"], "--substeps: expected physics substeps >= 1, got 0"),
        (["--segments", "0"], "--segments: expected a number of segments >= 1, got 0"),
        (["--horizon", "-5"], "--horizon: expected control steps >= 1, got -5"),
        (["--sigmas", "-2"], "--sigmas: expected standard deviations > 0, got -2"),
        (["--min-spread", "-0.1"], "--min-spread: expected a relative half-width >= 0, got -0.1"),
        (["--anchor-std", "0"], "--anchor-std: expected a relative uncertainty > 0, got 0"),
        (["--anchor", "mass", "--anchor-value", "-0.03"], "--anchor-value: expected mass > 0 kg, got -0.03"),
    ],
)
def test_sysid_refuses_bad_settings_before_reading_the_log(tmp_path, caplog, args, message):
    code, errors = run(["sysid", str(GOLDEN), *args, "--out", str(tmp_path / "out")], caplog)
    assert code == 2 and errors == [message], errors
    assert not (tmp_path / "out").exists()
