"""The experiment modules of the double-descent literature: docstrings, smoke runs and re-analysis."""

import json
import shutil

import numpy as np
import pytest

from ddjax.experiment import experiment_config, load_experiment, run_experiment
from ddjax.run import main
from ddjax.runs.files import OUTPUT_FILES

EXPERIMENTS = ("random_features", "linear_samplewise", "linear_modelwise", "linear_epochwise", "mlp_mnist1d_epochwise",
               "mlp_mnist1d_samplewise", "cnn_mnist1d", "custom_model")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_docstring_gives_command_measured_runtime_and_result(name):
    doc = load_experiment(name).__doc__
    assert f"python -m ddjax.run {name}" in doc and f"{name}:smoke" in doc
    assert "Runtime:" in doc and "Result:" in doc and "TBD" not in doc and "CPU" in doc


def _smoke(name, tmp_path):
    out = tmp_path / name
    report = run_experiment(experiment_config(name, "smoke"), out, name=f"{name}-smoke")
    assert set(OUTPUT_FILES) <= {p.name for p in out.iterdir()}
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    return out, report


def test_random_features_smoke_peaks_at_n_and_reanalyses_without_training(tmp_path, capsys):
    out, report = _smoke("random_features", tmp_path)
    config = experiment_config("random_features", "smoke")
    n, grid = config.n_train[0], sorted(config.width)
    assert abs(grid.index(report["test_error_peak"]["x"]) - grid.index(n)) <= 1
    assert report["weight_norm"][0]["peak"]["x"] == n and report["bootstrap"]["n_resamples"] == 50
    curves = np.load(out / "curves.npz")
    assert curves["weight_norm"].shape == (len(grid) * len(config.seed), 1)
    (out / "curves.png").unlink()
    capsys.readouterr()
    assert main(["--report", str(out)]) == 0
    assert (out / "curves.png").exists() and "interpolation threshold" in capsys.readouterr().out
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    # A run folder can be moved, and needs only its config.json and curves.npz.
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    (moved / "report.json").unlink()
    assert main(["--report", str(moved)]) == 0
    again = json.loads((moved / "report.json").read_text())
    for key in ("interpolation_threshold", "test_error_peak", "double_descent", "bootstrap", "weight_norm"):
        assert again[key] == json.loads(json.dumps(report[key]))


def test_report_of_a_folder_that_is_not_a_run_exits_2(tmp_path, capsys):
    assert main(["--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a finished run: it has no config.json" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", ["linear_samplewise", "linear_modelwise"])
def test_linear_smoke_reports_measured_against_theory(tmp_path, name):
    _, report = _smoke(name, tmp_path)
    config = experiment_config(name, "smoke")
    theory = report["theory"][0]
    assert len(theory["points"]) == max(len(config.width), len(config.n_train))
    # 4 seeds and p <= 160 allow only a loose check here; the tight one is in test_theory.py.
    assert theory["max_relative_deviation"] < 0.5
    assert report["double_descent"]


def test_epochwise_smoke_writes_the_heatmap(tmp_path):
    out, report = _smoke("mlp_mnist1d_epochwise", tmp_path)
    config = experiment_config("mlp_mnist1d_epochwise", "smoke")
    assert [e["fixed"]["width"] for e in report["epochwise"]] == sorted(config.width)
    assert (out / "epochwise.png").read_bytes()[:4] == b"\x89PNG"


def test_cnn_mnist1d_smoke_trains_every_width_in_one_program(tmp_path):
    out, report = _smoke("cnn_mnist1d", tmp_path)
    curves = np.load(out / "curves.npz")
    assert curves["test_error"].shape[0] == len(experiment_config("cnn_mnist1d", "smoke").width)
    assert np.all(np.isfinite(curves["train_loss"]))


def test_samplewise_smoke_reports_emc_per_width(tmp_path):
    _, report = _smoke("mlp_mnist1d_samplewise", tmp_path)
    config = experiment_config("mlp_mnist1d_samplewise", "smoke")
    assert report["x_axis"] == "n_train"
    assert [e["fixed"]["width"] for e in report["effective_model_complexity"]] == sorted(config.width)
    assert all("emc" in e and "more_data_hurts" in e for e in report["effective_model_complexity"])
