"""The command line: a smoke run writes its four files; bad input exits 2 with one line and writes nothing."""

import contextlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ddjax.experiment import OUTPUT_FILES
from ddjax.run import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ddjax.run", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_smoke_run_writes_the_four_files(tmp_path):
    out = tmp_path / "run"
    done = _run_cli("mlp_mnist1d:smoke", "--out", str(out), "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Runs with >= 3 eval steps also get the epoch-wise figure.
    assert sorted(p.name for p in out.iterdir()) == sorted((*OUTPUT_FILES, "epochwise.png"))
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"] == "mlp_mnist1d-smoke" and config["jax_version"] and config["devices"]
    report = json.loads((out / "report.json").read_text())
    assert {"interpolation_threshold", "test_error_peak", "overparameterized_regime", "under_min", "over_min",
            "double_descent"} <= set(report)
    curves = np.load(out / "curves.npz")
    n_members = len(config["config"]["width"]) * len(config["config"]["seed"])
    assert curves["test_error"].shape == (n_members, len(curves["eval_steps"]))
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "interpolation threshold" in done.stdout


def test_bad_input_from_a_subprocess_exits_2_with_one_line(tmp_path):
    done = _run_cli("no_such_experiment", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown experiment 'no_such_experiment'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, fragment", [
    (["nope"], "unknown experiment 'nope'; available: "),
    (["mlp_mnist1d:huge"], "unknown variant 'huge'"),
    (["mlp_mnist1d:smoke", "--set", "widht=3"], "unknown config key 'widht'"),
    (["mlp_mnist1d:smoke", "--set", "steps=ten"], "steps='ten': expected int"),
    (["mlp_mnist1d:smoke", "--set", "width=-1"], "width=(-1,) is not allowed"),
    (["mlp_mnist1d:smoke", "--set", "steps"], "malformed --set 'steps'"),
    (["mlp_mnist1d:smoke", "--set", "label_noise=1.5"], "label_noise=(1.5,) is not allowed"),
    (["mlp_mnist1d:smoke", "--set", "batch_size=100000"], "batch_size=100000 is not allowed"),
    (["mlp_mnist1d:smoke", "--mode", "turbo"], "invalid choice: 'turbo'"),
    (["missing/file.py"], "experiment file 'missing/file.py' does not exist"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if "--mode" in args else contextlib.nullcontext():
        code = main([*args, "--out", str(out), "--no-progress"])
        assert code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.strip().count("\n") == 0
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_folder_is_refused_without_force(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["mlp_mnist1d:smoke", "--out", str(out), "--no-progress"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"

