"""The image-data experiments end to end on tiny files in the real formats, put in a temporary cache."""

import json

import numpy as np
import pytest
from image_files import clean_image_cache, install_tiny_image_set

from ddjax.experiment import experiment_config, load_experiment, run_experiment
from ddjax.runs.files import OUTPUT_FILES

__all__ = ["clean_image_cache"]
pytestmark = pytest.mark.usefixtures("clean_image_cache")


@pytest.mark.parametrize("name", ["mlp_mnist", "random_features_mnist"])
def test_docstring_gives_command_measured_runtime_and_result_on_real_mnist(name):
    doc = load_experiment(name).__doc__
    assert f"python -m ddjax.run {name}" in doc and f"{name}:smoke" in doc
    assert "real MNIST" in doc and "Runtime:" in doc and "Result:" in doc and "double_descent:" in doc
    assert "AMD EPYC" in doc or "Intel Xeon" in doc  # The CPU each figure was measured on is named.


def _smoke(name, tmp_path, monkeypatch):
    install_tiny_image_set(monkeypatch, tmp_path, "mnist", n_train=300, n_test=100)
    out = tmp_path / name
    report = run_experiment(experiment_config(name, "smoke"), out, name=f"{name}-smoke")
    assert set(OUTPUT_FILES) <= {p.name for p in out.iterdir()}
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    return out, report


def test_mlp_mnist_smoke_trains_on_the_tiny_idx_files(tmp_path, monkeypatch):
    out, report = _smoke("mlp_mnist", tmp_path, monkeypatch)
    config = experiment_config("mlp_mnist", "smoke")
    curves = np.load(out / "curves.npz")
    assert curves["test_error"].shape[0] == len(config.width) * len(config.seed)
    # The tiny images carry their class as a bright square: the widest members learn it.
    assert np.nanmin(curves["test_error"][:, -1]) < 0.5


def test_random_features_mnist_smoke_peaks_at_n(tmp_path, monkeypatch):
    out, report = _smoke("random_features_mnist", tmp_path, monkeypatch)
    config = experiment_config("random_features_mnist", "smoke")
    n, grid = config.n_train[0], sorted(config.width)
    assert abs(grid.index(report["test_error_peak"]["x"]) - grid.index(n)) <= 1
    assert report["weight_norm"][0]["peak"]["x"] == n
    assert np.load(out / "curves.npz")["weight_norm"].shape == (len(grid) * len(config.seed), 1)


@pytest.mark.parametrize("name", ["cnn5_cifar10", "resnet18_cifar10"])
def test_convolutional_cifar_experiments_give_a_projected_cost(name):
    doc = load_experiment(name).__doc__
    assert f"python -m ddjax.run {name}" in doc and f"{name}:smoke" in doc
    assert "Runtime:  projected, not measured" in doc and "Result:   expected, not measured" in doc
    assert experiment_config(name, "smoke").steps == 2  # One epoch of 60 images in batches of 30.


# resnet18_cifar10:smoke runs the same way but takes about 2 minutes on the loaded 2-core CPU (compiling
# ResNet18 at 32 x 32); its family trains through the trainer in tests/test_conv.py on 8 x 8 images.
@pytest.mark.parametrize("name", ["cnn5_cifar10"])
def test_convolutional_cifar_experiments_smoke_on_the_tiny_tarball(name, tmp_path, monkeypatch):
    install_tiny_image_set(monkeypatch, tmp_path, "cifar10", n_train=60, n_test=30)
    out = tmp_path / name
    run_experiment(experiment_config(name, "smoke"), out, name=f"{name}-smoke")
    curves = np.load(out / "curves.npz")
    assert curves["test_error"].shape[0] == 2 and np.all(np.isfinite(curves["train_loss"]))
