"""Closed-form risks against measured ones: minimum-norm least squares (model- and sample-wise), and gradient
descent over time (`compare_over_time`).

Hastie, Montanari, Rosset and Tibshirani (2019), "Surprises in high-dimensional ridgeless least squares
interpolation", Theorem 1: for x ~ N(0, I_p), y = x.b + e, |b|^2 = r^2, Var(e) = s^2 and p/n -> g, the excess
risk |b_hat - b|^2 of the minimum-norm least-squares estimator converges to

    s^2 g / (1 - g)                      for g < 1,
    r^2 (1 - 1/g) + s^2 / (g - 1)        for g > 1.

Its Theorem 5 (isotropic features) gives that of ridge regression, b_hat = argmin (1/n) |y - X b|^2 + l |b|^2:

    r^2 l^2 m'(-l) + s^2 g (m(-l) - l m'(-l)),

m the Stieltjes transform of the Marchenko-Pastur law of ratio g, m(-l) = (-(1 - g + l) + sqrt((1 - g + l)^2 +
4 g l)) / (2 g l); it tends to the minimum-norm risk as l -> 0, and is smallest at l = s^2 g / r^2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ddjax.analysis.epochwise import after_initial_descent, curve_shape
from ddjax.analysis.modelwise import seed_mean_and_error
from ddjax.analysis.verdict import descents

EXCLUDED_BAND = (0.8, 1.25)  # g where finite n, p are far from the limit (the risk diverges at g = 1).
RELATIVE_TOLERANCE = 0.1


def min_norm_excess_risk(gamma: ArrayLike, signal_norm_sq: float, noise_var: float) -> np.ndarray:
    """The limit of |b_hat - b|^2 at g = p / n (Hastie et al. 2019, Thm. 1); inf at g = 1."""
    g = np.asarray(gamma, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise_var * g / (1 - g)
        over = signal_norm_sq * (1 - 1 / g) + noise_var / (g - 1)
    return np.where(g < 1, under, np.where(g > 1, over, np.inf))


def ridge_excess_risk(gamma: ArrayLike, ridge: float, signal_norm_sq: float, noise_var: float) -> np.ndarray:
    """The limit of |b_hat - b|^2 of ridge regression at g = p / n and strength `ridge` (Hastie et al. 2019,
    Thm. 5); `min_norm_excess_risk` at ridge = 0."""
    if ridge == 0:
        return min_norm_excess_risk(gamma, signal_norm_sq, noise_var)
    g, l = np.asarray(gamma, dtype=float), float(ridge)
    a = 1 - g + l
    root = np.sqrt(a**2 + 4 * g * l)
    m = (root - a) / (2 * g * l)  # m(-l) = integral of 1 / (s + l) under Marchenko-Pastur.
    dm_dl = (((a + 2 * g - root) / root) * l - (root - a)) / (2 * g * l**2)  # d m(-l) / d l = -m'(-l).
    m_prime = -dm_dl
    return signal_norm_sq * l**2 * m_prime + noise_var * g * (m - l * m_prime)


def optimal_ridge(gamma: ArrayLike, signal_norm_sq: float, noise_var: float) -> np.ndarray:
    """The strength of least limiting risk at g = p / n for isotropic features: s^2 g / r^2 (Dobriban and Wager
    2018; Hastie et al. 2019, Cor. 6)."""
    return noise_var * np.asarray(gamma, dtype=float) / signal_norm_sq


def finite_sample_excess_risk(n: ArrayLike, p: ArrayLike, signal_norm_sq: float, noise_var: float) -> np.ndarray:
    """E|b_hat - b|^2 at finite n and p for a Gaussian design (inf where it is infinite, |n - p| <= 1).

    From the mean of an inverse Wishart matrix: s^2 p / (n - p - 1) for p < n - 1, and
    r^2 (1 - n/p) + s^2 n / (p - n - 1) for p > n + 1. It tends to `min_norm_excess_risk` as n, p grow.
    """
    n, p = np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise_var * p / (n - p - 1)
        over = signal_norm_sq * (1 - n / p) + noise_var * n / (p - n - 1)
    return np.where(p < n - 1, under, np.where(p > n + 1, over, np.inf))


def compare_to_theory(n: ArrayLike, p: ArrayLike, excess_risk: ArrayLike, signal_norm_sq: float,
                      noise_var: float, *, excluded_band: tuple[float, float] = EXCLUDED_BAND,
                      tolerance: float = RELATIVE_TOLERANCE, ridge: float = 0.0) -> dict[str, Any]:
    """Measured seed-mean excess risk against the limit, point by point.

    Args:
      n, p: shape (K,): samples and dimension of each point.
      excess_risk: shape (S, K): |b_hat - b|^2 over S seeds.
      excluded_band: g = p/n in this closed interval is reported but not judged.
      tolerance: the largest relative deviation |measured - theory| / theory that `matches` allows.
      ridge: the estimator's ridge strength (0: minimum norm); the finite-sample column is for 0 only.

    Returns:
      A JSON-ready dict: one entry per point and `max_relative_deviation` / `matches` over the judged points.
    """
    n, p = np.asarray(n, dtype=float), np.asarray(p, dtype=float)
    mean, stderr = seed_mean_and_error(excess_risk)
    gamma = p / n
    theory = ridge_excess_risk(gamma, ridge, signal_norm_sq, noise_var)
    finite = (finite_sample_excess_risk(n, p, signal_norm_sq, noise_var) if ridge == 0
              else np.full(gamma.shape, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.abs(mean - theory) / theory
    judged = ~((gamma >= excluded_band[0]) & (gamma <= excluded_band[1])) & np.isfinite(deviation)
    points = [{"n": float(n[k]), "p": float(p[k]), "gamma": float(gamma[k]), "measured": _num(mean[k]),
               "stderr": _num(stderr[k]), "theory": _num(theory[k]), "finite_sample_theory": _num(finite[k]),
               "relative_deviation": _num(deviation[k]), "judged": bool(judged[k])} for k in range(len(gamma))]
    worst = float(np.max(deviation[judged])) if judged.any() else None
    formula = ("Hastie et al. 2019, Thm. 1: s^2 g/(1-g) for g<1, r^2 (1-1/g) + s^2/(g-1) for g>1" if ridge == 0 else
               f"Hastie et al. 2019, Thm. 5 at lambda = {ridge:g}: r^2 l^2 m'(-l) + s^2 g (m(-l) - l m'(-l))")
    return {
        "formula": formula, "ridge": ridge,
        "signal_norm_sq": signal_norm_sq, "noise_var": noise_var, "excluded_band": list(excluded_band),
        "tolerance": tolerance, "max_relative_deviation": worst,
        "matches": worst is not None and worst <= tolerance, "points": points,
    }


def _num(value: float) -> float | None:
    """A float for JSON: None for inf and NaN (which JSON cannot hold)."""
    return float(value) if np.isfinite(value) else None


# Trained curves are stored in float32: a difference from the closed form below this share of the risk is rounding,
# whatever the seeds' spread of differences (which vanishes where both start from the same outputs).
ROUNDING = 1e-6
GD_FORMULA = "E_e R(w_t) from the eigendecomposition of X^T X / n (Heckel & Yilmaz 2020)"


def compare_over_time(steps: ArrayLike, measured: ArrayLike, theory: ArrayLike, *, min_rise: float,
                      formula: str = GD_FORMULA) -> dict[str, Any]:
    """Trained risk over time against its closed form (`ddjax.solvers.gradient_descent`), and the closed form's shape.

    Args:
      steps: shape (T,), the eval steps.
      measured: shape (S, T): the trained test risk of S seeds.
      theory: shape (S, T): each seed's closed-form risk given its design, averaged over the label noise.
      min_rise: the rise (in risk units) that counts as a second descent of the closed form.

    Returns:
      A JSON-ready dict: both seed means, the largest relative deviation of the means, the largest deviation of
      the mean in standard errors of the seeds' differences (trained minus closed form; these differ only by the
      label-noise draw, so about 2-3 at most over T steps when they agree), and whether the closed form itself
      has epoch-wise double descent (a fall, a rise and a second fall, each > min_rise) with its shape in words.
    """
    steps = np.asarray(steps, float)
    measured, theory = np.atleast_2d(np.asarray(measured, float)), np.atleast_2d(np.asarray(theory, float))
    mean, _ = seed_mean_and_error(measured)
    expected, _ = seed_mean_and_error(theory)
    difference, difference_error = seed_mean_and_error(measured - theory)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.abs(mean - expected) / np.abs(expected)
        z = np.abs(difference) / np.maximum(difference_error, ROUNDING * np.abs(expected))
    descent = np.where(after_initial_descent(expected, min_rise), descents(expected), -np.inf)
    peak = int(np.argmax(descent))
    second = bool(descent[peak] > min_rise)
    shape, description, _ = curve_shape(steps, expected, min_rise=min_rise, double_descent=second,
                                        peak=peak if second else None)
    finite_z = z[np.isfinite(z)]
    return {"formula": formula,
            "steps": steps.tolist(), "measured": [_num(v) for v in mean], "theory": [_num(v) for v in expected],
            "max_relative_deviation": _num(np.nanmax(relative)) if np.isfinite(relative).any() else None,
            "max_deviation_in_standard_errors": float(finite_z.max()) if finite_z.size else None,
            "min_rise": min_rise, "theory_double_descent": second, "theory_shape": shape,
            "theory_description": description}
