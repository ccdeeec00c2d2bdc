"""Convolutional families: parameter counts, the two convolution forms, padding, per-member BatchNorm, sweeps
against serial members, one compile, resuming with BatchNorm state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ddjax.config import Config, replace
from ddjax.data import Dataset
from ddjax.models.conv import conv_family, parameter_count
from ddjax.models.conv_counts import cnn1d_macs, cnn5_macs, resnet18_macs
from ddjax.models.conv_ops import conv_form, patch_conv
from ddjax.models.registry import forward_macs, get_model
from ddjax.models.registry import parameter_count as registry_parameter_count
from ddjax.sweep import run_sweep
from ddjax.errors import ConfigError
from ddjax.training.layouts import choose_layout
from ddjax.training.layouts import mapped as mapped_layout
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.trainer import build_program, map_members, train
from reference import assert_same_curves

N_TRAIN, N_TEST = 48, 40


def test_parameter_counts_at_known_sizes():
    # cnn1d at width 4: convs 1*5*4+4, 4*3*4+4 twice; linear 5*4*10+10.
    assert parameter_count(conv_family("cnn1d", (40,)), 4) == 24 + 52 + 52 + 210
    # cnn5 at k=4: convs with bias (3->4->8->16->32, 3x3), BatchNorm scale and offset, linear 32 -> 10.
    assert parameter_count(conv_family("cnn5", (32, 32, 3)), 4) == 112 + 296 + 1168 + 4640 + 120 + 330
    # The standard preactivation ResNet18 (kuangliu/pytorch-cifar's PreActResNet18) for 10 classes.
    assert parameter_count(conv_family("resnet18", (32, 32, 3)), 64) == 11_171_146


@pytest.mark.parametrize("name, shape, widths", [("cnn1d", (40,), (1, 3, 100)), ("cnn5", (32, 32, 3), (1, 3)),
                                                  ("resnet18", (32, 32, 3), (1, 2))])
def test_registry_parameter_counts_equal_the_initialized_variables(name, shape, widths):
    # Memory planning charges these counts: parameters plus BatchNorm's running statistics, from shapes alone.
    family = get_model(name, input_shape=shape)
    for width in widths:
        variables = family.init(0, width, width, 0, 10)
        assert registry_parameter_count(name, width, 0, 10, input_shape=shape) == sum(
            leaf.size for leaf in jax.tree.leaves(variables))


def test_mac_counts_follow_the_layers():
    assert cnn1d_macs(4, (40,), 10) == 19 * 5 * 4 + 10 * 3 * 16 + 5 * 3 * 16 + 5 * 4 * 10
    assert forward_macs("cnn1d", 4, 40, 10) == cnn1d_macs(4, (40,), 10)
    assert cnn5_macs(1, (32, 32, 3), 10) == 1024 * 27 + 1024 * 18 + 256 * 72 + 64 * 288 + 80
    assert resnet18_macs(64, (32, 32, 3), 10) == pytest.approx(0.556e9, rel=0.01)  # The known 0.56 GMAC.


@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((3, 40, 1), (5,), (2,), [(1, 1)]), ((2, 19, 4), (3,), (2,), [(1, 1)]),
    ((2, 8, 8, 3), (3, 3), (1, 1), [(1, 1), (1, 1)]), ((2, 8, 8, 3), (3, 3), (2, 2), [(1, 1), (1, 1)]),
    ((2, 8, 8, 3), (1, 1), (2, 2), [(0, 0), (0, 0)]), ((2, 7, 7, 2), (3, 3), (2, 2), "SAME")])
def test_patch_matmuls_equal_xla_convolution(shape, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal(kernel + (shape[-1], 5)), jnp.float32)
    spec = ("NHWC", "HWIO", "NHWC") if len(kernel) == 2 else ("NWC", "WIO", "NWC")
    numbers = lax.conv_dimension_numbers(x.shape, w.shape, spec)
    want = lax.conv_general_dilated(x, w, stride, padding, dimension_numbers=numbers, precision="highest")
    np.testing.assert_allclose(patch_conv(x, w, stride, padding, precision="highest"), want, rtol=1e-5, atol=1e-5)


def test_convolution_form_per_backend_with_override(monkeypatch):
    monkeypatch.delenv("DDJAX_CONV", raising=False)
    assert conv_form() == ("patches" if jax.default_backend() == "cpu" else "lax")
    monkeypatch.setenv("DDJAX_CONV", "lax")
    assert conv_form() == "lax"
    monkeypatch.setenv("DDJAX_CONV", "fft")
    with pytest.raises(ValueError, match="unknown convolution form 'fft'.*allowed: patches, lax"):
        conv_form()


FAMILIES = [("cnn1d", (40,)), ("cnn5", (32, 32, 3)), ("resnet18", (8, 8, 3))]


def _batch(shape, n=6, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal((n, int(np.prod(shape)))), jnp.float32)


@pytest.mark.parametrize("name,shape", FAMILIES)
def test_both_convolution_forms_give_the_same_family(name, shape):
    patches, xla = conv_family(name, shape, conv="patches"), conv_family(name, shape, conv="lax")
    v = patches.init(3, 2, 3, 0, 10)
    x = _batch(shape)
    for train in (True, False):
        got, got_state = patches.apply(v["params"], v["model_state"], 2, x, train)
        want, want_state = xla.apply(v["params"], v["model_state"], 2, x, train)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), got_state, want_state)


@pytest.mark.parametrize("name,shape", FAMILIES)
def test_padded_channels_get_zero_gradient_and_change_no_output(name, shape):
    family, width = conv_family(name, shape), 2
    padded, alone = family.init(0, width, 4, 0, 10), family.init(0, width, width, 0, 10)
    x, labels = _batch(shape), jnp.arange(6) % 10

    def loss(params, variables):
        logits, state = family.apply(params, variables["model_state"], width, x, True)
        return jnp.mean(-jax.nn.log_softmax(logits)[jnp.arange(6), labels]), (logits, state)

    gradient = jax.jit(jax.grad(loss, has_aux=True))
    grads, (logits, state) = gradient(padded["params"], padded)
    _, (want, want_state) = gradient(alone["params"], alone)
    # Padding changes only the order of float sums: agreement to 1e-5 of the logits' scale.
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want))))
    real = jax.tree.map(lambda g, a: np.ones(np.shape(a), bool), grads, alone["params"])

    def padding_only(grad, small):
        inside = np.zeros(np.shape(grad), bool)
        inside[tuple(slice(0, s) for s in np.shape(small))] = True
        return np.asarray(grad)[~inside]

    for leaf in jax.tree.leaves(jax.tree.map(padding_only, grads, alone["params"])):
        assert np.all(leaf == 0.0)
    for leaf in jax.tree.leaves(jax.tree.map(padding_only, state, alone["model_state"])):
        assert np.all(np.isfinite(leaf))
    assert real  # Every parameter was compared.


@pytest.mark.parametrize("name,shape", [("cnn5", (32, 32, 3)), ("resnet18", (8, 8, 3))])
def test_batchnorm_is_per_member_bit_for_bit(name, shape):
    """Change member A's data: member B's outputs, gradients and running statistics do not move by one bit."""
    family = conv_family(name, shape)
    members = [family.init(seed, 2, 2, 0, 10) for seed in (0, 1)]
    params, states = jax.tree.map(lambda *a: jnp.stack(a), *[m["params"] for m in members]), \
        jax.tree.map(lambda *a: jnp.stack(a), *[m["model_state"] for m in members])
    labels = jnp.arange(6) % 10

    def member(params, state, x):
        def loss(params):
            logits, new_state = family.apply(params, state, 2, x, True)
            return jnp.mean(-jax.nn.log_softmax(logits)[jnp.arange(6), labels]), (logits, new_state)
        return jax.grad(loss, has_aux=True)(params)

    step = jax.jit(jax.vmap(member))
    x = jnp.stack([_batch(shape, seed=0), _batch(shape, seed=1)])
    before = step(params, states, x)
    after = step(params, states, x.at[0].set(_batch(shape, seed=2) * 3.0))
    b_before, b_after = jax.tree.map(lambda a: np.asarray(a[1]), (before, after))
    jax.tree.map(np.testing.assert_array_equal, b_before, b_after)
    a_moved = jax.tree.map(lambda p, q: bool(np.any(np.asarray(p[0]) != np.asarray(q[0]))), before[1], after[1])
    assert all(jax.tree.leaves(a_moved))  # Member A's statistics did change.


def _mnist1d_config(**changes):
    return replace(Config(), dataset="mnist1d", n_samples=400, train_fraction=0.5, n_train=(120,), model="cnn1d",
                   width=(2, 3, 6), seed=(0, 1), label_noise=(0.1,), optimizer="momentum", learning_rate=(0.01,),
                   batch_size=20, steps=16, n_evals=3, n_chunks=2, n_bootstrap=0, **changes)


@pytest.mark.usefixtures("x64")
def test_cnn1d_sweep_equals_serial_members_in_one_compile(monkeypatch):
    config = _mnist1d_config(precision="float64")  # Compared in float64: tests/reference.py.
    serial = run_sweep(config, mode="serial")
    # The mapped layout evaluates one member at a time on XLA's convolution: the same curves.
    for scheme in ("grouped", "mapped"):
        vmapped = run_sweep(config, scheme=scheme)
        assert vmapped.n_compiles == 1 and vmapped.scheme == scheme
        assert vmapped.curves["train_loss"].dtype == np.float64
        assert_same_curves(vmapped.curves, serial.curves, 120, 200)
    assert vmapped.curves["train_loss"][:, -1].mean() < vmapped.curves["train_loss"][:, 0].mean()  # It trains.
    # A run long enough to pay for every group's compile: one group a width, the same curves.
    monkeypatch.setattr(mapped_layout, "COMPILE_SECONDS_PER_GROUP", 0.0)
    regrouped = run_sweep(config, scheme="mapped")
    assert vmapped.group_widths != (2, 3, 6) and regrouped.group_widths == (2, 3, 6)
    assert regrouped.n_compiles == 1 and regrouped.padding_efficiency == 1.0
    assert_same_curves(regrouped.curves, serial.curves, 120, 200)


def test_map_members_equals_vmap():
    f = lambda a, shared, b: jnp.tanh(a @ shared) * b
    a, shared, b = (jax.random.normal(jax.random.PRNGKey(i), shape) for i, shape in
                    enumerate([(3, 4, 5), (5, 2), (3, 4, 2)]))
    np.testing.assert_allclose(map_members(f, (0, None, 0))(a, shared, b), jax.vmap(f, (0, None, 0))(a, shared, b),
                               rtol=1e-6)


def test_mapped_layout_refuses_families_it_was_not_measured_on():
    config = replace(_mnist1d_config(), model="cnn5", dataset="cifar10")
    with pytest.raises(ConfigError, match="scheme 'mapped' needs .* not cnn5 in float32 on cpu"):
        choose_layout(config, "mapped")
    with pytest.raises(ConfigError, match="not cnn1d in bfloat16"):
        choose_layout(replace(_mnist1d_config(), precision="bfloat16"), "mapped")


def image_dataset(shape=(8, 8, 3), seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N_TRAIN + N_TEST, *shape), dtype=np.uint8)
    y = (x.reshape(len(x), -1)[:, :20].argmax(1) % 10).astype(np.int32)
    return Dataset(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], 10)


@pytest.fixture
def resnet_sweep(monkeypatch):
    data = image_dataset()
    monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: data)
    config = replace(Config(), dataset="cifar10", model="resnet18", width=(1, 2), seed=(0,), n_train=(N_TRAIN,),
                     label_noise=(0.15,), steps=6, batch_size=20, n_evals=3, n_chunks=3, optimizer="adam",
                     learning_rate=(1e-3,), n_bootstrap=0, augment=True, sampling="epoch")
    return config, data


def test_batchnorm_state_resumes_to_the_same_curves(resnet_sweep):
    """The running statistics travel in the member state: a run continued from a chunk's states (a partial last
    batch of each epoch included) ends bit for bit where an uninterrupted one does."""
    config, data = resnet_sweep
    shared, spec, coords = shared_data(data, config), train_spec(config, data), expand_members(config)
    initial, members = stack_members(coords, np.arange(2), data, config, spec, 2)
    program, saved = build_program(spec), []
    whole = train(program, spec, (initial,), (members,), shared,
                  on_chunk=lambda step, states: saved.append((step, states))).states[0]
    step, states = saved[0]
    assert 0 < step < config.steps and jax.tree.leaves(states[0].model_state)
    resumed = train(program, spec, None, (members,), shared, states=states, start_step=step).states[0]
    jax.tree.map(np.testing.assert_array_equal, (whole.curves, whole.model_state),
                 (resumed.curves, resumed.model_state))


def test_convolutional_models_refuse_other_data_sets():
    from ddjax.errors import ConfigError
    with pytest.raises(ConfigError, match="cnn1d only with dataset=mnist1d"):
        replace(Config(), model="cnn1d", dataset="gaussian")
    with pytest.raises(ValueError, match="give the input_shape"):
        get_model("cnn5")
