"""Per-layer step sizes and initial scales (the layer_rate and layer_init_scale axes on `layer_group`), regression
targets (loss mse), paired initialization and the linearized theory: each in every layout against serial members,
compared in float64 (tests/reference.py)."""

import jax
import numpy as np
import pytest

from ddjax.config import Config, ConfigError, replace
from ddjax.data.registry import load_dataset
from ddjax.sweep import run_sweep
from ddjax.training.members import expand_members, member_variables, train_spec
from reference import assert_close, assert_same_errors

CIRCLE = dict(dataset="circle", n_classes=3, n_samples=64, n_train=(40,), loss="mse", target_noise=(0.5,),
              optimizer="sgd", batch_size=0, learning_rate=(0.05,), steps=30, n_evals=4, n_chunks=2, n_bootstrap=0)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("scheme, depth", [("packed", 1), ("blockpacked", 2), ("grouped", 2)])
def test_layer_rates_in_every_layout_equal_serial_members(tiny_config, scheme, depth):
    config = replace(tiny_config, precision="float64", depth=depth, width=(3, 8), layer_rate=(0.0, 0.3, 4.0),
                     layer_init_scale=(0.5,), optimizer="momentum", learning_rate=(2e-2,))
    vmapped, serial = run_sweep(config, scheme=scheme), run_sweep(config, mode="serial")
    assert vmapped.scheme == scheme
    for name in ("train_loss", "test_loss"):
        assert_close(vmapped.curves[name], serial.curves[name], err_msg=name)
    assert_same_errors(vmapped.curves["test_error"], serial.curves["test_error"], 80, "test_error")
    by_rate = {rate: vmapped.curves["train_loss"][vmapped.coords["layer_rate"] == rate, -1] for rate in (0.0, 4.0)}
    assert not np.allclose(by_rate[0.0], by_rate[4.0])  # The axis changes training.


def test_layer_rate_zero_freezes_the_group(tiny_config):
    """A first layer at rate 0 keeps its initial values (a random-features model) while the read-out trains."""
    from ddjax.training.member import member_init, member_step
    from ddjax.training.members import shared_data, stack_members

    config = replace(tiny_config, width=(5,), seed=(0,), layer_rate=(0.0,), optimizer="sgd", learning_rate=(0.1,))
    dataset = load_dataset(config)
    spec, coords, data = train_spec(config, dataset), expand_members(config), shared_data(dataset, config)
    initial, members = jax.tree.map(lambda a: a[0], stack_members(coords, np.array([0]), dataset, config, spec, 5))
    state = member_step(spec, member_init(spec, initial, members), members, data, 0)
    np.testing.assert_array_equal(state.params["hidden"][0]["w"], initial["params"]["hidden"][0]["w"])
    assert not np.array_equal(state.params["out"]["w"], initial["params"]["out"]["w"])


@pytest.mark.parametrize("changes, fragment", [
    (dict(layer_rate=(-1.0,)), "layer_rate=(-1.0,) is not allowed: finite numbers >= 0"),
    (dict(layer_rate=(float("inf"),)), "layer_rate=(inf,) is not allowed: finite numbers >= 0"),
    (dict(layer_init_scale=(float("nan"),)), "layer_init_scale=(nan,) is not allowed"),
    (dict(target_noise=(0.1,)), "target_noise=(0.1,) is not allowed: only 0 with dataset=gaussian"),
    (dict(init="paired", width=(3, 8)), "width=(3, 8) is not allowed: even integers with init=paired"),
    (dict(theory="linearized"), "theory='linearized' is not allowed: linearized only with a regression data set"),
])
def test_bad_values_are_one_line_errors(tiny_config, changes, fragment):
    with pytest.raises(ConfigError) as error:
        replace(tiny_config, **changes)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_layer_group_that_matches_no_parameter_is_refused(tiny_config):
    with pytest.raises(ConfigError, match="layer_group='Dense_0/\\*' is not allowed: a pattern that matches a "
                                          "parameter of model=mlp \\(hidden/0/b, hidden/0/w, out/b, out/w\\)"):
        run_sweep(replace(tiny_config, layer_group="Dense_0/*", layer_rate=(0.5,)))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("scheme", ["packed", "grouped"])
def test_regression_targets_train_as_serial_members(scheme):
    config = replace(Config(), precision="float64", width=(4, 10), seed=(0, 1), init="paired",
                     layer_group="out/*", layer_rate=(2.0,), **CIRCLE)
    vmapped, serial = run_sweep(config, scheme=scheme), run_sweep(config, mode="serial")
    for name in ("train_error", "train_loss", "test_error", "test_loss"):
        assert_close(vmapped.curves[name], serial.curves[name], err_msg=name)


def test_regression_error_is_the_risk_and_paired_members_start_at_zero():
    config = replace(Config(), width=(6,), seed=(0,), init="paired", **CIRCLE)
    dataset = load_dataset(config)
    spec = train_spec(config, dataset)
    params = member_variables(spec, 0, 6, 6)["params"]
    h = np.maximum(dataset.x_test @ params["hidden"][0]["w"] + params["hidden"][0]["b"], 0)
    np.testing.assert_allclose(h @ params["out"]["w"], 0, atol=1e-6)  # Paired units cancel.
    result = run_sweep(config)
    risk0 = np.mean((params["out"]["b"] - dataset.y_test) ** 2)  # The network starts at its read-out bias, 0.
    np.testing.assert_allclose(result.curves["test_error"][0, 0], risk0, rtol=1e-6)
    np.testing.assert_allclose(result.curves["test_loss"][0, 0], 0.5 * risk0 * 3, rtol=1e-6)


def test_the_linearized_theory_starts_where_the_network_starts():
    config = replace(Config(), width=(64,), seed=(0,), init="paired", layer_group="out/*", layer_init_scale=(3.0,),
                     theory="linearized", **{**CIRCLE, "steps": 20})
    result = run_sweep(config)
    theory, trained = result.curves["theory_risk"][0], result.curves["test_error"][0]
    np.testing.assert_allclose(theory[0], trained[0], rtol=1e-5)
    assert np.all(np.abs(theory - trained) < 0.2 * trained)  # A wide, lazy network follows it (looser later).
