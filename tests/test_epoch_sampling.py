"""Batch index streams: epochs visit every example once in a fresh order; vmapped equals serial; the config keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import ConfigError, config_from_dict, replace, steps_per_epoch, to_dict
from ddjax.data.registry import load_dataset
from ddjax.data.sampling import batch_indices, epoch_batch, epoch_permutation, sample_batch
from ddjax.sweep import run_sweep
from ddjax.training.spec import CURVES
from reference import assert_same_curves


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17, 100, 257, 4099])
def test_epoch_permutation_is_a_bijection_that_changes_with_seed_and_epoch(n):
    order = np.asarray(epoch_permutation(7, 3, jnp.arange(n), n))
    assert sorted(order.tolist()) == list(range(n))
    np.testing.assert_array_equal(order, epoch_permutation(7, 3, jnp.arange(n), n))  # A pure function.
    if n >= 16:
        assert not np.array_equal(order, np.asarray(epoch_permutation(7, 4, jnp.arange(n), n)))
        assert not np.array_equal(order, np.asarray(epoch_permutation(8, 3, jnp.arange(n), n)))
        assert not np.array_equal(order, np.arange(n))


@pytest.mark.parametrize("n, batch_size", [(64, 16), (100, 16), (100, 1), (37, 37), (50, 7), (5, 4)])
def test_every_example_is_visited_exactly_once_per_epoch(n, batch_size):
    per_epoch = -(-n // batch_size)
    batch = jax.jit(lambda step: epoch_batch(3, step, batch_size, n))
    orders = []
    for epoch in range(3):
        visits, order = np.zeros(n, int), []
        for step in range(epoch * per_epoch, (epoch + 1) * per_epoch):
            index, weights = (np.asarray(a) for a in batch(step))
            real = weights > 0
            np.testing.assert_allclose(weights[real], 1 / real.sum(), rtol=1e-6)  # A mean over the real examples.
            assert real.sum() == min(batch_size, n - (step - epoch * per_epoch) * batch_size)  # Only the last is partial.
            np.add.at(visits, index[real], 1)
            order.extend(index[real].tolist())
        np.testing.assert_array_equal(visits, np.ones(n, int))
        orders.append(order)
    if n > 5:
        assert orders[0] != orders[1] != orders[2]


def test_replacement_sampling_is_the_unchanged_hash_draw():
    index, weights = sample_batch("replacement", 5, 11, 32, 100)
    np.testing.assert_array_equal(index, batch_indices(5, 11, 32, 100))
    np.testing.assert_array_equal(weights, np.full(32, 1 / 32, np.float32))
    # The hash itself, written out in numpy: a change to it would change every existing run's batches.
    def mix(h):
        h = ((h ^ (h >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
        h = ((h ^ (h >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    base = mix((5 * 0x9E3779B9 + mix(np.uint64(12))) & 0xFFFFFFFF)
    expected = mix(base ^ ((np.arange(32, dtype=np.uint64) * 0x27D4EB2F + 1) & 0xFFFFFFFF)) % 100
    np.testing.assert_array_equal(index, expected)


@pytest.mark.parametrize("overrides", [
    dict(),  # n_train 200, batch 16: 13 steps an epoch, the last of 8 examples.
    dict(n_train=(150, 200), optimizer="sgd", loss="squared"),  # Epochs of 10 and 13 steps side by side.
    dict(batch_size=0, optimizer="sgd"),  # Full batch: every step is an epoch.
])
@pytest.mark.usefixtures("x64")
def test_epoch_sampling_vmapped_equals_serial(tiny_config, overrides):
    config = replace(tiny_config, sampling="epoch", learning_rate=(3e-3,), width=(3, 20), precision="float64",
                     **overrides)  # Compared in float64: tests/reference.py.
    serial = run_sweep(config, mode="serial")
    for scheme in ("packed", "grouped"):
        vmapped = run_sweep(config, scheme=scheme)
        assert vmapped.n_compiles == 1
        assert_same_curves(vmapped.curves, serial.curves, vmapped.coords["n_train"][:, None],
                           len(load_dataset(config).y_test))


def test_epoch_sampling_trains_differently_from_replacement(tiny_config):
    a = run_sweep(replace(tiny_config, width=(8,), seed=(0,)))
    b = run_sweep(replace(tiny_config, width=(8,), seed=(0,), sampling="epoch"))
    assert not np.allclose(a.curves["train_loss"][:, 1:], b.curves["train_loss"][:, 1:])
    assert set(CURVES) <= set(b.curves)


def test_epochs_set_steps(tiny_config):
    config = replace(tiny_config, sampling="epoch", epochs=3)  # n_train 200, batch 16: 13 steps an epoch.
    assert config.steps == 39 and steps_per_epoch(config) == 13
    assert replace(config, batch_size=50).steps == 12  # Steps follow the epoch length.
    assert replace(config, batch_size=0).steps == 3
    assert config_from_dict(to_dict(config)) == config  # A stored config.json (both keys) loads back.
    assert steps_per_epoch(replace(tiny_config, sampling="epoch", n_train=(150, 200))) is None
    assert steps_per_epoch(tiny_config) is None  # With replacement there are no epochs.


@pytest.mark.parametrize("changes, key", [
    (dict(sampling="shuffle"), "sampling"),
    (dict(epochs=-1), "epochs"),
    (dict(epochs=2), "epochs"),  # Sampling with replacement has no epochs.
    (dict(sampling="epoch", epochs=2, n_train=(150, 200)), "epochs"),  # 10 and 13 steps an epoch.
    (dict(sampling="epoch", epochs=2, steps=100), "steps"),  # 2 epochs are 26 steps.
    (dict(augment=True), "augment"),  # Gaussian data are no images.
])
def test_bad_sampling_keys_are_one_line_errors(tiny_config, changes, key):
    with pytest.raises(ConfigError, match=f"^{key}=") as error:
        replace(tiny_config, **changes)
    assert "\n" not in str(error.value)


def test_steps_contradicting_epochs_is_refused_and_epochs_zero_frees_steps(tiny_config):
    config = replace(tiny_config, sampling="epoch", epochs=2)
    with pytest.raises(ConfigError, match="give one of steps and epochs"):
        replace(config, steps=50)
    assert replace(config, steps=50, epochs=0).steps == 50


def test_closed_form_refuses_batch_keys():
    from ddjax.experiment import experiment_config

    config = experiment_config("random_features", "smoke")
    for changes in (dict(sampling="epoch"), dict(augment=True)):
        with pytest.raises(ConfigError, match="closed form draws no batches"):
            replace(config, **changes)


def test_epoch_sampled_reports_and_figures_count_epochs(tiny_config, tmp_path):
    from ddjax.runs.outputs import summary_lines, write_analysis

    config = replace(tiny_config, width=(3, 20), sampling="epoch", epochs=6, n_evals=6)  # 13 steps an epoch.
    report = write_analysis(tmp_path, run_sweep(config), config, "epochs", wall_seconds=1.0)
    entries = report["epochwise"]
    assert entries and all(entry["steps_per_epoch"] == 13 for entry in entries)
    for entry in entries:
        for key in ("peak", "first_min", "later_min"):
            if entry[key] is not None:
                assert entry[key]["epoch"] == entry[key]["step"] / 13
    assert (tmp_path / "epochwise.png").read_bytes()[:4] == b"\x89PNG"
    lines = summary_lines(report)
    for entry in entries:
        said = f"peak at epoch {entry['peak']['epoch']:g}" if entry["peak"] else entry["description"]
        assert any(said in line for line in lines)
    unsampled = write_analysis(tmp_path / "r", run_sweep(replace(config, sampling="replacement", epochs=0)),
                               replace(config, sampling="replacement", epochs=0), "steps", wall_seconds=1.0)
    assert all("steps_per_epoch" not in entry for entry in unsampled["epochwise"])


def test_plot_epochwise_labels_epochs(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from ddjax.runs.figures import plot_epochwise

    labels = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: labels.extend(ax.get_xlabel() for ax in fig.axes))
    steps, errors = np.array([0, 10, 20, 40]), np.full((2, 4), 0.5)
    plot_epochwise(tmp_path / "a.png", [1, 2], steps, errors, steps_per_epoch=10)
    plot_epochwise(tmp_path / "b.png", [1, 2], steps, errors)
    assert labels[:2] == ["epoch", "epoch"] and labels[3:5] == ["training step", "training step"]
