"""benchmarks/gpu_check.sh: end to end at its tiny size on the CPU (one JSON, every part with figures), parts that
fail or overrun their limit recorded rather than fatal, the synthetic stand-in for MNIST-1D accepted by ddjax, and
the projection of a full CIFAR-10 run from one measured epoch."""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script(name: str):
    """A module of benchmarks/ (not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_gpu_check_tiny_runs_every_part_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--size", "tiny", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout + run.stderr
    check = json.loads(out.read_text())
    assert check["size"] == "tiny" and check["mnist1d"]["source"] == "installed"
    parts = check["parts"]
    assert set(parts) == {"device", "mlp", "conv", "cifar_epoch"}
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(parts, "ok"), \
        {name: part.get("output_tail") for name, part in parts.items() if part["status"] != "ok"}
    device = parts["device"]["result"]
    assert device["backend"] == "cpu" and device["device_kind"] and device["jax_version"]
    summary = check["summary"]
    for key in ("mlp_vmap_total_s", "mlp_serial_total_s", "mlp_largest_row_vmap_total_s",
                "mlp_largest_row_serial_total_s", "conv_vmap_total_s", "conv_serial_total_s",
                "cifar_epoch_compile_s", "cifar_epoch_run_s", "cifar_epoch_training_s",
                "cifar_full_run_projected_days", "cifar_full_run_projected_days_all_seeds"):
        assert _positive(summary[key]), (key, summary[key])
    assert summary["cifar_projection_covers_the_full_grid"] is False  # One width of 128 images: not Fig. 1.
    assert parts["cifar_epoch"]["result"]["measured"]["n_compiles"] == 1


def test_a_failing_or_overrunning_part_is_recorded_not_fatal(tmp_path):
    gpu_check = _script("gpu_check")
    env = dict(os.environ)
    slow = gpu_check.run_part("slow", [sys.executable, "-c", "import time; print('started', flush=True); "
                                                             "time.sleep(60)"], 1.0, env, None)
    assert slow["status"] == "timed out" and "1 s" in slow["error"] and "started" in slow["output_tail"]
    assert slow["seconds"] < 30
    broken = gpu_check.run_part("broken", [sys.executable, "-c", "raise SystemExit('no such device')"], 30, env,
                                tmp_path / "never.json")
    assert broken["status"] == "failed" and broken["error"] == "exit code 1"
    assert "no such device" in broken["output_tail"] and "result" not in broken
    # A CIFAR part stopped at its limit leaves the time each program ended in its output: the summary keeps them.
    stopped = {**slow, "output_tail": "# 1 done at 95.5 s\n# 2 done at 130.0 s\n"}
    assert gpu_check.summary({"cifar_epoch": stopped})["cifar_partial_marks"] == [[1, 95.5], [2, 130.0]]
    assert gpu_check.summary({"cifar_epoch": {**stopped, "status": "ok"}})["cifar_partial_marks"] is None


def test_without_mnist1d_the_conv_part_is_skipped_with_its_reason(tmp_path):
    gpu_check = _script("gpu_check")
    out = tmp_path / "check.json"
    assert gpu_check.main(["--parts", "conv", "--mnist1d", "synthetic", "--out", str(out)]) == 0
    check = json.loads(out.read_text())
    assert check["mnist1d"]["source"] == "synthetic"
    assert check["parts"]["conv"]["status"] == "skipped" and "mnist1d" in check["parts"]["conv"]["error"]
    assert check["summary"]["conv_vmap_total_s"] is None


def test_synthetic_mnist1d_has_the_shapes_the_mlp_benchmark_trains_on(tmp_path):
    from ddjax.config import Config, replace
    from ddjax.data.registry import load_dataset

    path = _script("gpu_check").synthetic_mnist1d(tmp_path / "signals.npz", 4000, 1000)
    config = replace(Config(), dataset=f"npz:{path}", n_train=(4000,))  # Checked by ddjax's reader.
    data = load_dataset(config)
    assert data.x_train.shape == (4000, 40) and data.x_test.shape == (1000, 40) and data.n_classes == 10
    assert np.bincount(data.y_train).tolist() == [400] * 10


def test_the_projection_of_fig1_from_one_measured_epoch():
    epoch = _script("cifar_epoch")
    full = epoch.load_full_config("resnet18_cifar10")
    config = epoch.epoch_config(full, tuple(full.width), 1, full.n_train[0])
    assert config.steps == 391 and full.steps == 4000 * 391 and len(full.seed) == 5
    measured = {"compile_s": 100.0, "run_s": 60.0, "padding_efficiency": 0.87}
    p = epoch.project(measured, config, full, 10000, "resnet18_cifar10")
    assert p["covers_the_full_grid"] and "1912.02292" in p["figure"] and p["full_epochs"] == 4000
    assert 0 < p["training_share_of_measured_run"] < 1
    # The run's time is the measured steps plus its 3 evaluations; the full run adds 31 evaluations to 4000 epochs.
    assert p["step_s"] * config.steps + 3 * p["evaluation_s"] == pytest.approx(measured["run_s"])
    members_s = p["projected_days"] * 86400 - measured["compile_s"]
    assert members_s == pytest.approx(full.steps * p["step_s"] + 31 * p["evaluation_s"])
    assert p["projected_days_all_seeds"] * 86400 - measured["compile_s"] == pytest.approx(5 * members_s)
    assert p["projected_days"] < p["projected_upper_days"]  # The upper bound keeps 3 evaluations in every epoch.
    assert p["training_share_from"].startswith("estimated")
    # One program: the middle chunks' time per step replaces the counted split.
    timed = epoch.project({**measured, "step_s_between_chunks": 0.1}, config, full, 10000, "resnet18_cifar10")
    assert timed["step_s"] == 0.1 and timed["training_share_from"].startswith("measured")
    assert 3 * timed["evaluation_s"] == pytest.approx(60.0 - 39.1)


def test_a_cifar_epoch_stopped_at_its_deadline_is_extrapolated_from_its_marks():
    epoch = _script("cifar_epoch")
    full = epoch.load_full_config("resnet18_cifar10")
    config = epoch.epoch_config(full, (1, 2), 1, 1280)  # 10 steps: 11 loop steps.
    # Consecutive programs pass every member's curves, NaN until trained; one program passes its loop step.
    curves = np.full((4, 3), np.nan)
    curves[:3] = 0.5
    assert epoch.fraction_done(3, {"curves": {"test_error": curves}}, config) == 0.75
    assert epoch.fraction_done(6, ("states",), config) == 6 / 11
    assert epoch.fraction_done(1, {"curves": {}}, config) is None
    # Programs of equal shape: 10 s each after 40 s of data and compile; four of them make the epoch.
    marks = [{"done": j, "seconds": 40.0 + 10 * j, "fraction": j / 4} for j in (1, 2, 3)]
    assert epoch.extrapolate(marks) == pytest.approx((40.0, 40.0))
    assert epoch.extrapolate(marks[:1]) is None
    assert epoch.extrapolate([{**m, "fraction": None} for m in marks]) is None
    # One program of 4 chunks of 3 loop steps (10 steps): the middle chunks hold training steps only.
    chunks = [{"done": done, "seconds": at} for done, at in ((3, 70.0), (6, 70.6), (9, 71.2), (11, 85.0))]
    assert epoch.step_between_chunks(chunks, 10) == pytest.approx(0.2)
    assert epoch.step_between_chunks(chunks[2:], 10) is None
