"""Epoch-wise double descent: the test error of one model size against training steps (Nakkiran et al. 2019).

Works on rows of the stacked `[member, eval_step]` curves: the members of one model size, one row per seed.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ddjax.analysis.modelwise import binomial_noise, prominence, seed_mean_and_error
from ddjax.analysis.verdict import ALPHA, descents, peak_test

# Larger than the model-wise default: one member's test error wobbles by about a percentage point between
# neighbouring eval steps (MNIST-1D MLPs trained with Adam, measured), and every wobble after a descent is a
# candidate peak.
EPOCHWISE_MIN_RISE = 0.02
# Single evaluations of SGD iterates jump (by 3 points at one step, in MNIST-1D runs): a running median over this
# many eval steps keeps one jump, up or down, from counting as the peak or a minimum.
SMOOTHING_WINDOW = 3
# What an epoch-wise curve does (`curve_shape`): falls and never rises by min_rise; falls to a minimum, then rises
# by at least min_rise to the end (overfitting); the calibrated test's double descent; a rise of at least
# min_rise that falls back, within noise; never falls by min_rise at all.
SHAPES = ("monotone_descent", "u_shaped", "double_descent", "bump_within_noise", "no_descent")

StepPoint = dict[str, float]  # {"step": eval step, "error": seed-mean test error there}


@dataclasses.dataclass(frozen=True)
class EpochwiseReport:
    """What `epochwise_analysis` found for one model size.

    Attributes:
      peak: {"step", "error"}: the test-error peak after the initial descent, on the smoothed seed-mean curve;
        None if that curve never rises after falling (no eval step is above a lower step on each side).
      first_min: {"step", "error"}: the lowest test error before the peak (the end of the initial descent).
      later_min: {"step", "error"}: the lowest test error after the peak.
      epochwise_double_descent: the calibrated test's verdict on the peak (rule in `epochwise_analysis`).
      interpolation_step: the first eval step whose mean train error is <= train_tolerance, or None.
      member_peaks: per seed row, {"step", "prominence"} of that member's own peak (same rule) or None.
      final_error: the seed-mean test error at the last eval step (not smoothed).
      min_rise: the smallest rise that counted.
      smoothing_window: eval steps in the running median applied before looking for peaks and minima.
      notes: human-readable findings.
      p_value: the calibrated test's p-value (None when it did not run).
      evidence: what the verdict rests on, in words.
      shape: what the smoothed seed-mean curve does, one of SHAPES (`curve_shape`).
      description: the shape in words, with its numbers (every rise of at least min_rise is named).
      final_rise: {"step", "error", "rise", "final_error"}: the lowest point and the rise from it to the last
        eval step (U-shaped curves, and any curve that ends above its minimum), else None.
      rise_p_value: the calibrated test of the largest rise after the initial descent against non-increasing
        curves with the seeds' noise (one-sided, as "more data hurts"); None when the curve has no rise.
    """

    peak: StepPoint | None
    first_min: StepPoint | None
    later_min: StepPoint | None
    epochwise_double_descent: bool
    interpolation_step: float | None
    member_peaks: tuple[dict[str, float] | None, ...]
    final_error: float | None
    min_rise: float
    smoothing_window: int
    notes: tuple[str, ...]
    p_value: float | None = None
    evidence: str = ""
    shape: str = ""
    description: str = ""
    final_rise: dict[str, float] | None = None
    rise_p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python types (JSON-serializable)."""
        report = dataclasses.asdict(self)
        report["member_peaks"], report["notes"] = list(self.member_peaks), list(self.notes)
        return report


def epochwise_analysis(steps: ArrayLike, train_error: ArrayLike, test_error: ArrayLike, *,
                       train_tolerance: float = 0.01, min_rise: float | None = None,
                       smoothing_window: int = SMOOTHING_WINDOW, n_test: int | None = None,
                       alpha: float = ALPHA) -> EpochwiseReport:
    """Finds the test-error peak in training time and decides whether it is epoch-wise double descent.

    Rules, on the seed-mean test error over eval steps (non-finite entries dropped), smoothed by a running median
    over `smoothing_window` eval steps (1: none; the first and last steps keep their values):
      * peak: among the steps after the initial descent (after the error first falls `min_rise` below its
        value at the first step), the one with the largest positive prominence min(error - lowest error at an
        earlier step, error - lowest error at a later step); a curve that only falls (or only rises) has none.
      * epoch-wise double descent: the calibrated test of `ddjax.analysis.verdict.peak_test`, the same as the model-wise
        verdict's: the largest descent of the smoothed seed-mean curve (and of its 3-point running mean) is
        compared with that of simulated peak-free curves (with the seeds' own noise, smoothed alike, over the
        same candidate steps); it needs p <= `alpha` and both rises above `min_rise`. Each seed is one member's curve; with one seed
        the test runs against the test set's binomial noise when `n_test` is given, else min_rise decides.

    Args:
      steps: shape (T,), ascending eval steps (step 0 included or not).
      train_error, test_error: shape (T,) or (S, T) over S seeds.
      train_tolerance: for `interpolation_step`.
      min_rise: the smallest rise that counts; None means EPOCHWISE_MIN_RISE.
      smoothing_window: an odd number of eval steps.
      n_test: test-set size, for the one-seed noise floor; None: none.
      alpha: level of the test.
    """
    steps = np.asarray(steps, dtype=float)
    train, test = np.atleast_2d(np.asarray(train_error, float)), np.atleast_2d(np.asarray(test_error, float))
    if steps.ndim != 1 or np.any(np.diff(steps) <= 0) or train.shape != test.shape or test.shape[1] != steps.size:
        raise ValueError(f"need ascending steps (T,) and errors (S, T) of one shape, got {steps.shape}, "
                         f"{train.shape} and {test.shape}")
    if smoothing_window < 1 or smoothing_window % 2 == 0:
        raise ValueError(f"smoothing_window must be an odd integer >= 1, got {smoothing_window}")
    min_rise = EPOCHWISE_MIN_RISE if min_rise is None else float(min_rise)
    raw_mean, _ = seed_mean_and_error(test)
    mean = running_median(raw_mean, smoothing_window)
    train_mean, _ = seed_mean_and_error(train)
    notes = []
    reached = np.flatnonzero(train_mean <= train_tolerance)
    interpolation_step = float(steps[reached[0]]) if reached.size else None
    peak = _peak(mean, min_rise)
    first = later = None
    double_descent, p_value, evidence = False, None, "no peak"
    if peak is not None:
        first = _argmin(mean, steps < steps[peak])
        later = _argmin(mean, steps > steps[peak])
        rises = [mean[peak] - mean[first], mean[peak] - mean[later]]
        result = peak_test(test, after_initial_descent(mean, min_rise), min_rise=min_rise, alpha=alpha,
                           noise_floor=binomial_noise(raw_mean, n_test),
                           smooth=lambda m: running_median(m, smoothing_window))
        double_descent, p_value, evidence = result.significant, result.p_value, result.evidence
        tested = "" if p_value is None else f", p = {p_value:.3g}"
        notes.append(f"{'epoch-wise double descent' if double_descent else 'no epoch-wise double descent'}: "
                     f"test error falls to {mean[first]:.4g} at step {steps[first]:g}, rises {rises[0]:.4g} to "
                     f"{mean[peak]:.4g} at step {steps[peak]:g}, then falls {rises[1]:.4g} to {mean[later]:.4g} at "
                     f"step {steps[later]:g} (min_rise {min_rise:g}{tested}; {evidence})")
    rise = peak_test(test, after_initial_descent(mean, min_rise), min_rise=min_rise, alpha=alpha,
                     noise_floor=binomial_noise(raw_mean, n_test),
                     smooth=lambda m: running_median(m, smoothing_window), sides="left")
    shape, description, final_rise = curve_shape(steps, mean, min_rise=min_rise, double_descent=double_descent,
                                                 peak=peak, p_value=p_value, rise_p_value=rise.p_value)
    notes.insert(0, description)
    member_peaks = []
    for row in test:
        row = running_median(row, smoothing_window)
        i = _peak(row, min_rise)
        member_peaks.append(None if i is None else {"step": float(steps[i]), "prominence": float(prominence(row)[i])})
    finite = np.flatnonzero(np.isfinite(raw_mean))
    return EpochwiseReport(
        peak=_point(steps, mean, peak), first_min=_point(steps, mean, first), later_min=_point(steps, mean, later),
        epochwise_double_descent=double_descent, interpolation_step=interpolation_step,
        member_peaks=tuple(member_peaks), final_error=float(raw_mean[finite[-1]]) if finite.size else None,
        min_rise=min_rise, smoothing_window=smoothing_window, notes=tuple(notes), p_value=p_value,
        evidence=evidence, shape=shape, description=description, final_rise=final_rise,
        rise_p_value=rise.p_value if rise.rises is not None and rise.rises[0] > 0 else None)


def curve_shape(steps: np.ndarray, curve: np.ndarray, *, min_rise: float, double_descent: bool,
                peak: int | None = None, p_value: float | None = None,
                rise_p_value: float | None = None) -> tuple[str, str, dict[str, float] | None]:
    """Names what an (already smoothed) error curve over eval steps does: (shape, description, final_rise).

    `peak` is the index of the tested peak (default: the point of largest descent); `p_value` and `rise_p_value`
    (the double-descent and the one-sided rise tests) are quoted where they apply. The shapes (SHAPES), in the
    order they are tried:
      * double_descent: `double_descent` is true (the calibrated test's verdict): the description gives the
        first minimum, the rise to the peak and the second fall (and a last rise to the end, if any);
      * u_shaped: the curve ends at least min_rise above its lowest point: falls to a minimum, then rises to
        the end, by how much and from which step (overfitting, e.g. to noisy labels);
      * bump_within_noise: it rises by at least min_rise somewhere and falls back (not double descent by the test);
      * monotone_descent: it falls by at least min_rise and never rises by min_rise (its largest rise is given);
      * no_descent: it never falls by min_rise below its first value (tried before the U: a curve that only
        rises is no U), its largest rise named.
    Rises are of the curve above its lowest earlier point, so a description never hides a rise of min_rise.
    """
    steps, y = np.asarray(steps, float), np.asarray(curve, float)
    finite = np.flatnonzero(np.isfinite(y))
    if finite.size == 0:
        return "no_descent", "no finite test error", None
    steps, y = steps[finite], y[finite]
    low, last = int(np.argmin(y)), y.size - 1
    rise_by = descents(y, "left")
    biggest = int(np.argmax(rise_by)) if y.size > 1 else 0
    largest_rise = max(float(rise_by[biggest]), 0.0)
    final_rise = None
    if y[last] - y[low] > 0:
        final_rise = {"step": float(steps[low]), "error": float(y[low]), "rise": float(y[last] - y[low]),
                      "final_error": float(y[last])}
    tested = "" if p_value is None else f", p = {p_value:.3g}"
    if double_descent:
        peak = int(np.searchsorted(finite, peak)) if peak is not None else int(np.argmax(descents(y)))
        first = int(np.argmin(y[:peak]))
        second = peak + 1 + int(np.argmin(y[peak + 1:]))
        text = (f"epoch-wise double descent: falls to {y[first]:.4g} at step {steps[first]:g}, rises "
                f"{y[peak] - y[first]:.4g} to {y[peak]:.4g} at step {steps[peak]:g}, then falls "
                f"{y[peak] - y[second]:.4g} to {y[second]:.4g} at step {steps[second]:g}{tested}")
        if y[last] - y[second] >= min_rise:
            text += f", then rises {y[last] - y[second]:.4g} to {y[last]:.4g} at the last step {steps[last]:g}"
        return "double_descent", text, final_rise
    if y[0] - y[low] < min_rise and largest_rise >= min_rise:
        return "no_descent", (f"no descent: never falls {min_rise:g} below its first value {y[0]:.4g}; rises "
                              f"{largest_rise:.4g} to {y[biggest]:.4g} at step {steps[biggest]:g}, ending at "
                              f"{y[last]:.4g}"), final_rise
    if y[last] - y[low] >= min_rise:
        earlier, top = "", int(np.argmax(rise_by[:low])) if low > 0 else 0
        if low > 0 and rise_by[top] >= min_rise:  # A rise on the way down is named too.
            earlier = f"; on the way down it rose {rise_by[top]:.4g} to {y[top]:.4g} at step {steps[top]:g}"
        return "u_shaped", (f"U-shaped: falls to {y[low]:.4g} at step {steps[low]:g}, then rises "
                            f"{y[last] - y[low]:.4g} to {y[last]:.4g} at the last step {steps[last]:g}"
                            f"{'' if rise_p_value is None else f' (rise test p = {rise_p_value:.3g})'}{earlier}"), \
            final_rise
    if largest_rise >= min_rise:
        top = biggest
        before = int(np.argmin(y[:top]))
        return "bump_within_noise", (
            f"a rise within noise: falls to {y[before]:.4g} at step {steps[before]:g}, rises {largest_rise:.4g} to "
            f"{y[top]:.4g} at step {steps[top]:g}, ends at {y[last]:.4g} at step {steps[last]:g} (not epoch-wise "
            f"double descent by the calibrated test{tested})"), final_rise
    if y[0] - y[low] >= min_rise:
        return "monotone_descent", (f"monotone descent: falls from {y[0]:.4g} to {y[low]:.4g} at step "
                                    f"{steps[low]:g}; its largest rise is {largest_rise:.4g} (below min_rise "
                                    f"{min_rise:g}), ending at {y[last]:.4g}"), final_rise
    return "no_descent", (f"no descent: never falls {min_rise:g} below its first value {y[0]:.4g} (lowest "
                          f"{y[low]:.4g} at step {steps[low]:g}; largest rise {largest_rise:.4g})"), final_rise


def running_median(y: np.ndarray, window: int) -> np.ndarray:
    """Median of each point and its (window - 1) / 2 neighbours on each side, over the finite ones, along the
    last axis; the ends are kept (a shorter symmetric window there would be the point itself), and so are
    non-finite points."""
    y = np.asarray(y, dtype=float)
    half = window // 2
    if half == 0 or y.shape[-1] < window:
        return y.copy()
    around = np.lib.stride_tricks.sliding_window_view(y, window, axis=-1)  # [..., T - 2 half, window]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # All-NaN windows: their centre is NaN and kept.
        medians = np.nanmedian(around, axis=-1)
    out = y.copy()
    inner = out[..., half:y.shape[-1] - half]
    out[..., half:y.shape[-1] - half] = np.where(np.isfinite(inner), medians, inner)
    return out


def after_initial_descent(y: np.ndarray, min_rise: float) -> np.ndarray:
    """The steps after the initial descent (after y first falls min_rise below its first value): wobbles before
    it are no peak."""
    fallen = np.flatnonzero(y <= y[0] - min_rise) if np.isfinite(y[0]) else np.flatnonzero(np.isfinite(y))
    return np.arange(y.size) > (fallen[0] if fallen.size else y.size)


def _peak(y: np.ndarray, min_rise: float) -> int | None:
    descent = np.where(after_initial_descent(y, min_rise), prominence(y), -np.inf)
    return int(np.argmax(descent)) if descent.max() > 0 else None


def _argmin(y: np.ndarray, mask: np.ndarray) -> int:
    candidates = np.flatnonzero(mask & np.isfinite(y))
    return int(candidates[np.argmin(y[candidates])])  # Non-empty: the peak has a lower point on each side.


def _point(steps: np.ndarray, y: np.ndarray, i: int | None) -> StepPoint | None:
    return None if i is None else {"step": float(steps[i]), "error": float(y[i])}
