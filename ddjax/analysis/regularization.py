"""The optimally regularized curve: at each x, the test error at the best regularization strength.

Nakkiran, Venkat, Kakade and Ma (2020, "Optimal Regularization Can Mitigate Double Descent") define it with the
strength of least expected test error at each x. A sweep over a strength axis (`ridge` or `weight_decay`) gives
two such curves, each labelled in the report and the figure:

  * oracle: at each x, the strength of least seed-mean test error, and every seed's test error there (the
    paper's definition; chosen on the test set, so its errors are biased low by the choice, and that bias
    flattens peaks: read it as the paper's curve, not as an unbiased estimate);
  * validation: for each seed and x, the strength of least `val_error` (the held-out last
    `validation_fraction` of the member's training examples), and that seed's test error there: a choice a
    practitioner can make, and no test error goes into it.

Whether a curve is monotone is decided by the calibrated test of `ddjax.analysis.verdict` (`peak_test`, the test
behind every double-descent verdict), one-sided: the largest rise of the seed mean (and of its 3-point running
mean) over every x against simulated non-increasing curves with the seeds' own noise. Monotone means no
significant rise (p > alpha or a rise below min_rise). The two-sided double-descent verdict of the same curve is reported beside it, its peak sought over
every x (an optimal curve has no single interpolation threshold to centre a window on), so it may differ from a
slice's verdict, whose peak window is centred on its threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddjax.analysis.modelwise import DEFAULT_MIN_RISE, binomial_noise, seed_mean_and_error
from ddjax.analysis.verdict import ALPHA, peak_test

ORACLE_LABEL = "oracle: strength of least seed-mean test error at each x (chosen on the test set)"
VALIDATION_LABEL = "validation: each seed's strength of least validation error at each x (no test data used)"


def oracle_choice(test_error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the chosen strength [K], chosen errors [S, K]) from test errors [L strengths, S seeds, K x]."""
    means = np.stack([seed_mean_and_error(errors)[0] for errors in test_error])  # [L, K]
    finite = np.isfinite(means)
    chosen = np.argmin(np.where(finite, means, np.inf), axis=0)
    errors = np.take_along_axis(test_error, chosen[None, None, :], axis=0)[0]
    return chosen, np.where(finite.any(axis=0), errors, np.nan)


def validation_choice(val_error: np.ndarray, test_error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the chosen strength [S, K], chosen test errors [S, K]): per seed and x, the strength of least
    validation error (ties: the smallest strength, the first listed); NaN where no strength has one."""
    finite = np.isfinite(val_error)
    chosen = np.argmin(np.where(finite, val_error, np.inf), axis=0)
    errors = np.take_along_axis(test_error, chosen[None], axis=0)[0]
    return chosen, np.where(finite.any(axis=0), errors, np.nan)


def monotone_verdict(errors: np.ndarray, *, n_test: int | None = None, min_rise: float = DEFAULT_MIN_RISE,
                     alpha: float = ALPHA) -> dict[str, Any]:
    """Is the curve errors [S, K] non-increasing in x, up to seed noise? The calibrated rise test (module
    docstring) decides `monotone`; the double-descent test of the same curve is listed beside it."""
    errors = np.atleast_2d(np.asarray(errors, dtype=float))
    mean, _ = seed_mean_and_error(errors)
    candidates = np.isfinite(mean)
    floor = binomial_noise(mean, n_test)
    rise = peak_test(errors, candidates, min_rise=min_rise, alpha=alpha, noise_floor=floor, sides="left")
    both = peak_test(errors, candidates, min_rise=min_rise, alpha=alpha, noise_floor=floor)
    return {"monotone": not rise.significant, "rise_test": _test(rise, mean),
            "double_descent": both.significant, "double_descent_test": _test(both, mean)}


def _test(test, mean: np.ndarray) -> dict[str, Any]:
    where = None if test.peak is None else int(test.peak)
    return {**test.to_dict(), "largest_rise": None if test.rises is None else _num(test.rises[0]),
            "at_index": where}


def optimal_curves(x: np.ndarray, strengths: np.ndarray, test_error: np.ndarray, val_error: np.ndarray | None, *,
                   n_test: int | None = None, min_rise: float = DEFAULT_MIN_RISE) -> dict[str, Any]:
    """The oracle and validation curves of one slice and their verdicts, JSON-ready.

    Args:
      x: [K] ascending.
      strengths: [L] ascending.
      test_error, val_error: [L, S, K] final errors per strength, seed and x (val_error None: no validation split).
    """
    chosen, errors = oracle_choice(test_error)
    oracle = {"label": ORACLE_LABEL, "strength": [float(strengths[i]) for i in chosen],
              "mean": _floats(seed_mean_and_error(errors)[0]),
              **monotone_verdict(errors, n_test=n_test, min_rise=min_rise)}
    validation = None
    if val_error is not None:
        picks, errors = validation_choice(val_error, test_error)
        validation = {"label": VALIDATION_LABEL, "strength": strengths[picks].tolist(),
                      "mean": _floats(seed_mean_and_error(errors)[0]),
                      **monotone_verdict(errors, n_test=n_test, min_rise=min_rise)}
    # Each strength's double-descent verdict is its slice's (peak window around its threshold); here, only
    # whether its curve is monotone, by the same rule as the optimal curves.
    per_strength = []
    for strength, errors in zip(strengths, test_error):
        verdict = monotone_verdict(errors, n_test=n_test, min_rise=min_rise)
        per_strength.append({"strength": float(strength), "mean": _floats(seed_mean_and_error(errors)[0]),
                             "monotone": verdict["monotone"], "rise_p_value": verdict["rise_test"]["p_value"]})
    return {"x": [float(v) for v in x], "strengths": [float(s) for s in strengths], "oracle": oracle,
            "validation": validation, "per_strength": per_strength}


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _floats(values: np.ndarray) -> list[float | None]:
    return [_num(v) for v in values]
