"""Regularization axes: weight decay in every layout against serial training, ridge against a direct solve and
against Hastie et al.'s limit, the optimally regularized curves, and bad values refused in one line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from conftest import TINY_RUN

from ddjax.analysis.regularization import monotone_verdict, optimal_curves, oracle_choice, validation_choice
from ddjax.analysis.theory import min_norm_excess_risk, optimal_ridge, ridge_excess_risk
from ddjax.config import Config, ConfigError, apply_overrides, replace
from ddjax.data.registry import load_dataset
from ddjax.experiment import experiment_config, run_experiment
from ddjax.run import main
from ddjax.runs.outputs import reanalyze
from ddjax.solvers.closed_form import min_norm_lstsq, ridge_lstsq
from ddjax.sweep import run_sweep
from ddjax.training.member import member_init, member_step
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec

LINEAR = dict(dataset="gaussian_regression", model="linear", method="min_norm", loss="squared", batch_size=0,
              signal_norm_sq=1.0, noise_var=0.25)


@pytest.mark.parametrize("override, fragment", [
    ("weight_decay=-0.1", "weight_decay=(-0.1,) is not allowed: finite numbers >= 0"),
    ("weight_decay=nan", "weight_decay=(nan,) is not allowed: finite numbers >= 0"),
    ("weight_decay=0,0", "weight_decay=(0.0, 0.0) is not allowed: no duplicate values"),
    ("ridge=0.1", "ridge=(0.1,) is not allowed: only 0 with method=train (ridge applies to method=min_norm)"),
    ("validation_fraction=0.6", "validation_fraction=0.6 is not allowed: a fraction in [0, 0.5]"),
    ("validation_fraction=0.0001", "validation_fraction=0.0001 is not allowed: a fraction that holds out at least one"),
])
def test_bad_values_are_refused_in_one_line(override, fragment):
    with pytest.raises(ConfigError) as error:
        apply_overrides(Config(), [override])
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("changes, fragment", [
    (dict(**LINEAR, ridge=(float("nan"),)), "ridge=(nan,) is not allowed: finite numbers >= 0"),
    (dict(**LINEAR, ridge=(-1.0,)), "ridge=(-1.0,) is not allowed: finite numbers >= 0"),
    (dict(**LINEAR, weight_decay=(0.1,)), "weight_decay=(0.1,) is not allowed: only 0 with method=min_norm"),
    (dict(model="random_relu_features", loss="squared", weight_decay=(0.1,)),
     "weight_decay=(0.1,) is not allowed: only 0 with model=random_relu_features (its first layer is fixed"),
])
def test_an_axis_given_to_a_family_that_cannot_take_it_is_refused(changes, fragment):
    with pytest.raises(ConfigError) as error:
        replace(Config(), **changes)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_the_cli_refuses_a_bad_strength_with_exit_2_and_writes_nothing(tmp_path, capsys):
    code = main(["mlp_mnist1d:smoke", "--set", "weight_decay=-1", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "weight_decay=(-1.0,) is not allowed" in err
    assert not (tmp_path / "out").exists()


def test_the_weight_decay_axis_through_the_cli(tmp_path):
    out = tmp_path / "run"
    code = main([*TINY_RUN, "--set", "weight_decay=0,0.01", "--out", str(out), "--no-progress"])
    assert code == 0
    curves = np.load(out / "curves.npz")
    assert sorted(set(curves["coord_weight_decay"].tolist())) == [0.0, 0.01] and "coord_ridge" not in curves.files
    entry = json.loads((out / "report.json").read_text())["regularization"][0]
    assert entry["axis"] == "weight_decay" and entry["validation"] is None and "no validation choice" in entry["note"]
    assert (out / "regularization.png").is_file()


def test_weight_decay_is_l2_in_the_loss_gradient(tiny_config):
    """One SGD step: p1(lambda) = p1(0) - lr lambda p0, on every parameter (biases too)."""
    config = replace(tiny_config, width=(5,), seed=(0,), optimizer="sgd", learning_rate=(0.1,),
                     weight_decay=(0.0, 0.5))
    dataset = load_dataset(config)
    data, spec, coords = shared_data(dataset, config), train_spec(config, dataset), expand_members(config)
    assert spec.weight_decay
    params, members = stack_members(coords, np.arange(2), dataset, config, spec, 5)
    step = jax.jit(jax.vmap(lambda v, m: member_step(spec, member_init(spec, v, m), m, data, 0)))
    states = step(params, members)
    for p0, p1 in zip(jax.tree.leaves(params["params"]), jax.tree.leaves(states.params)):
        np.testing.assert_allclose(p1[1], p1[0] - 0.1 * 0.5 * p0[0], rtol=1e-5, atol=1e-7)
    assert any(np.any(np.asarray(p0[0]) != 0) for p0 in jax.tree.leaves(params["params"]))


# Every layout against serial training of the same members, in float64 at the reference tolerance
# (tests/reference.py), after the first step and after 20 Adam steps. (The padded layout is the grouped one with a
# single group: the same member step.)
@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("depth, schemes", [(1, ("packed", "grouped")), (2, ("blockpacked",))])
def test_weight_decay_in_every_layout_equals_serial_training(tiny_config, depth, schemes):
    config = replace(tiny_config, width=(2, 9), seed=(0,), depth=depth, learning_rate=(3e-3,),
                     weight_decay=(0.0, 0.03, 0.3), steps=20, n_evals=4, precision="float64")
    serial = run_sweep(config, mode="serial")
    assert list(serial.eval_steps[:2]) == [0, 1]
    for scheme in schemes:
        fast = run_sweep(config, scheme=scheme)
        assert fast.scheme == scheme
        for name in ("train_loss", "test_loss"):
            reference.assert_close(fast.curves[name], serial.curves[name], err_msg=f"{scheme} {name}")
    by_decay = [serial.curves["train_loss"][serial.coords["weight_decay"] == v, -1] for v in config.weight_decay]
    assert np.all(np.abs(by_decay[2] - by_decay[0]) > 1e-4)  # The penalty acts, far beyond the tolerance.


@pytest.mark.parametrize("n, f", [(30, 10), (10, 30)])
def test_ridge_solutions_equal_a_direct_solve_with_padding(n, f):
    rng = np.random.default_rng(0)
    a, y = rng.standard_normal((n, f)), rng.standard_normal((n, 3))
    padded_a, padded_y = np.zeros((n + 4, f + 5)), np.zeros((n + 4, 3))
    padded_a[:n, :f], padded_y[:n] = a, y
    padded_a[n:] = 7.0  # Masked rows and columns must not matter whatever they hold.
    strengths = (0.0, 1e-3, 0.1, 2.0)
    with jax.enable_x64(True):
        solve = jax.jit(lambda a, y: ridge_lstsq(a, y, strengths, n, row_mask=jnp.arange(n + 4) < n,
                                                 column_mask=jnp.arange(f + 5) < f))
        solutions = solve(jnp.asarray(padded_a), jnp.asarray(padded_y))
        min_norm = min_norm_lstsq(jnp.asarray(a), jnp.asarray(y))
    for strength, w in zip(strengths, solutions):
        w = np.asarray(w)
        want = np.linalg.pinv(a) @ y if strength == 0 else np.linalg.solve(a.T @ a + n * strength * np.eye(f), a.T @ y)
        np.testing.assert_allclose(w[:f], want, rtol=1e-9, atol=1e-10)
        assert np.all(w[f:] == 0)
    np.testing.assert_allclose(np.asarray(solutions[0])[:f], np.asarray(min_norm), rtol=1e-9, atol=1e-10)


def test_a_ridge_sweep_solves_each_member_once_and_keeps_min_norm_unchanged():
    base = replace(Config(), **LINEAR, width=(20,), n_train=(10, 18, 40), seed=(0, 1))
    plain, swept = run_sweep(base), run_sweep(replace(base, ridge=(0.0, 0.05, 0.5)))
    assert len(swept.coords["ridge"]) == 3 * len(plain.coords["ridge"])
    at_zero = swept.coords["ridge"] == 0
    for name in ("test_error", "train_error", "weight_norm"):
        np.testing.assert_array_equal(swept.curves[name][at_zero], plain.curves[name])
    norms = swept.curves["weight_norm"][:, 0].reshape(-1, 3)  # ridge varies fastest
    assert np.all(np.diff(norms, axis=1) < 0)  # More penalty, smaller solutions.


def test_ridge_risk_limit_reduces_to_min_norm_and_is_least_at_the_optimal_strength():
    gammas = np.array([0.3, 0.8, 1.5, 4.0])
    np.testing.assert_allclose(ridge_excess_risk(gammas, 1e-10, 1.0, 0.25), min_norm_excess_risk(gammas, 1.0, 0.25),
                               rtol=1e-5)
    for gamma in gammas:
        best = optimal_ridge(gamma, 1.0, 0.25)
        grid = best * np.array([0.3, 0.7, 1.0, 1.4, 3.0])
        risks = [float(ridge_excess_risk(gamma, lam, 1.0, 0.25)) for lam in grid]
        assert int(np.argmin(risks)) == 2


def test_measured_ridge_risk_matches_the_limit():
    """p = 100 at g = 0.5, 1 and 2, 8 seeds, 2 strengths: the seed mean within 10% of the limit (finite p and
    n bias it by a few percent: 1-5% measured at p = 200)."""
    config = replace(Config(), **LINEAR, width=(100,), n_train=(50, 100, 200), seed=tuple(range(8)),
                     ridge=(0.05, 0.5))
    result = run_sweep(config)
    for n in config.n_train:
        for lam in config.ridge:
            mask = (result.coords["n_train"] == n) & (result.coords["ridge"] == lam)
            measured = result.curves["excess_risk"][mask, 0].mean()
            assert abs(measured / ridge_excess_risk(100 / n, lam, 1.0, 0.25) - 1) < 0.1, (n, lam, measured)


def test_validation_and_oracle_choices_pick_the_least_error():
    rng = np.random.default_rng(1)
    test_error = rng.uniform(size=(3, 4, 5))  # [strength, seed, x]
    val_error = rng.uniform(size=(3, 4, 5))
    chosen, errors = oracle_choice(test_error)
    assert np.array_equal(chosen, np.argmin(test_error.mean(axis=1), axis=0))
    assert np.array_equal(errors, test_error[chosen, :, np.arange(5)].T)
    picks, errors = validation_choice(val_error, test_error)
    assert np.array_equal(picks, np.argmin(val_error, axis=0))
    assert np.array_equal(errors, np.take_along_axis(test_error, picks[None], axis=0)[0])
    val_error[:, 0, 0] = np.nan  # No validation value: no choice.
    assert np.isnan(validation_choice(val_error, test_error)[1][0, 0])


def test_the_monotone_verdict_sees_a_peak_and_not_noise():
    rng = np.random.default_rng(2)
    falling = np.linspace(0.6, 0.3, 12) + 0.01 * rng.standard_normal((5, 12))
    peaked = falling + np.where(np.arange(12) == 6, 0.2, 0.0)
    assert monotone_verdict(falling)["monotone"]
    verdict = monotone_verdict(peaked)
    assert not verdict["monotone"] and verdict["double_descent"]


def test_optimal_curves_choose_on_validation_without_test_data():
    strengths, x = np.array([0.0, 1.0]), np.arange(1, 6, dtype=float)
    test_error = np.stack([np.full((3, 5), 0.5), np.full((3, 5), 0.4)])
    val_error = np.stack([np.full((3, 5), 0.1), np.full((3, 5), 0.2)])  # Validation prefers strength 0.
    entry = optimal_curves(x, strengths, test_error, val_error)
    assert entry["oracle"]["strength"] == [1.0] * 5 and entry["oracle"]["mean"] == pytest.approx([0.4] * 5)
    assert entry["validation"]["strength"] == [[0.0] * 5] * 3
    assert entry["validation"]["mean"] == pytest.approx([0.5] * 5)
    assert optimal_curves(x, strengths, test_error, None)["validation"] is None


def test_linear_ridge_smoke_run_writes_the_optimal_curves(tmp_path):
    config = experiment_config("linear_ridge", "smoke")
    report = run_experiment(config, tmp_path / "run", name="linear_ridge-smoke", progress=False)
    entry = report["regularization"][0]
    assert entry["axis"] == "ridge" and entry["strengths"] == sorted(config.ridge)
    assert entry["oracle"]["label"].startswith("oracle") and entry["validation"]["label"].startswith("validation")
    assert isinstance(entry["oracle"]["monotone"], bool) and isinstance(entry["validation"]["monotone"], bool)
    assert {t["ridge"] for t in report["theory"]} == set(config.ridge)
    assert (tmp_path / "run" / "regularization.png").read_bytes()[:4] == b"\x89PNG"
    curves = np.load(tmp_path / "run" / "curves.npz")
    assert "coord_ridge" in curves.files and "coord_weight_decay" not in curves.files
    assert {"val_error", "val_loss"} <= set(curves.files)
    again = reanalyze(tmp_path / "run")
    assert again["regularization"] == json.loads(json.dumps(report["regularization"]))
