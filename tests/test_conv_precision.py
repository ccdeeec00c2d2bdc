"""precision="bfloat16" for the convolutional families and a user's module: every convolution and matmul takes
bfloat16 operands, while parameters, optimizer state, BatchNorm's statistics (batch and running) and the loss stay
float32; vmapped members equal serial members computed the same way; float32 programs hold no bfloat16."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddjax
import ddjax.sweep
from ddjax.config import Config, replace
from ddjax.models import registry
from ddjax.models.conv import conv_family
from ddjax.sweep import run_sweep
from ddjax.training.member import member_init, member_record, member_step
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.spec import compute_cast
from reference import assert_same_errors
from test_image_sweeps import image_dataset
from test_user_models import BatchNormNet

CNN1D = replace(Config(), dataset="mnist1d", n_samples=400, train_fraction=0.5, n_train=(120,), model="cnn1d",
                width=(2, 5), seed=(0,), label_noise=(0.1,), optimizer="momentum", learning_rate=(0.01,),
                batch_size=20, steps=8, n_evals=2, n_chunks=1, n_bootstrap=0)
# 32 x 32 images, the size cnn5's pooling needs.
CNN5 = replace(Config(), dataset="cifar10", model="cnn5", width=(1, 2), seed=(0,), n_train=(16,), label_noise=(0.1,),
               optimizer="momentum", learning_rate=(0.01,), batch_size=8, steps=4, n_evals=1, n_chunks=1,
               n_bootstrap=0)


@pytest.fixture
def conv_config(request, monkeypatch):
    """The config named by the test's parameter; cnn5 reads tiny 32 x 32 images, resnet18 8 x 8 ones, a module is
    registered."""
    saved = [dict(table) for table in (registry.MODELS, registry.REGISTERED_IN)]
    if request.param in ("cnn5", "resnet18"):
        data = image_dataset((32, 32, 3) if request.param == "cnn5" else (8, 8, 3))
        monkeypatch.setattr("ddjax.sweep.load_dataset", lambda config: data)
        yield replace(CNN5, model=request.param)
    elif request.param == "module":
        ddjax.register_model("bn_net_bf16", BatchNormNet)
        yield replace(CNN1D, model="bn_net_bf16", width=(5,))
    else:
        yield CNN1D
    for table, contents in zip((registry.MODELS, registry.REGISTERED_IN), saved):
        table.clear()
        table.update(contents)


def _equations(jaxpr):
    """Every equation of `jaxpr` and of the jaxprs inside it (scans, conds, custom derivatives)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for inner in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(inner, "jaxpr", None)
                if inner is not None:
                    yield from _equations(getattr(inner, "jaxpr", inner))


def _one_member(config):
    """The training spec, initial state, coordinates and shared data of `config`'s first member, unstacked."""
    dataset = ddjax.sweep.load_dataset(config)
    spec = train_spec(config, dataset)
    params, members = stack_members(expand_members(config), np.arange(1), dataset, config, spec, max(config.width))
    params, member = jax.tree.map(lambda a: a[0], (params, members))
    return spec, member_init(spec, params, member), member, shared_data(dataset, config)


def _products(jaxpr):
    return [eqn for eqn in _equations(jaxpr.jaxpr) if eqn.primitive.name in ("dot_general", "conv_general_dilated")]


@pytest.mark.parametrize("conv_config, form", [("cnn1d", "patches"), ("cnn5", "patches"), ("cnn5", "lax"),
                                               ("resnet18", "patches"), ("module", None)], indirect=["conv_config"])
def test_bfloat16_convolutions_take_bfloat16_operands_and_the_state_stays_float32(conv_config, form, monkeypatch):
    if form:
        monkeypatch.setenv("DDJAX_CONV", form)
    spec, state, member, data = _one_member(replace(conv_config, precision="bfloat16"))
    for function in (member_step, member_record):  # A training step, and an evaluation (running statistics).
        jaxpr = jax.make_jaxpr(functools.partial(function, spec))(state, member, data, 0)
        products = _products(jaxpr)
        assert products and all(v.aval.dtype == jnp.bfloat16 for eqn in products for v in eqn.invars)
        if form == "lax":
            assert any(eqn.primitive.name == "conv_general_dilated" for eqn in products)
        # The new state has the old one's dtypes (float32), so it carries over from step to step unchanged.
        new_state = jax.eval_shape(functools.partial(function, spec), state, member, data, 0)
        assert jax.tree.map(lambda a: a.dtype, new_state) == jax.tree.map(lambda a: a.dtype, state)
    floats = [leaf for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert floats and all(leaf.dtype == jnp.float32 for leaf in floats)
    assert bool(jax.tree.leaves(state.model_state)) == (conv_config.model != "cnn1d")  # BatchNorm's statistics.


@pytest.mark.parametrize("conv_config", ["cnn5"], indirect=True)
def test_float32_conv_programs_hold_no_bfloat16(conv_config):
    spec, state, member, data = _one_member(conv_config)
    assert "bf16" not in str(jax.make_jaxpr(functools.partial(member_step, spec))(state, member, data, 0))


def _cnn5_forward(precision):
    """cnn5's training-mode forward pass of one member in `precision` (BatchNorm normalizes by, and records, its
    batch statistics): float32 logits, as the trainer takes its loss of, and the new running statistics."""
    family = conv_family("cnn5", (32, 32, 3))

    def forward(params, model_state, width, x):
        params, x = compute_cast(precision, (params, x))
        logits, model_state = family.apply(params, model_state, width, x, True)
        return logits.astype(jnp.float32), model_state

    return family, forward


def test_batchnorm_reduces_its_batch_statistics_in_float32_under_bfloat16():
    family, forward = _cnn5_forward("bfloat16")
    variables = family.init(0, 2, 2, 0, 10)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((6, 32 * 32 * 3)), jnp.float32)
    jaxpr = jax.make_jaxpr(forward)(variables["params"], variables["model_state"], 2, x)
    sums = [eqn for eqn in _equations(jaxpr.jaxpr) if eqn.primitive.name == "reduce_sum"]
    assert sums and all(v.aval.dtype == jnp.float32 for eqn in sums for v in eqn.invars)
    assert all(eqn.invars[0].aval.dtype == jnp.bfloat16 for eqn in _products(jaxpr))
    _, state = jax.jit(forward)(variables["params"], variables["model_state"], 2, x)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state))
    moved = jax.tree.map(lambda new, old: bool(np.any(np.asarray(new) != np.asarray(old))), state,
                         variables["model_state"])
    assert all(jax.tree.leaves(moved))  # The running statistics were updated.


def test_bfloat16_cnn5_vmapped_members_equal_serial_members_and_stay_near_float32():
    """One training-mode forward pass (logits and BatchNorm's new statistics) on 32 x 32 images: a cnn5 sweep
    compiles for tens of seconds on a 2-core CPU, so the trainer's loop is compared on cnn1d (the next test)."""
    family, forward = _cnn5_forward("bfloat16")
    widths, seeds = (1, 2), (0, 1)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 32 * 32 * 3)), jnp.float32)
    padded = [family.init(seed, width, 2, 0, 10) for seed, width in zip(seeds, widths)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *padded)
    logits, states = jax.jit(jax.vmap(forward))(stacked["params"], stacked["model_state"], jnp.array(widths), x)
    for i, (seed, width) in enumerate(zip(seeds, widths)):
        alone = family.init(seed, width, width, 0, 10)  # Serial mode: the member at its own width.
        want, want_state = jax.jit(forward, static_argnums=2)(alone["params"], alone["model_state"], width, x[i])
        # The same bfloat16 roundings of values that agree to float32 reassociation: see the cnn1d test.
        np.testing.assert_allclose(logits[i], want, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(want))))
        real = jax.tree.map(lambda a, b: np.asarray(a[i])[tuple(slice(0, n) for n in np.shape(b))], states,
                            want_state)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), real, want_state)
        # Against float32 (the bound's reasoning: see the cnn1d test): the losses move, by less than 0.05.
        float32, _ = jax.jit(_cnn5_forward("float32")[1], static_argnums=2)(alone["params"], alone["model_state"],
                                                                            width, x[i])
        labels = jnp.arange(8) % 10
        loss16, loss32 = (np.mean(-np.asarray(jax.nn.log_softmax(z))[np.arange(8), labels]) for z in (want, float32))
        assert 0 < abs(loss16 - loss32) / loss32 < 0.05


def test_bfloat16_cnn1d_sweep_equals_serial_members_and_stays_near_float32():
    config = replace(CNN1D, precision="bfloat16")
    serial, vmapped = run_sweep(config, mode="serial"), run_sweep(config)
    assert vmapped.scheme == "grouped"
    # Why 1e-5 holds on any CPU: both run the same member code, so the same values are rounded to bfloat16 at the
    # same places; what may differ between a vmapped and an unvmapped program is the order of float32 sums (~1e-7
    # relative), and rounding to bfloat16 (steps of 2^-8) maps both to the same value unless one lies within that
    # ~1e-7 of a rounding midpoint. What is left is float32 reassociation of the loss sums. Measured on the 2-core
    # Intel Xeon: cnn1d 1.3e-7 apart, cnn5 bit for bit (8 Adam steps, widths 1-3).
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(vmapped.curves[name], serial.curves[name], rtol=1e-5, err_msg=name)
    n_test = round(config.n_samples * (1 - config.train_fraction))
    assert_same_errors(vmapped.curves["test_error"], serial.curves["test_error"], n_test, "test_error")
    # bfloat16 is not float32: each operand rounding is <= 2^-9 relative; with about three a layer (input, kernel,
    # output) over at most five layers the logits move by <= 15 * 2^-9 ~ 0.03 of their size, and cross-entropy
    # (slope < 1 in each logit, ~2.3 here) moves less. So the curves differ, by less than 0.05.
    float32 = run_sweep(replace(config, precision="float32"))
    difference = np.abs(vmapped.curves["train_loss"] - float32.curves["train_loss"]) / float32.curves["train_loss"]
    assert 0 < np.max(difference) < 0.05
