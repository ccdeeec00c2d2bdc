"""A user's own data set: `ddjax.register_dataset` from arrays and `dataset="npz:PATH"` train exactly as a
built-in data set holding the same arrays (label noise, subsampling, epoch order, augmentation of images); every
bad input is one line (exit code 2 from the CLI) before any run folder exists."""

import numpy as np
import pytest
from test_image_sweeps import image_dataset

import ddjax
from ddjax.config import Config, ConfigError, replace
from ddjax.data import registry
from ddjax.data.arrays import load_npz
from ddjax.data.datasets import make_gaussian
from ddjax.run import main
from ddjax.sweep import run_sweep


@pytest.fixture(autouse=True)
def restore_table():
    """Every test registers under its own names; the table is restored afterwards."""
    saved = dict(registry.DATASETS), dict(registry.REGISTERED_IN)
    yield
    for table, contents in zip((registry.DATASETS, registry.REGISTERED_IN), saved):
        table.clear()
        table.update(contents)


def _features_config(dataset, **changes):
    return replace(Config(), dataset=dataset, n_samples=200, train_fraction=0.5, input_dim=6, n_classes=3,
                   width=(2, 8), seed=(0, 1), n_train=(60,), label_noise=(0.2,), steps=12, batch_size=20,
                   sampling="epoch", n_evals=3, n_chunks=2, n_bootstrap=0, **changes)


def test_registered_features_train_as_the_built_in_data_set_holding_them(tmp_path):
    config = _features_config("gaussian")
    data = make_gaussian(200, 0.5, 6, 3, 0.0, 0)
    ddjax.register_dataset("my_features", data.x_train, data.y_train, data.x_test, data.y_test)
    np.savez(tmp_path / "mine.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
             y_test=data.y_test)
    built_in = run_sweep(config)
    for name in ("my_features", f"npz:{tmp_path / 'mine.npz'}"):
        mine = run_sweep(replace(config, dataset=name))
        for curve in built_in.curves:
            np.testing.assert_array_equal(mine.curves[curve], built_in.curves[curve])


def test_registered_images_augment_as_a_built_in_image_set(monkeypatch):
    data = image_dataset()
    monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: data
                        if config.dataset == "mnist" else registry.load_dataset(config))
    ddjax.register_dataset("my_images", data.x_train, data.y_train, data.x_test, data.y_test, n_classes=10)
    config = replace(Config(), dataset="mnist", width=(2, 5), seed=(0,), n_train=(40,), label_noise=(0.2,),
                     steps=10, batch_size=16, sampling="epoch", augment=True, n_evals=3, n_chunks=2,
                     optimizer="momentum", learning_rate=(1e-2,), n_bootstrap=0)
    built_in, mine = run_sweep(config), run_sweep(replace(config, dataset="my_images"))
    for curve in built_in.curves:
        np.testing.assert_array_equal(mine.curves[curve], built_in.curves[curve])
    with pytest.raises(ConfigError, match="n_train"):  # The split's own size bounds n_train.
        replace(config, dataset="my_images", n_train=(49,))


def _good():
    rng = np.random.default_rng(0)
    return {"x_train": rng.standard_normal((20, 3)), "y_train": rng.integers(0, 3, 20),
            "x_test": rng.standard_normal((10, 3)), "y_test": rng.integers(0, 3, 10)}


def _with(**changes):
    return {**_good(), **changes}


BAD = [
    (_with(x_test=np.zeros((10, 4))), "one example must have one shape"),
    (_with(y_train=np.zeros(19, int)), "expected [20]"),
    (_with(y_test=np.full(10, -1)), "label -1, outside [0"),
    (_with(y_train=np.arange(20) % 3 + 0.0), "labels must be integers"),
    (_with(x_train=np.array([[np.nan, 0, 0]] * 20)), "NaN or infinite"),
    (_with(x_test=np.array([[np.inf, 0, 0]] * 10)), "NaN or infinite"),
    (_with(x_test=np.zeros((0, 3)), y_test=np.zeros(0, int)), "x_test is empty"),
    (_with(x_train=np.zeros((20, 3, 2, 1, 1))), "allowed: features [n, d] or [n, height, width]"),
    (_with(x_train=np.array([["a"] * 3] * 20)), "allowed: real numbers"),
]


@pytest.mark.parametrize("arrays, fragment", BAD)
def test_bad_arrays_are_refused_in_one_line(arrays, fragment):
    with pytest.raises(ConfigError) as error:
        ddjax.register_dataset("bad", **arrays)
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert "bad" not in registry.DATASETS


def test_labels_beyond_the_given_classes_and_taken_names_are_refused():
    with pytest.raises(ConfigError, match=r"label 2, outside \[0, 2\)"):
        ddjax.register_dataset("few_classes", **_good(), n_classes=2)
    with pytest.raises(ConfigError, match="taken by a built-in data set"):
        ddjax.register_dataset("mnist", **_good())


@pytest.mark.parametrize("arrays, fragment", [
    *BAD[:7],
    ({k: v for k, v in _good().items() if k != "y_test"}, "the file has no y_test"),
    (None, "not a readable .npz"),
    ("missing", "cannot read"),
])
def test_bad_npz_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys, arrays, fragment):
    path = tmp_path / "data.npz"
    if isinstance(arrays, dict):
        np.savez(path, **arrays)
    elif arrays is None:
        path.write_bytes(b"not a zip file")
    out = tmp_path / "out"
    code = main(["mlp_mnist1d:smoke", "--set", f"dataset=npz:{path}", "--set", "n_train=5", "--set",
                 "batch_size=5", "--out", str(out), "--no-progress"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and fragment in error and "\n" not in error and not out.exists()


def _keras_layout(rng, n, side=8):
    """Keras's mnist.npz layout: uint8 images [n, side, side] without a channel axis, uint8 labels [n]."""
    return rng.integers(0, 256, (n, side, side), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def test_keras_grey_scale_layout_gains_a_channel_axis_and_trains(tmp_path, capsys):
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = _keras_layout(rng, 40), _keras_layout(rng, 20)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    registered = ddjax.register_dataset("keras_layout", x_train, y_train, x_test, y_test, n_classes=10)
    from_file = load_npz(f"npz:{path}")
    for data in (registered, from_file):
        assert data.x_train.shape == (40, 8, 8, 1) and data.x_test.shape == (20, 8, 8, 1)
        assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int32
        np.testing.assert_array_equal(data.x_train[..., 0], x_train)
    assert registry.dataset_info("keras_layout").images
    out = tmp_path / "out"
    code = main(["mlp_mnist1d:smoke", "--set", f"dataset=npz:{path}", "--set", "n_train=32", "--set",
                 "width=2,4", "--set", "seed=0", "--set", "steps=4", "--set", "batch_size=8", "--set",
                 "augment=true", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (out / "curves.npz").exists()
    config = replace(Config(), dataset="keras_layout", n_train=(32,), width=(2, 4), seed=(0,), steps=4,
                     batch_size=8, augment=True, n_evals=2, n_bootstrap=0)
    result = run_sweep(config)
    test_error = result.curves["test_error"]
    assert test_error.shape == (2, len(result.eval_steps)) and np.isfinite(test_error).all()


def test_real_valued_height_width_arrays_are_flattened_to_features():
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.standard_normal((20, 3, 2)), "y_train": rng.integers(0, 3, 20),
              "x_test": rng.standard_normal((10, 3, 2)), "y_test": rng.integers(0, 3, 10)}
    data = ddjax.register_dataset("flattened", **arrays)
    assert data.x_train.shape == (20, 6) and data.x_train.dtype == np.float32
    np.testing.assert_allclose(data.x_test, arrays["x_test"].reshape(10, 6).astype(np.float32))
    assert not registry.dataset_info("flattened").images
