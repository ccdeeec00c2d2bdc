"""Closed-form minimum-norm read-outs: against numpy's pinv, padding, and gradient descent from zero."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import Config, ConfigError, replace
from ddjax.solvers.closed_form import min_norm_lstsq
from ddjax.sweep import run_sweep


def _lstsq64(a, y, **masks):
    with jax.enable_x64(True):
        return np.asarray(min_norm_lstsq(jnp.asarray(a, jnp.float64), jnp.asarray(y, jnp.float64), **masks))


@pytest.mark.parametrize("shape", [(30, 12), (12, 30), (20, 20)])
def test_matches_pinv_wide_tall_and_square(shape):
    rng = np.random.default_rng(0)
    a, y = rng.standard_normal(shape), rng.standard_normal((shape[0], 3))
    np.testing.assert_allclose(_lstsq64(a, y), np.linalg.pinv(a) @ y, rtol=1e-7, atol=1e-9)


def test_rank_deficient_features_get_the_minimum_norm_solution():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((25, 8))
    a = np.concatenate([a, a[:, :3]], axis=1)  # Duplicate columns: rank 8 of 11.
    y = rng.standard_normal((25, 2))
    np.testing.assert_allclose(_lstsq64(a, y), np.linalg.pinv(a) @ y, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n, f", [(20, 8), (8, 20)])
def test_padded_rows_and_columns_change_nothing_and_get_zero_weight(n, f):
    rng = np.random.default_rng(2)
    a, y = rng.standard_normal((n, f)), rng.standard_normal((n, 3))
    padded = np.zeros((n + 7, f + 11))
    padded[:n, :f] = a
    padded[n:, :] = 5.0  # Garbage in padded rows must be masked away.
    targets = np.concatenate([y, np.full((7, 3), 9.0)])
    rows = np.arange(n + 7) < n
    columns = np.arange(f + 11) < f
    w = _lstsq64(padded, targets, row_mask=rows, column_mask=columns)
    np.testing.assert_allclose(w[:f], np.linalg.pinv(a) @ y, rtol=1e-7, atol=1e-9)
    assert np.all(w[f:] == 0.0)


@pytest.fixture
def rf_config() -> Config:
    # 40-dimensional inputs keep the feature Gram matrices well conditioned (condition numbers 27 and 140), so
    # that gradient descent converges within a few thousand steps.
    return replace(Config(), dataset="gaussian", n_samples=300, input_dim=40, n_classes=3, teacher_noise=0.5,
                   n_train=(20,), width=(5, 200), seed=(0,), model="random_fourier_features", method="min_norm",
                   loss="squared", batch_size=0, n_bootstrap=0)


@pytest.mark.parametrize("feature_draw", ["common", "independent"])
def test_member_solution_does_not_depend_on_the_other_widths_of_its_sweep(rf_config, feature_draw):
    together = run_sweep(replace(rf_config, width=(5, 30, 200), feature_draw=feature_draw))
    alone = run_sweep(replace(rf_config, width=(30,), feature_draw=feature_draw))
    for name, curve in alone.curves.items():
        np.testing.assert_allclose(together.curves[name][1], curve[0], rtol=1e-9, atol=1e-20)  # Losses ~1e-27.
    # One program a width (a stage of the staged solver), nothing compiled.
    assert together.n_programs == 3 and together.n_compiles == 0 and together.curves["test_error"].shape == (3, 1)


@pytest.mark.parametrize("feature_draw", ["common", "independent"])
def test_gradient_descent_from_zero_converges_to_the_closed_form(rf_config, feature_draw):
    """The trained family and the closed form draw the same features, whichever the draw."""
    closed = run_sweep(replace(rf_config, feature_draw=feature_draw))
    trained = run_sweep(replace(rf_config, method="train", optimizer="sgd", learning_rate=(1.0,), steps=3000,
                                n_evals=3, feature_draw=feature_draw))
    assert closed.final("train_loss")[0] > 0.1 and closed.final("train_loss")[1] < 1e-12  # Under and over.
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(trained.final(name), closed.final(name), rtol=1e-3, atol=1e-6)
    # The same test rows misclassified: equal counts, the trained mean summed in float32.
    np.testing.assert_allclose(trained.final("test_error"), closed.final("test_error"), rtol=1e-6)


@pytest.mark.parametrize("changes, fragment", [
    (dict(method="min_norm", model="mlp", loss="squared"), "model='mlp' is not allowed: with method=min_norm"),
    (dict(method="min_norm", model="random_relu_features"), "loss='cross_entropy' is not allowed"),
    (dict(dataset="gaussian_regression", model="mlp"), "with dataset=gaussian_regression only linear"),
    (dict(model="linear"), "linear only with dataset=gaussian_regression"),
    (dict(dataset="gaussian_regression", model="linear", loss="squared"), "method='train' is not allowed"),
    (dict(noise_var=-1.0), "noise_var=-1.0 is not allowed"),
    (dict(method="closed"), "method='closed' is not allowed: one of train, min_norm"),
    (dict(x_axis="seed"), "x_axis='seed' is not allowed"),
    (dict(n_bootstrap=-1), "n_bootstrap=-1 is not allowed"),
    (dict(feature_draw="shared"), "feature_draw='shared' is not allowed: one of common, independent"),
])
def test_new_config_fields_are_validated(changes, fragment):
    with pytest.raises(ConfigError) as error:
        replace(Config(), **changes)
    assert fragment in str(error.value) and "\n" not in str(error.value)
