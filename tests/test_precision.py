"""precision="bfloat16": matmuls on bfloat16 operands with float32 parameters and optimizer state; vmapped members
equal serial members computed the same way; float32 programs carry no bfloat16 at all."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import ConfigError, replace
from ddjax.data.registry import load_dataset
from ddjax.sweep import run_sweep
from ddjax.training.member import member_init, member_step
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec


def _step_jaxpr(config):
    dataset = load_dataset(config)
    spec = train_spec(config, dataset)
    params, members = stack_members(expand_members(config), np.arange(1), dataset, config, spec, max(config.width))
    params, member = jax.tree.map(lambda a: a[0], (params, members))
    state = member_init(spec, params, member)
    return jax.make_jaxpr(functools.partial(member_step, spec))(state, member, shared_data(dataset, config), 0), state


def _dots(jaxpr):
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn)
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else ():
            found += _dots(sub)
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", None)
            if inner is not None:
                found += _dots(getattr(inner, "jaxpr", inner))
    return found


def test_bfloat16_matmuls_take_bfloat16_operands_and_the_state_stays_float32(tiny_config):
    jaxpr, state = _step_jaxpr(replace(tiny_config, precision="bfloat16"))
    dots = _dots(jaxpr.jaxpr)
    assert dots and all(v.aval.dtype == jnp.bfloat16 for eqn in dots for v in eqn.invars)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves((state.params, state.opt_state))
               if jnp.issubdtype(leaf.dtype, jnp.floating))
    assert all(v.aval.dtype != jnp.bfloat16 for v in jaxpr.jaxpr.outvars)  # The new state: float32.


def test_float32_programs_hold_no_bfloat16(tiny_config):
    jaxpr, _ = _step_jaxpr(tiny_config)
    assert "bf16" not in str(jaxpr)


@pytest.mark.parametrize("model", ["mlp", "random_relu_features"])
def test_bfloat16_vmapped_members_equal_serial_members(tiny_config, model):
    config = replace(tiny_config, precision="bfloat16", model=model)
    serial = run_sweep(config, mode="serial")
    grouped = run_sweep(config, scheme="grouped")  # The same member code, vmapped: the same bfloat16 roundings.
    packed = run_sweep(config, scheme="packed")  # Another order of operations: bfloat16 roundings differ.
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(grouped.curves[name], serial.curves[name], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(packed.curves[name], serial.curves[name], rtol=1e-2, err_msg=name)
    # bfloat16 is not float32: the curves move by about its rounding (2^-8), not by nothing and not by more.
    float32 = run_sweep(replace(config, precision="float32"), mode="serial")
    difference = np.abs(serial.curves["train_loss"] - float32.curves["train_loss"]) / float32.curves["train_loss"]
    assert 0 < np.max(difference) < 0.05


def test_bfloat16_is_refused_for_a_closed_form():
    from ddjax.experiment import experiment_config

    with pytest.raises(ConfigError, match="precision='bfloat16' is not allowed: only float32 with method=min_norm"):
        replace(experiment_config("random_features", "smoke"), precision="bfloat16")


def test_bfloat16_block_packed_members_equal_serial_members(tiny_config):
    # The block-packed layout (auto for depth >= 2) computes on the same bfloat16 copies; its curves differ from
    # float32 ones, so a silent float32 fallback would fail the last assertion.
    config = replace(tiny_config, precision="bfloat16", depth=2)
    serial = run_sweep(config, mode="serial")
    block = run_sweep(config)
    assert block.scheme == "blockpacked"
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(block.curves[name], serial.curves[name], rtol=1e-2, err_msg=name)
    float32 = run_sweep(replace(config, precision="float32"))
    assert not np.array_equal(block.curves["train_loss"], float32.curves["train_loss"])
