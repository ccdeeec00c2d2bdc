"""Interpolation threshold, test-error peak and regimes of a double-descent curve; bootstrap over seeds; EMC.

Pure numpy on host arrays: analysis runs after training, on the stacked curves a sweep returns. Every
location is read off the seed-mean curves; non-finite entries (diverged members) are dropped, never imputed.
The yes/no verdict is the calibrated test of `ddjax.analysis.verdict` (its false-positive rate and power are measured by
`benchmarks/verdict_calibration.py`); the seed bootstrap gives intervals only.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ddjax.analysis.verdict import ALPHA, descents, peak_test

DEFAULT_MIN_RISE = 0.005  # half a percentage point of error
PEAK_WINDOW = 4.0  # the peak is looked for within this factor of the interpolation threshold
BOOTSTRAP_CONFIDENCE = 0.9  # two-sided level of the intervals
# A model interpolates by its train loss when the loss falls to this fraction of its largest value along x: a
# minimum-norm least-squares fit leaves ~1e-16 of it (float64) from the threshold on, and >= 1e-3 just below.
LOSS_TOLERANCE = 1e-6

Point = dict[str, float]  # {"x": location, "error": seed-mean error there}


@dataclasses.dataclass(frozen=True)
class DoubleDescentReport:
    """What `analyze` found. Locations are values of `x`; errors are seed means.

    Attributes:
      interpolation_threshold: the threshold the regimes and the peak window use: `loss_threshold` when a
        train loss was given (see `threshold_basis`), else `error_threshold`.
      threshold_reached: whether `interpolation_threshold` exists.
      test_error_peak: {"x", "error"}: the test-error peak (rule in `analyze`); None without test data.
      under_min: {"x", "error"}: lowest mean test error at x strictly below the peak (above, for a
        sample-wise sweep); None if no such x.
      over_min: {"x", "error"}: lowest mean test error at x strictly above the peak (below, for a sample-wise
        sweep); None if no such x.
      overparameterized_regime: {"start", "end"}: the x range past both the threshold and the peak (before
        both, for a sample-wise sweep); None without a threshold or when no x lies past both.
      double_descent: the calibrated test's verdict (rule in `analyze`).
      n_seeds: rows S of the error arrays (1 for 1-D input).
      n_excluded: non-finite entries dropped, counted over train_error and test_error together.
      train_tolerance: the tolerance used for the threshold.
      min_rise: the smallest rise that counts as a peak.
      notes: human-readable findings, including why a quantity is missing.
      bootstrap: the result of `bootstrap_seeds` when `analyze` was asked for resamples and had >= 2 seeds,
        else None. It gives intervals; it does not decide `double_descent`.
      evidence: what `double_descent` rests on, in words (with one seed: "not tested against seed noise").
      p_value: the calibrated test's p-value (None when it did not run: one seed without a noise floor, or no
        peak with a point on each side).
      threshold_basis: "train_loss" or "train_error": which threshold `interpolation_threshold` is.
      error_threshold: smallest x whose mean train error is <= train_tolerance (largest x for a sample-wise
        sweep); None if none is.
      loss_threshold: the same for the mean train loss <= loss_tolerance x its largest value along x; None
        without a train loss or if none is.
      loss_tolerance: the relative loss tolerance used, None without a train loss.
      rise_test: sample-wise sweeps only: the calibrated test (`peak_test`, sides="left") of a rise of the test
        error with more data somewhere in the peak window ("more data hurts"), as {"statistic", "p_value",
        "significant", "evidence"}; None otherwise.
    """

    interpolation_threshold: float | None
    threshold_reached: bool
    test_error_peak: Point | None
    under_min: Point | None
    over_min: Point | None
    overparameterized_regime: dict[str, float] | None
    double_descent: bool
    n_seeds: int
    n_excluded: int
    train_tolerance: float
    min_rise: float
    notes: tuple[str, ...]
    bootstrap: dict[str, Any] | None = None
    evidence: str = ""
    p_value: float | None = None
    threshold_basis: str = "train_error"
    error_threshold: float | None = None
    loss_threshold: float | None = None
    loss_tolerance: float | None = None
    rise_test: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns the report as plain Python types (JSON-serializable; None stays None)."""
        report = dataclasses.asdict(self)  # asdict copies the nested dicts, so callers cannot mutate self
        report["notes"] = list(self.notes)
        return report


def seed_mean_and_error(errors: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Seed mean and its standard error, ignoring non-finite entries.

    Args:
      errors: shape (K,) or (S, K), S seeds.

    Returns:
      (mean, stderr), each of shape (K,). mean is NaN where a column has no finite entry; stderr is
      std(ddof=1) / sqrt(count) where a column has >= 2 finite entries, else 0.
    """
    errors = np.asarray(errors, dtype=float)
    if errors.ndim == 1:
        errors = errors[None]
    if errors.ndim != 2:
        raise ValueError(f"errors must have shape (K,) or (S, K), got {errors.shape}")
    # Masked sums instead of np.nanmean/nanstd: those warn on all-NaN columns, which are expected here.
    finite = np.isfinite(errors)
    count = finite.sum(axis=0)
    safe_count = np.maximum(count, 1)
    mean = np.where(finite, errors, 0.0).sum(axis=0) / safe_count
    squares = np.where(finite, errors - mean, 0.0) ** 2
    std = np.sqrt(squares.sum(axis=0) / np.maximum(count - 1, 1))
    stderr = np.where(count >= 2, std / np.sqrt(safe_count), 0.0)
    return np.where(count > 0, mean, np.nan), stderr


def analyze(x: ArrayLike, train_error: ArrayLike, test_error: ArrayLike, *,
            train_tolerance: float = 0.01, min_rise: float | None = None, samplewise: bool = False,
            n_bootstrap: int = 0, bootstrap_seed: int = 0, confidence: float = BOOTSTRAP_CONFIDENCE,
            train_loss: ArrayLike | None = None, loss_tolerance: float = LOSS_TOLERANCE,
            n_test: int | None = None, alpha: float = ALPHA) -> DoubleDescentReport:
    """Finds the interpolation threshold and the test-error peak, and decides whether there is double descent.

    Rules, all on seed-mean curves and over the x where the mean is finite:
      * threshold: the smallest x with mean train error <= `train_tolerance`; with `train_loss` (closed-form
        read-outs, where the loss itself reaches zero), the smallest x with mean train loss <= `loss_tolerance`
        x its largest mean along x, which is where the theory puts the threshold (both are reported).
      * peak: candidates are the x in [threshold / 4, threshold * 4], or every x without a threshold. A
        candidate's descent is min(error - lowest error left of it, error - lowest error right of it) on the
        whole curve; the peak is the candidate with the largest positive descent (a local maximum, or an
        edge of the window), or the highest candidate if no descent is positive.
      * under_min / over_min: the lowest mean test error strictly left / right of the peak.
      * overparameterized_regime: from the first x that is >= threshold and > peak x, to max(x).
      * double_descent: `ddjax.analysis.verdict.peak_test` over the peak window: the largest descent (of the seed
        mean and of its 3-point running mean) is compared with its distribution on simulated peak-free curves with the seeds' own noise, which accounts for the peak
        and both minima being chosen from the data; it needs p <= `alpha` and both rises > min_rise. With one
        seed there is no seed noise to test against: with `n_test` the test runs against the test set's
        binomial standard error sqrt(e (1 - e) / n_test) (a lower bound of the noise), else min_rise alone
        decides; `evidence` says which. The bootstrap (`n_bootstrap` > 0) gives intervals, never the verdict.
    With `samplewise=True` x is the training-set size, and a model interpolates small x, not large x: the
    threshold is the largest x with mean train error <= `train_tolerance`, the under-parameterized side is
    right of the peak (more data than the model fits) and the over-parameterized regime runs from min(x) to
    the last x that is <= threshold and < peak x.

    Args:
      x: shape (K,), positive and strictly ascending (width, number of features, n_train, ...).
      train_error: shape (K,) or (S, K) over S seeds; NaN (or inf) marks a diverged member.
      test_error: same shape as train_error.
      train_tolerance: mean train error at or below which a model counts as interpolating.
      min_rise: the smallest rise that counts as a peak; None means DEFAULT_MIN_RISE.
      samplewise: x is the number of training samples (see above).
      n_bootstrap: resamples of seeds for confidence intervals (0: none).
      bootstrap_seed: seed of the resampling.
      confidence: level of the bootstrap intervals.
      train_loss: same shape as train_error, for the loss-based threshold (see above); None: error-based.
      loss_tolerance: relative tolerance of the loss-based threshold.
      n_test: test-set size, for the one-seed noise floor of a classification error; None: no floor.
      alpha: level of the calibrated test.

    Returns:
      A DoubleDescentReport.
    """
    return _analyze(x, train_error, test_error, train_tolerance=train_tolerance, min_rise=min_rise,
                    samplewise=samplewise, n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed,
                    confidence=confidence, train_loss=train_loss, loss_tolerance=loss_tolerance, n_test=n_test,
                    alpha=alpha, run_test=True)


def _analyze(x, train_error, test_error, *, train_tolerance, min_rise, samplewise, n_bootstrap, bootstrap_seed,
             confidence, train_loss, loss_tolerance, n_test, alpha, run_test) -> DoubleDescentReport:
    """`analyze`; without `run_test` (the bootstrap's resamples) the verdict is left False, untested."""
    x, train, test = check_curves(x, train_error, test_error)
    min_rise = DEFAULT_MIN_RISE if min_rise is None else float(min_rise)
    if train_tolerance < 0 or min_rise < 0:
        raise ValueError(f"train_tolerance and min_rise must be >= 0, got {train_tolerance} and {min_rise}")
    if n_test is not None and n_test < 1:
        raise ValueError(f"n_test must be a positive integer or None, got {n_test}")
    train_mean, _ = seed_mean_and_error(train)
    test_mean, _ = seed_mean_and_error(test)
    n_excluded = int(np.sum(~np.isfinite(train)) + np.sum(~np.isfinite(test)))
    notes = []
    if n_excluded == train.size + test.size:
        notes.append(f"no data: all {n_excluded} entries are non-finite")
    elif n_excluded:
        notes.append(f"excluded {n_excluded} non-finite entries (diverged members)")
        for name, mean in (("train", train_mean), ("test", test_mean)):
            if np.isnan(mean).any():
                missing = ", ".join(f"{v:g}" for v in x[np.isnan(mean)])
                notes.append(f"no finite {name} error at x=[{missing}]")

    error_threshold = _interpolation_threshold(x, train_mean, train_tolerance, notes, largest=samplewise)
    threshold, loss_threshold, basis = error_threshold, None, "train_error"
    if train_loss is not None:
        _, loss, _ = check_curves(x, train_loss, train_loss)
        loss_mean, _ = seed_mean_and_error(loss)
        scale = np.nanmax(loss_mean) if np.isfinite(loss_mean).any() else np.nan
        loss_threshold = _interpolation_threshold(x, loss_mean, loss_tolerance * scale, notes, largest=samplewise,
                                                  name="train loss")
        threshold, basis = loss_threshold, "train_loss"
        if loss_threshold != error_threshold:
            notes.append(f"the regimes use the loss-based threshold ({_g(loss_threshold)}), where the train loss "
                         f"reaches zero, not the error-based one ({_g(error_threshold)})")
    peak = _peak_index(x, test_mean, threshold)
    under = over = regime = None
    if peak is None:
        notes.append("no test-error peak: no finite test error" + ("" if threshold is None else " near the threshold"))
    else:
        notes.append(f"test error peaks at x={x[peak]:g} (error {test_mean[peak]:.4g})")
        under = _argmin_where(test_mean, x < x[peak])
        over = _argmin_where(test_mean, x > x[peak])
        if samplewise:
            under, over = over, under
    if threshold is not None and not samplewise:
        past = np.flatnonzero((x >= threshold) & (x > (-np.inf if peak is None else x[peak])))
        regime = {"start": float(x[past[0]]), "end": float(x[-1])} if past.size else None
    elif threshold is not None:
        past = np.flatnonzero((x <= threshold) & (x < (np.inf if peak is None else x[peak])))
        regime = {"start": float(x[0]), "end": float(x[past[-1]])} if past.size else None
    double_descent, evidence, p_value = False, "not tested", None
    if peak is not None and run_test:
        double_descent, evidence, p_value = _is_double_descent(x, test, test_mean, threshold, peak, under, over,
                                                               min_rise, notes, samplewise, n_test, alpha)
    rise_test = None
    if samplewise and run_test and peak is not None:
        rise_test = peak_test(test, peak_window(x, np.isfinite(test_mean), threshold), min_rise=min_rise,
                              alpha=alpha, noise_floor=binomial_noise(test_mean, n_test), sides="left").to_dict()
    bootstrap = None
    if n_bootstrap > 0 and train.shape[0] < 2:
        notes.append("no bootstrap: one seed")
    elif n_bootstrap > 0 and peak is not None:
        bootstrap = bootstrap_seeds(x, train, test, n_resamples=n_bootstrap, seed=bootstrap_seed,
                                    confidence=confidence, train_tolerance=train_tolerance, min_rise=min_rise,
                                    samplewise=samplewise, train_loss=train_loss, loss_tolerance=loss_tolerance)
        notes.append(f"bootstrap over {train.shape[0]} seeds: intervals from {n_bootstrap} resamples (they do "
                     f"not decide the verdict)")
    return DoubleDescentReport(
        interpolation_threshold=threshold,
        threshold_reached=threshold is not None,
        test_error_peak=_point(x, test_mean, peak),
        under_min=_point(x, test_mean, under),
        over_min=_point(x, test_mean, over),
        overparameterized_regime=regime,
        double_descent=double_descent,
        n_seeds=train.shape[0],
        n_excluded=n_excluded,
        train_tolerance=float(train_tolerance),
        min_rise=min_rise,
        notes=tuple(notes),
        bootstrap=bootstrap,
        evidence=evidence,
        p_value=p_value,
        threshold_basis=basis,
        error_threshold=error_threshold,
        loss_threshold=loss_threshold,
        loss_tolerance=None if train_loss is None else float(loss_tolerance),
        rise_test=rise_test,
    )


def bootstrap_seeds(x: ArrayLike, train_error: ArrayLike, test_error: ArrayLike, *, n_resamples: int = 500,
                    seed: int = 0, confidence: float = BOOTSTRAP_CONFIDENCE, train_tolerance: float = 0.01,
                    min_rise: float | None = None, samplewise: bool = False, train_loss: ArrayLike | None = None,
                    loss_tolerance: float = LOSS_TOLERANCE) -> dict[str, Any]:
    """Percentile intervals of the threshold, the peak location and the peak height, resampling seeds.

    Each resample draws S of the S seed rows with replacement (a seeded numpy Generator) and locates the
    threshold, peak and minima on them as `analyze` does. Intervals run from the (1 - confidence)/2 to the (1 + confidence)/2 quantile of the resampled
    values (values that occur in some resample); `fraction_defined` is the share of resamples in which the
    quantity exists (e.g. the threshold was reached). `rise_under` / `rise_over` are the peak's height above
    the under- / over-parameterized minimum; `p_double_descent` is the share of resamples in which both exceed
    `min_rise`, a description only: the same seeds make the same winner in most resamples, so it is no test
    (it called up to 100% of peak-free curves double descent; `benchmarks/verdict_calibration.py`). With few
    seeds the resamples take few distinct values, so the intervals are coarse.

    Returns:
      A JSON-ready dict; each interval is {"low", "high", "fraction_defined"} or None if never defined.
    """
    x, train, test = check_curves(x, train_error, test_error)
    loss = None if train_loss is None else check_curves(x, train_loss, train_loss)[1]
    min_rise = DEFAULT_MIN_RISE if min_rise is None else float(min_rise)
    draws = np.random.default_rng(seed).integers(0, train.shape[0], size=(n_resamples, train.shape[0]))
    names = ("interpolation_threshold", "peak_x", "peak_error", "rise_under", "rise_over")
    values = np.full((n_resamples, len(names)), np.nan)
    for i, rows in enumerate(draws):
        report = _analyze(x, train[rows], test[rows], train_tolerance=train_tolerance, min_rise=min_rise,
                          samplewise=samplewise, n_bootstrap=0, bootstrap_seed=0, confidence=confidence,
                          train_loss=None if loss is None else loss[rows], loss_tolerance=loss_tolerance,
                          n_test=None, alpha=ALPHA, run_test=False)
        peak, under, over = report.test_error_peak, report.under_min, report.over_min
        if report.interpolation_threshold is not None:
            values[i, 0] = report.interpolation_threshold
        if peak is not None:
            values[i, 1:3] = peak["x"], peak["error"]
            values[i, 3] = np.nan if under is None else peak["error"] - under["error"]
            values[i, 4] = np.nan if over is None else peak["error"] - over["error"]
    p_double_descent = float(np.mean((values[:, 3] > min_rise) & (values[:, 4] > min_rise)))  # NaN is False
    return {
        "n_resamples": int(n_resamples), "seed": int(seed), "confidence": float(confidence),
        **{name: _interval(values[:, j], confidence) for j, name in enumerate(names)},
        "p_double_descent": p_double_descent,
    }


def _interval(values: np.ndarray, confidence: float) -> dict[str, float] | None:
    defined = values[np.isfinite(values)]
    if not defined.size:
        return None
    low, high = np.quantile(defined, [(1 - confidence) / 2, (1 + confidence) / 2], method="inverted_cdf")
    return {"low": float(low), "high": float(high), "fraction_defined": defined.size / values.size}


def effective_model_complexity(n_train: ArrayLike, train_error: ArrayLike, *,
                               tolerance: float = 0.01) -> dict[str, Any]:
    """EMC (Nakkiran et al. 2019): the largest n_train at which the mean train error is still <= tolerance.

    Args:
      n_train: shape (K,), ascending training-set sizes of a sample-wise sweep at one model size.
      train_error: shape (K,) or (S, K) over S seeds.
      tolerance: the epsilon of the definition.

    Returns:
      {"emc", "censored", "tolerance", "note"}: `emc` is None if no n reaches the tolerance; `censored` means
      the largest n still does, so the EMC is at least that.
    """
    x, train, _ = check_curves(n_train, train_error, train_error)
    mean, _ = seed_mean_and_error(train)
    reached = np.flatnonzero(mean <= tolerance)
    if not reached.size:
        return {"emc": None, "censored": False, "tolerance": float(tolerance),
                "note": f"train error > {tolerance:g} at every n (EMC below n={x[0]:g})"}
    emc, censored = float(x[reached[-1]]), bool(reached[-1] == x.size - 1)
    note = f"EMC {'>= ' if censored else ''}{emc:g}: the largest n with mean train error <= {tolerance:g}"
    return {"emc": emc, "censored": censored, "tolerance": float(tolerance), "note": note}


def check_curves(x: ArrayLike, train_error: ArrayLike,
                 test_error: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validates curves and returns (x, train_error, test_error) as float arrays, errors of shape (S, K)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty 1-D array, got shape {x.shape}")
    bad = np.flatnonzero(~(np.isfinite(x) & (x > 0)))
    if bad.size:
        raise ValueError(f"x must be positive and finite, got x[{bad[0]}]={x[bad[0]]:g}")
    bad = np.flatnonzero(np.diff(x) <= 0)
    if bad.size:
        i = bad[0] + 1
        raise ValueError(f"x must be strictly ascending, got x[{i}]={x[i]:g} after x[{i - 1}]={x[i - 1]:g}")
    train, test = np.asarray(train_error, dtype=float), np.asarray(test_error, dtype=float)
    for name, errors in (("train_error", train), ("test_error", test)):
        if errors.ndim not in (1, 2) or errors.shape[-1] != x.size:
            raise ValueError(f"{name} must have shape (K,) or (S, K) with K=len(x)={x.size}, got {errors.shape}")
    if train.shape != test.shape:
        raise ValueError(f"train_error and test_error shapes disagree: {train.shape} vs {test.shape}")
    return x, np.atleast_2d(train), np.atleast_2d(test)


def _interpolation_threshold(x, train_mean, tolerance, notes, largest=False, name="train error") -> float | None:
    reached = np.flatnonzero(train_mean <= tolerance)  # NaN compares False, so missing x never count
    if reached.size:
        i = reached[-1] if largest else reached[0]
        notes.append(f"interpolation threshold at x={x[i]:g} ({name} {train_mean[i]:.4g} <= {tolerance:.4g})")
        return float(x[i])
    i = _argmin_where(train_mean, np.ones(x.shape, bool))
    if i is None:
        notes.append(f"interpolation threshold unknown: no finite {name}")
    else:
        notes.append(f"{name} never reached {tolerance:.4g} (min {train_mean[i]:.4g} at x={x[i]:g})")
    return None


def _g(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _peak_index(x, test_mean, threshold) -> int | None:
    candidates = np.flatnonzero(peak_window(x, np.isfinite(test_mean), threshold))
    if not candidates.size:
        return None
    descent = prominence(test_mean)[candidates]
    if descent.max() > 0:
        return int(candidates[np.argmax(descent)])
    return int(candidates[np.argmax(test_mean[candidates])])


def prominence(y: np.ndarray) -> np.ndarray:
    """min(y[i] - lowest y left of i, y[i] - lowest y right of i); -inf at the edges and where y is not finite.

    The smaller of the two descents is exactly what the double-descent test weighs against the noise
    (`ddjax.analysis.verdict.descents`, of which this is the one-curve case).
    """
    return descents(np.asarray(y, dtype=float))


def peak_window(x: np.ndarray, finite: np.ndarray, threshold: float | None) -> np.ndarray:
    """Where the peak may be: finite x within a factor PEAK_WINDOW of the threshold (every finite x without)."""
    if threshold is None:
        return finite
    return finite & (x >= threshold / PEAK_WINDOW) & (x <= threshold * PEAK_WINDOW)


def binomial_noise(mean: np.ndarray, n_test: int | None) -> np.ndarray | None:
    """sqrt(e (1 - e) / n_test) of a classification error e: the test set's share of the noise (a lower bound)."""
    if n_test is None:
        return None
    e = np.clip(mean, 0.0, 1.0)
    return np.sqrt(e * (1 - e) / n_test)


def _is_double_descent(x, test, mean, threshold, peak, under, over, min_rise, notes, samplewise, n_test,
                       alpha) -> tuple[bool, str, float | None]:
    if under is None or over is None:
        side = "below" if (under is None) != samplewise else "above"
        notes.append(f"no double descent: no x {side} the peak at x={x[peak]:g}")
        return False, "no x on one side of the peak", None
    result = peak_test(test, peak_window(x, np.isfinite(mean), threshold), min_rise=min_rise, alpha=alpha,
                       noise_floor=binomial_noise(mean, n_test))
    rises = [mean[peak] - mean[i] for i in (under, over)]
    tested = "" if result.p_value is None else f", p = {result.p_value:.3g} (level {alpha:g})"
    notes.append(f"{'double descent' if result.significant else 'no double descent'}: the peak is {rises[0]:.4g} "
                 f"above the under-parameterized min and {rises[1]:.4g} above the over-parameterized min "
                 f"(min_rise {min_rise:g}){tested}; {result.evidence}")
    return result.significant, result.evidence, result.p_value


def _argmin_where(values, mask) -> int | None:
    candidates = np.flatnonzero(mask & np.isfinite(values))
    return int(candidates[np.argmin(values[candidates])]) if candidates.size else None


def _point(x, mean, i) -> Point | None:
    return None if i is None else {"x": float(x[i]), "error": float(mean[i])}

