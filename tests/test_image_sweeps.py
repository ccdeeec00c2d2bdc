"""Sweeps on uint8 NHWC image data: every layout against serial mode (with augmentation and epoch order), inputs
standardized on the fly against the same inputs standardized on the host, closed form, label noise."""

import jax
import numpy as np
import pytest

from ddjax.config import Config, replace
from ddjax.data import Dataset, member_labels
from ddjax.data.augment import standardize_on_host
from ddjax.sweep import run_sweep
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.packed.model import packed_setup
from ddjax.training.streams import packed_data
from ddjax.training.trainer import build_program, train
from reference import assert_close, assert_same_curves

N_TRAIN, N_TEST = 48, 40


def image_dataset(shape=(8, 8, 3), seed=0) -> Dataset:
    """Tiny random uint8 NHWC images whose label is the brightest quadrant-channel (learnable, 10 classes)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N_TRAIN + N_TEST, *shape), dtype=np.uint8)
    quadrants = x.reshape(len(x), 2, shape[0] // 2, 2, shape[1] // 2, shape[2]).mean(axis=(2, 4))
    y = (quadrants.reshape(len(x), -1).argmax(1) % 10).astype(np.int32)
    return Dataset(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], 10)


def flat_dataset(images: Dataset, image) -> Dataset:
    """The same data standardized and flattened on the host: what the image path must compute on the fly."""
    return images._replace(x_train=standardize_on_host(images.x_train, image),
                           x_test=standardize_on_host(images.x_test, image))


@pytest.fixture
def image_sweep(monkeypatch):
    """A config of an image data set whose loading returns `image_dataset()` (the file loaders are not needed)."""
    data = image_dataset()
    monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: data)
    monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: data)
    # Momentum, not Adam: Adam's first step moves every read-out bias by exactly +-lr, so examples whose units are
    # all inactive tie between classes and an ulp decides their argmax (their losses still agree to 1e-6).
    config = replace(Config(), dataset="mnist", n_samples=1000, width=(2, 5, 12), seed=(0, 1), n_train=(N_TRAIN,),
                     label_noise=(0.2,), steps=24, batch_size=16, n_evals=4, n_chunks=2, optimizer="momentum",
                     learning_rate=(1e-2,), n_bootstrap=0)
    return config, data


def _assert_same_curves(got, want, n_train=N_TRAIN):
    """Float32 runs whose inputs are bit-identical and whose programs differ only in where inputs are standardized
    (so no reassociation): tight in float32, an argmax tie allowed."""
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(got.curves[name], want.curves[name], rtol=1e-5, atol=1e-6)
    for name, n in (("train_error", n_train), ("test_error", N_TEST)):  # Argmax decisions: one near-tie may flip.
        np.testing.assert_allclose(got.curves[name], want.curves[name], atol=1.01 / n)


def test_image_data_stay_uint8_on_the_device(image_sweep):
    config, data = image_sweep
    spec, shared = train_spec(config, data), shared_data(data, config)
    assert spec.input_dim == 8 * 8 * 3 and spec.image.shape == (8, 8, 3) and not spec.image.augment
    assert shared.x_train.dtype == np.uint8 and shared.x_train.shape == (N_TRAIN, 8, 8, 3)
    packed = packed_data(shared)
    assert packed.x_train.dtype == np.uint8 and packed.x_eval.shape == (N_TRAIN + N_TEST, 8, 8, 3)


@pytest.mark.parametrize("changes", [dict(augment=True), dict(augment=True, sampling="epoch", batch_size=20),
                                     dict(sampling="epoch", batch_size=0, optimizer="sgd", learning_rate=(0.05,), loss="squared")])
@pytest.mark.usefixtures("x64")
def test_image_sweep_vmapped_equals_serial(image_sweep, changes):
    config = replace(image_sweep[0], precision="float64", **changes)  # Compared in float64: tests/reference.py.
    serial = run_sweep(config, mode="serial")
    assert serial.n_compiles == len(config.width)
    for scheme in ("packed", "grouped"):
        vmapped = run_sweep(config, scheme=scheme)
        assert vmapped.n_compiles == 1 and vmapped.scheme == scheme
        assert_same_curves(vmapped.curves, serial.curves, N_TRAIN, N_TEST)


@pytest.mark.usefixtures("x64")
def test_augmented_members_have_the_parameters_of_serial_members(image_sweep):
    # Compared in float64 (tests/reference.py): in float32, Adam amplified reassociation to 8.6% on another CPU.
    config = replace(image_sweep[0], augment=True, depth=2, width=(2, 7), optimizer="adam", learning_rate=(3e-3,),
                     precision="float64")
    data = image_sweep[1]
    shared, spec, coords = shared_data(data, config), train_spec(config, data), expand_members(config)
    params, members = stack_members(coords, np.arange(len(coords["width"])), data, config, spec, max(config.width))
    program = build_program(spec)
    stacked = train(program, spec, (params,), (members,), shared).states[0]
    assert program.trace_count() == 1
    for i, width in enumerate(coords["width"].tolist()):
        p, m = jax.tree.map(lambda a: a[0], stack_members(coords, np.array([i]), data, config, spec, width))
        alone = train(build_program(spec, batched=False), spec, (p,), (m,), shared).states[0]
        hidden = [layer["w"] for layer in alone.params["hidden"]]
        in_sweep = [np.asarray(layer["w"][i]) for layer in stacked.params["hidden"]]
        assert in_sweep[0].dtype == np.float64
        assert_close(in_sweep[0][:, :width], hidden[0])
        assert_close(in_sweep[1][:width, :width], hidden[1])
        assert_close(np.asarray(stacked.params["out"]["w"][i])[:width], alone.params["out"]["w"])


@pytest.mark.parametrize("scheme", ["packed", "grouped"])
def test_images_train_as_their_standardized_flat_copy(image_sweep, monkeypatch, scheme):
    """Without augmentation, uint8 images standardized on the fly train exactly as float inputs standardized on
    the host would (the pre-image code path)."""
    config, data = image_sweep
    config = replace(config, sampling="epoch")
    images = run_sweep(config, scheme=scheme)
    flat = flat_dataset(data, train_spec(config, data).image)
    monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: flat)
    _assert_same_curves(images, run_sweep(config, scheme=scheme))


def test_augmentation_changes_training_not_evaluation(image_sweep):
    config = image_sweep[0]
    plain, augmented = run_sweep(config), run_sweep(replace(config, augment=True))
    for name in ("train_loss", "test_loss"):  # Evaluation reads the images unaugmented.
        np.testing.assert_array_equal(plain.curves[name][:, 0], augmented.curves[name][:, 0])
        assert not np.allclose(plain.curves[name][:, -1], augmented.curves[name][:, -1])


def test_min_norm_on_images_equals_the_host_standardized_copy(image_sweep, monkeypatch):
    config, data = image_sweep
    config = replace(config, method="min_norm", model="random_relu_features", loss="squared", width=(10, 48, 200),
                     label_noise=(0.0,))
    images = run_sweep(config)
    assert images.final("train_error")[-1] == 0  # 200 features interpolate the 48 examples.
    flat = flat_dataset(data, train_spec(config, data).image)
    monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: flat)
    reference = run_sweep(config)
    for name in images.curves:
        np.testing.assert_allclose(images.curves[name], reference.curves[name], rtol=1e-9, atol=1e-12)


def test_label_noise_on_images_is_fixed_per_seed_and_never_the_true_class(image_sweep):
    config, data = image_sweep
    labels = member_labels(data, N_TRAIN, 0.25, seed=1, data_seed=0)
    changed = labels != data.y_train
    assert changed.sum() == round(0.25 * N_TRAIN)  # Every drawn label is an incorrect class.
    np.testing.assert_array_equal(labels, member_labels(data, N_TRAIN, 0.25, seed=1, data_seed=0))
    assert not np.array_equal(labels, member_labels(data, N_TRAIN, 0.25, seed=1, data_seed=1))
    # In a packed sweep every stream holds its members' noisy training labels; the test labels are the clean ones,
    # shared by every stream.
    spec = train_spec(config, data)
    setup = packed_setup(config, data, spec, expand_members(config))
    assert setup.streams.labels.shape[2] == N_TRAIN
    np.testing.assert_array_equal(packed_data(shared_data(data, config)).y_test, data.y_test)
    assert (np.asarray(setup.streams.labels)[:, :, :N_TRAIN] != data.y_train).mean() == pytest.approx(0.2, abs=0.01)


def test_augmented_epoch_sampled_training_resumes_to_the_same_curves(image_sweep):
    """Batches and crops are pure functions of (seed, step): a run continued from a chunk's states ends where an
    uninterrupted one does, bit for bit."""
    config = replace(image_sweep[0], augment=True, sampling="epoch", batch_size=20, n_chunks=3, steps=12)
    data = image_sweep[1]
    shared, spec, coords = shared_data(data, config), train_spec(config, data), expand_members(config)
    params, members = stack_members(coords, np.arange(len(coords["width"])), data, config, spec, max(config.width))
    program, saved = build_program(spec), []
    whole = train(program, spec, (params,), (members,), shared,
                  on_chunk=lambda step, states: saved.append((step, states))).states[0]
    step, states = saved[0]
    assert 0 < step < config.steps
    resumed = train(program, spec, None, (members,), shared, states=states, start_step=step).states[0]
    assert program.trace_count() == 1
    for name in whole.curves:
        np.testing.assert_array_equal(whole.curves[name], resumed.curves[name])


def test_deeper_mlp_on_images_block_packed_equals_serial(image_sweep):
    # The block-packed layout (auto for depth >= 2) reads the images through the same standardize, augment and
    # bias-input path as the packed one.
    config = replace(image_sweep[0], depth=2, augment=True, sampling="epoch", batch_size=20)
    serial = run_sweep(config, mode="serial")
    vmapped = run_sweep(config)
    assert vmapped.scheme == "blockpacked" and vmapped.n_compiles == 1
    _assert_same_curves(vmapped, serial)
