"""Gaussian linear regression drawn per member, and the measured min-norm risk against Hastie et al. (2019)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.analysis.theory import compare_to_theory, finite_sample_excess_risk, min_norm_excess_risk
from ddjax.config import Config, replace
from ddjax.data import gaussian_regression
from ddjax.solvers import closed_form
from ddjax.sweep import run_sweep

R2, S2 = 1.0, 0.25
P = 100
GAMMAS = (4.0, 2.0, 1.5, 0.65, 0.5, 0.25)  # Outside [0.8, 1.25]: every point is judged.
# p = 100 and 10 seeds: the seed mean of |b_hat - b|^2 fluctuates by up to ~5% (measured 0.4-9% over three
# data seeds), so 15% passes for the right estimator and formula and fails for the wrong ones checked below
# (their deviations are >= 32%).
TOLERANCE = 0.15


def test_formula_at_known_points():
    np.testing.assert_allclose(min_norm_excess_risk([0.5, 2.0, 4.0], R2, S2), [S2, R2 / 2 + S2, 0.75 * R2 + S2 / 3])
    assert np.isinf(min_norm_excess_risk(1.0, R2, S2))
    # The finite-sample mean tends to the limit.
    np.testing.assert_allclose(finite_sample_excess_risk([4000, 1000], [2000, 4000], R2, S2),
                               min_norm_excess_risk([0.5, 4.0], R2, S2), rtol=2e-3)


def test_counter_normals_do_not_depend_on_the_shape():
    with jax.enable_x64(True):
        key = gaussian_regression.stream_key(0, jnp.uint32(3), gaussian_regression.DESIGN)
        big = np.asarray(gaussian_regression.counter_normal(key, 300, 200))
        small = np.asarray(gaussian_regression.counter_normal(key, 7, 5))
        other = gaussian_regression.stream_key(0, jnp.uint32(4), gaussian_regression.DESIGN)
        unrelated = np.asarray(gaussian_regression.counter_normal(other, 300, 200))
    np.testing.assert_array_equal(big[:7, :5], small)
    assert abs(big.mean()) < 0.01 and abs(big.var() - 1) < 0.01 and abs(np.mean(big**4) - 3) < 0.1
    assert abs(np.corrcoef(big.ravel(), unrelated.ravel())[0, 1]) < 0.01


@pytest.fixture(scope="module")
def linear_config() -> Config:
    return replace(Config(), dataset="gaussian_regression", model="linear", method="min_norm", loss="squared",
                   batch_size=0, signal_norm_sq=R2, noise_var=S2, width=(P,),
                   n_train=tuple(round(P / g) for g in GAMMAS), seed=tuple(range(10)), n_bootstrap=0)


def _excess_risk(config):
    result = run_sweep(config)
    index = np.argsort(result.coords["n_train"], kind="stable")  # Group by n, seeds in rows.
    n = result.coords["n_train"][index].reshape(-1, len(config.seed))[:, 0]
    return n, result.curves["excess_risk"][index, 0].reshape(len(n), len(config.seed)).T


def test_min_norm_risk_matches_the_closed_form_and_wrong_formulas_do_not(linear_config):
    n, excess = _excess_risk(linear_config)
    comparison = compare_to_theory(n, np.full(n.shape, P), excess, R2, S2, tolerance=TOLERANCE)
    assert all(point["judged"] for point in comparison["points"])
    assert comparison["matches"], comparison["max_relative_deviation"]
    mean, gamma = excess.mean(axis=0), P / n
    wrong = {"r^2 and s^2 swapped": min_norm_excess_risk(gamma, S2, R2),
             "(1 - 1/g) term dropped": np.where(gamma > 1, S2 / (gamma - 1), S2 * gamma / (1 - gamma))}
    for name, theory in wrong.items():
        assert np.max(np.abs(mean - theory) / theory) > 2 * TOLERANCE, name


def test_a_wrong_estimator_fails_the_comparison(linear_config, monkeypatch):
    def ridge(features, targets, strengths, n_fit, *, row_mask, column_mask):  # Not minimum-norm least squares.
        x = features * row_mask[:, None] * column_mask[None, :]
        gram = x.T @ x + 10.0 * jnp.diag(column_mask) + jnp.diag(1.0 - column_mask)
        return [jnp.linalg.solve(gram, x.T @ (targets * row_mask[:, None])) for _ in strengths]

    monkeypatch.setattr(closed_form, "ridge_lstsq", ridge)
    n, excess = _excess_risk(linear_config)
    comparison = compare_to_theory(n, np.full(n.shape, P), excess, R2, S2, tolerance=TOLERANCE)
    assert not comparison["matches"] and comparison["max_relative_deviation"] > 2 * TOLERANCE
