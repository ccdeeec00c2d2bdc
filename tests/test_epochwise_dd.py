"""Epoch-wise double descent: gradient descent on least squares against its closed form, the words that name an
epoch-wise curve, and early stopping on a validation split carved from the training set."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax import experiment_config, replace
from ddjax.analysis.early_stopping import best_steps, read_at
from ddjax.analysis.epochwise import curve_shape, epochwise_analysis
from ddjax.analysis.inputs import analysis_inputs
from ddjax.analysis.sweep_report import sweep_report
from ddjax.config import ConfigError
from ddjax.data import multiscale_regression
from ddjax.data.gaussian_regression import Member
from ddjax.experiment import run_experiment
from ddjax.result import SweepResult
from ddjax.solvers.gradient_descent import expected_risk
from ddjax.sweep import run_sweep
from reference import assert_close, assert_same_curves, assert_same_errors


def _problem(p=12, n=40, scales=(1.0, 0.2), noise_var=0.5, seed=3):
    with jax.enable_x64(True):
        member = Member(width=jnp.int32(p), n_train=jnp.int32(n), seed=jnp.uint32(seed))
        x, y, b, a = (np.asarray(v) for v in multiscale_regression.member_problem(member, n, p, scales, 1.0,
                                                                                 noise_var, 0))
    return x, y, b, a


def test_closed_form_risk_equals_the_mean_of_simulated_gradient_descent():
    """E_e R(w_t) from the eigendecomposition against plain GD iterates averaged over 1000 noise draws: within 4
    Monte Carlo standard errors at every step (the draws are the only randomness; float64 throughout)."""
    x, _, b, a = _problem()
    n, p = x.shape
    eta, noise_var, steps = 0.3, 0.5, np.array([0, 1, 3, 10, 30, 100, 300])
    rng = np.random.default_rng(0)
    draws = 1000
    y = x @ b + np.sqrt(noise_var) * rng.standard_normal((draws, n))  # [draws, n]
    w = np.zeros((draws, p))
    risks = []
    for t in range(steps[-1] + 1):
        if t in steps:
            risks.append(np.sum((a * (w - b)) ** 2, axis=1) + noise_var)
        w = w - eta * (w @ x.T - y) @ x / n
    risks = np.array(risks)  # [T, draws]
    with jax.enable_x64(True):
        theory = np.asarray(expected_risk(jnp.asarray(x), jnp.asarray(b), jnp.asarray(a), jnp.float64(n),
                                          jnp.float64(eta), noise_var, jnp.asarray(steps)))
    error = risks.std(axis=1, ddof=1) / np.sqrt(draws)
    np.testing.assert_array_less(np.abs(risks.mean(axis=1) - theory), 4 * error + 1e-12)
    assert theory[0] == pytest.approx(np.sum((a * b) ** 2) + noise_var, rel=1e-12)  # w_0 = 0: all bias.


def test_trained_curves_are_plain_gradient_descent_on_the_member_problem():
    """The solver's vmapped, padded program against numpy GD on the unpadded problem of each member (float64)."""
    config = replace(experiment_config("linear_epochwise", "smoke"), width=(8, 12), n_train=(30,), seed=(3,),
                     steps=200, n_evals=6, learning_rate=(0.2,), noise_var=0.5, feature_scales=(1.0, 0.2))
    result = run_sweep(config)
    for m in range(len(result.coords["width"])):
        p, n = int(result.coords["width"][m]), int(result.coords["n_train"][m])
        x, y, b, a = _problem(p, n, config.feature_scales, config.noise_var, seed=3)
        w, risks, train = np.zeros(p), [], []
        for t in range(config.steps + 1):
            if t in result.eval_steps:
                risks.append(np.sum((a * (w - b)) ** 2) + config.noise_var)
                train.append(np.mean((x @ w - y) ** 2))
            w = w - 0.2 * x.T @ (x @ w - y) / n
        np.testing.assert_allclose(result.curves["test_error"][m], risks, rtol=1e-9)
        np.testing.assert_allclose(result.curves["train_error"][m], train, rtol=1e-9)


@pytest.mark.parametrize("scales, double_descent", [((1.0, 0.1), True), ((1.0,), False)])
def test_linear_epochwise_verdict_follows_the_closed_form(tmp_path, scales, double_descent):
    """Two scales: the closed form has a second descent and the calibrated verdict finds it on the trained curves;
    one scale: the closed form is a U and the verdict is false (the smoke variant, end to end)."""
    config = replace(experiment_config("linear_epochwise", "smoke"), feature_scales=scales)
    report = run_experiment(config, tmp_path / "run", name="linear_epochwise-smoke")
    assert (tmp_path / "run" / "epochwise.png").read_bytes()[:4] == b"\x89PNG"
    (entry,), (theory,) = report["epochwise"], report["gd_theory"]
    assert theory["theory_double_descent"] is double_descent
    assert entry["epochwise_double_descent"] is double_descent and theory["verdict_agrees"]
    assert entry["shape"] == ("double_descent" if double_descent else "u_shaped")
    assert theory["max_deviation_in_standard_errors"] < 5  # The trained seeds scatter around their closed form.


def test_config_refuses_gradient_descent_off_its_data_set():
    with pytest.raises(ConfigError, match="method='gradient_descent'"):
        replace(experiment_config("mlp_mnist1d", "smoke"), method="gradient_descent", optimizer="sgd", batch_size=0,
                loss="squared")
    with pytest.raises(ConfigError, match="feature_scales"):
        replace(experiment_config("linear_epochwise", "smoke"), feature_scales=(1.0, 0.0))
    with pytest.raises(ConfigError, match="optimizer"):
        replace(experiment_config("linear_epochwise", "smoke"), optimizer="adam")


STEPS = np.arange(40.0)


def _describe(curve, **kwargs):
    return curve_shape(STEPS, curve, min_rise=0.02, double_descent=False, **kwargs)


def test_shapes_are_named_with_their_numbers():
    monotone = 0.3 + 0.5 * np.exp(-STEPS / 5)
    shape, words, _ = _describe(monotone)
    assert shape == "monotone_descent" and "monotone descent" in words
    u = np.where(STEPS < 10, 0.8 - 0.05 * STEPS, 0.3 + 0.01 * (STEPS - 10))  # Minimum 0.3 at step 10, ends 0.59.
    shape, words, final = _describe(u)
    assert shape == "u_shaped"
    assert "falls to 0.3 at step 10, then rises 0.29 to 0.59 at the last step 39" in words
    assert final == {"step": 10.0, "error": 0.3, "rise": pytest.approx(0.29), "final_error": pytest.approx(0.59)}
    bump = monotone + 0.05 * np.exp(-((STEPS - 20) / 2) ** 2)
    shape, words, _ = _describe(bump)
    assert shape == "bump_within_noise" and "rises 0.0" in words
    shape, words, _ = curve_shape(STEPS, bump, min_rise=0.02, double_descent=True, p_value=0.01)
    assert shape == "double_descent" and "at step 20, then falls" in words and "p = 0.01" in words
    assert _describe(np.full(40, 0.5))[0] == "no_descent"
    detour = np.interp(STEPS, [0, 5, 10, 20, 39], [0.8, 0.6, 0.7, 0.3, 0.5])  # Rises 0.1 on the way down.
    shape, words, _ = _describe(detour)
    assert shape == "u_shaped" and "on the way down it rose 0.1 to 0.7 at step 10" in words
    shape, words, _ = _describe(0.5 + 0.01 * STEPS)  # Only rises: no U, and its rise is named.
    assert shape == "no_descent" and "rises 0.39" in words


def test_a_curve_that_rises_is_never_called_monotone():
    """Random walks: whenever the curve rises min_rise above an earlier point, the words name a rise."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        curve = 0.5 + np.cumsum(rng.normal(-0.005, 0.01, 40))
        shape, words, _ = _describe(curve)
        rises = np.max(curve - np.minimum.accumulate(curve))
        if rises >= 0.02:
            assert shape in ("u_shaped", "bump_within_noise", "no_descent") and "rises" in words
        else:
            assert shape in ("monotone_descent", "no_descent")


def test_the_cnn_overfitting_curve_is_u_shaped_not_peak_free():
    """The issue's width-40 CNN curve (0.245 at step 1476, 0.327 at step 20000): U-shaped, its rise in the note."""
    steps = np.array([0, 10, 100, 500, 1476, 3000, 6000, 10000, 20000.0])
    test = np.array([0.9, 0.7, 0.4, 0.28, 0.245, 0.27, 0.30, 0.318, 0.327])
    report = epochwise_analysis(steps, np.zeros((1, 9)), test[None], smoothing_window=1, n_test=4000)
    assert report.shape == "u_shaped" and "rises 0.082 to 0.327 at the last step 20000" in report.description
    assert not any("never rises" in note for note in report.notes)


def test_best_steps_pick_the_first_lowest_finite_value():
    selection = np.array([[0.5, 0.3, 0.3, 0.4], [np.nan, np.nan, np.nan, np.nan], [0.9, np.nan, 0.2, 0.1]])
    index = best_steps(selection)
    assert index.tolist() == [1, -1, 3]
    assert np.isnan(read_at(selection, index)[1]) and read_at(selection, index)[2] == 0.1


def test_early_stopping_reads_the_test_error_at_the_validation_minimum():
    """A synthetic sweep whose validation minimum is not the test minimum: the validation read-out takes the test
    error at the validation's best step, the oracle the test minimum."""
    config = replace(experiment_config("mlp_mnist1d", "smoke"), width=(2, 4, 8), seed=(0, 1), n_train=(300,),
                     validation_fraction=0.2)
    rng = np.random.default_rng(0)
    test = rng.uniform(0.3, 0.6, (6, 5))
    val = rng.uniform(0.3, 0.6, (6, 5))
    coords = {"width": np.repeat([2, 4, 8], 2), "seed": np.tile([0, 1], 3), "label_noise": np.full(6, 0.2),
              "n_train": np.full(6, 300), "learning_rate": np.full(6, 1e-3)}
    curves = {"train_error": np.zeros((6, 5)), "test_error": test, "train_loss": np.zeros((6, 5)),
              "test_loss": test, "val_error": val, "val_loss": val}
    result = SweepResult(coords=coords, eval_steps=np.array([0, 1, 3, 10, 30]), curves=curves,
                         diverged_step=np.full(6, -1), group_widths=(8,), compile_seconds=0.0, run_seconds=0.0,
                         n_compiles=1)
    report, _ = sweep_report(result, config)
    (entry,) = report["early_stopping"]
    by_val, oracle = test[np.arange(6), val.argmin(1)], test.min(1)
    np.testing.assert_allclose(entry["validation"]["test_error"], by_val.reshape(3, 2).mean(1))
    np.testing.assert_allclose(entry["oracle"]["test_error"], oracle.reshape(3, 2).mean(1))
    assert entry["validation"]["best_step"][0] == [float(s) for s in np.array([0, 1, 3, 10, 30])[val.argmin(1)][::2]]
    assert "double_descent" in entry["validation"] and "double_descent" in entry["oracle"]


VALIDATED = dict(width=(6,), seed=(0, 1), n_train=(200,), steps=40, n_evals=5, n_chunks=2, batch_size=32,
                 validation_fraction=0.2)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("scheme, depth", [("packed", 1), ("blockpacked", 2), ("grouped", 1)])
def test_validation_split_vmapped_against_serial(scheme, depth):
    """Training runs compared in float64 (tests/reference.py): every layout's validation curves are the serial
    member's, the packed ones' included (they train on the first 160 of the 200 rows too)."""
    config = replace(experiment_config("mlp_mnist1d", "smoke"), precision="float64", depth=depth, **VALIDATED)
    vmapped, serial = run_sweep(config, scheme=scheme), run_sweep(config, mode="serial")
    assert vmapped.scheme == scheme and set(vmapped.curves) >= {"val_error", "val_loss"}
    assert_same_curves(vmapped.curves, serial.curves, 160, analysis_inputs(config).n_test)
    assert_close(vmapped.curves["val_loss"], serial.curves["val_loss"])
    assert_same_errors(vmapped.curves["val_error"], serial.curves["val_error"], 40)


@pytest.mark.usefixtures("x64")
def test_validation_rows_are_never_trained_on():
    """Without label noise, holding out the last 40 of 200 examples trains as n_train=160 does (float64); the
    held-out rows are only evaluated."""
    config = replace(experiment_config("mlp_mnist1d", "smoke"), **{**VALIDATED, "seed": (0,)},
                     label_noise=(0.0,), precision="float64")
    held = run_sweep(config, mode="serial")
    plain = run_sweep(replace(config, validation_fraction=0.0, n_train=(160,)), mode="serial")
    assert_same_curves(held.curves, plain.curves, 160, analysis_inputs(config).n_test)
    assert "val_error" not in plain.curves and np.all(np.isfinite(held.curves["val_loss"]))


def test_validation_fraction_errors_are_one_line():
    base = experiment_config("mlp_mnist1d", "smoke")
    for value, allowed in ((0.6, r"\[0, 0.5\]"), (0.001, "at least one"), (-0.1, r"\[0, 0.5\]")):
        with pytest.raises(ConfigError, match=allowed) as caught:
            replace(base, validation_fraction=value)
        assert "\n" not in str(caught.value)
