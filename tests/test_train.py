"""The vmapped trainer against the serial computation of the same member, padding, and compile counts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ddjax.config import replace
from ddjax.data.registry import load_dataset
from ddjax.models.registry import get_model
from ddjax.sweep import run_sweep
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.metrics import example_losses
from ddjax.training.trainer import build_program, train
from reference import assert_close, assert_same_curves


def _unpad(params, width):
    """The leading block of a padded parameter tree: every axis of padded length is cut to `width`."""
    max_width = params["out"]["w"].shape[0]
    return jax.tree.map(lambda a: a[tuple(slice(0, width) if n == max_width else slice(None) for n in a.shape)],
                        params)


def _padding_mask(shape, width, max_width):
    """True where an entry belongs to a padded unit (any axis of length max_width indexed past width)."""
    mask = np.zeros(shape, bool)
    for axis, n in enumerate(shape):
        if n == max_width:
            index = [slice(None)] * len(shape)
            index[axis] = slice(width, None)
            mask[tuple(index)] = True
    return mask


def _vmapped_and_serial(config):
    dataset = load_dataset(config)
    data, spec, coords = shared_data(dataset, config), train_spec(config, dataset), expand_members(config)
    n_members, max_width = len(coords["width"]), max(config.width)
    params, members = stack_members(coords, np.arange(n_members), dataset, config, spec, max_width)
    stacked = train(build_program(spec), spec, (params,), (members,), data).states[0]
    serial, programs = [], {}
    for i in range(n_members):
        width = int(coords["width"][i])
        program = programs.setdefault(width, build_program(spec, batched=False))
        p, m = jax.tree.map(lambda a: a[0], stack_members(coords, np.array([i]), dataset, config, spec, width))
        serial.append(train(program, spec, (p,), (m,), data).states[0])
    return coords, stacked, serial


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(optimizer="sgd", loss="squared", batch_size=0),
    dict(optimizer="momentum", depth=2, width=(1, 5, 12)),
    dict(model="random_relu_features", loss="squared", optimizer="sgd", learning_rate=(0.5,)),
])
@pytest.mark.usefixtures("x64")
def test_vmapped_member_equals_serial_member(tiny_config, overrides):
    config = replace(tiny_config, precision="float64", **overrides)  # Compared in float64: tests/reference.py.
    coords, stacked, serial = _vmapped_and_serial(config)
    for i, alone in enumerate(serial):
        width = int(coords["width"][i])
        in_sweep = _unpad(jax.tree.map(lambda a: a[i], stacked.params), width)
        for a, b in zip(jax.tree.leaves(in_sweep), jax.tree.leaves(alone.params)):
            assert a.shape == b.shape and a.dtype == np.float64
            assert_close(a, b)
        curves = {name: stacked.curves[name][i] for name in stacked.curves}
        assert_same_curves(curves, alone.curves, int(coords["n_train"][i]), len(load_dataset(config).y_test))
    assert {int(w) for w in coords["width"]} >= {min(config.width), max(config.width)}


def test_padded_units_get_zero_gradient_and_keep_init(tiny_config):
    config = replace(tiny_config, width=(5,), seed=(0,), depth=2)
    dataset = load_dataset(config)
    data, spec, coords = shared_data(dataset, config), train_spec(config, dataset), expand_members(config)
    initial, members = stack_members(coords, np.arange(1), dataset, config, spec, max_width=16)
    final = train(build_program(spec), spec, (initial,), (members,), data).states[0].params
    model, params = get_model("mlp", depth=2), initial["params"]

    def loss(p):
        return jnp.sum(model.apply(p, {}, 5, data.x_train[:32], True)[0] ** 2)

    grads = jax.grad(loss)(jax.tree.map(lambda a: a[0], final))
    for grad in jax.tree.leaves(grads):
        assert np.all(np.asarray(grad)[_padding_mask(grad.shape, 5, 16)] == 0.0)
    for before, after in zip(jax.tree.leaves(params), jax.tree.leaves(final)):
        padded = _padding_mask(before.shape[1:], 5, 16)
        np.testing.assert_array_equal(np.asarray(before)[0][padded], np.asarray(after)[0][padded])
    assert not np.allclose(params["out"]["w"], final["out"]["w"])  # The real units did train.


@pytest.mark.usefixtures("x64")
def test_outputs_do_not_depend_on_padded_width():
    # In float64: the padded matmuls sum more (zero) terms, so float32 logits near 0 may differ in relative terms
    # by a few ulps on another CPU; garbage leaking from padding would differ by far more than 1e-12.
    model = get_model("mlp", depth=2)
    x = jnp.linspace(-1, 1, 24, dtype=jnp.float64).reshape(3, 8)
    narrow = model.init(seed=3, width=5, max_width=5, input_dim=8, n_classes=4)["params"]
    wide = model.init(seed=3, width=5, max_width=40, input_dim=8, n_classes=4)["params"]
    narrow, wide = (jax.tree.map(lambda a: np.asarray(a, np.float64), p) for p in (narrow, wide))
    wide["hidden"][1]["w"][20:, 20:] = 7.0  # Garbage in padded rows and columns must not leak into outputs.
    np.testing.assert_allclose(model.apply(narrow, {}, 5, x, False)[0], model.apply(wide, {}, 5, x, False)[0],
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("widths", [(2, 5), (1, 2, 3, 5, 8, 13, 21)])
def test_vmapped_sweep_compiles_once(tiny_config, widths):
    result = run_sweep(replace(tiny_config, width=widths, seed=(0, 1, 2)))
    assert result.n_compiles == 1
    assert result.curves["test_error"].shape == (3 * len(widths), len(result.eval_steps))


def test_serial_mode_compiles_once_per_width(tiny_config):
    result = run_sweep(replace(tiny_config, width=(2, 5), seed=(0, 1)), mode="serial")
    assert result.n_compiles == 2


def test_per_member_learning_rate(tiny_config):
    config = replace(tiny_config, width=(8,), seed=(0,), learning_rate=(1e-4, 1e-1), steps=20)
    result = run_sweep(config)
    slow, fast = result.curves["train_loss"]
    assert abs(slow[-1] - slow[0]) < abs(fast[-1] - fast[0])


def test_training_fits_a_small_task(tiny_config):
    config = replace(tiny_config, width=(64,), seed=(0,), label_noise=(0.0,), steps=300, learning_rate=(1e-2,))
    result = run_sweep(config)
    assert result.final("train_error")[0] < 0.1
    assert result.curves["train_loss"][0, -1] < 0.5 * result.curves["train_loss"][0, 0]


@pytest.mark.parametrize("axis", [-1, 1])
def test_cross_entropy_matches_optax_in_value_and_gradient(axis):
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(4, 10, 6)).astype(np.float32) * 5)
    labels = jnp.asarray(rng.integers(0, 10 if axis == 1 else 6, size=(4, 6) if axis == 1 else (4, 10)))
    weights = jnp.asarray(rng.random(6 if axis == 1 else 10).astype(np.float32))

    def ours(x):
        return jnp.sum(weights * example_losses(x, labels, "cross_entropy", axis=axis))

    def reference(x):
        moved = jnp.moveaxis(x, axis, -1)
        return jnp.sum(weights * optax.softmax_cross_entropy_with_integer_labels(moved, labels))

    np.testing.assert_allclose(ours(logits), reference(logits), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(ours)(logits), jax.grad(reference)(logits), rtol=1e-5, atol=1e-6)
