"""The calibrated double-descent test (ddjax.analysis.verdict): its false-positive rate on simulated peak-free curves,
its power on curves with a real peak, and the verdicts built on it (model-, sample- and epoch-wise, one seed,
the loss-based threshold). The full study is benchmarks/verdict_calibration.py; these are seeded, smaller
versions of it that run in seconds."""

import itertools

import numpy as np
import pytest
from scipy import stats

from ddjax.analysis import analyze
from ddjax.analysis.epochwise import epochwise_analysis, running_median
from ddjax.experiment import summary
from ddjax.analysis.verdict import (combined_p_value, descents, falling_fit, largest_descents, peak_test,
                                   running_mean, valley_fit)


def grid(k):
    x = np.geomspace(1, 1000, k)
    return x, x[k // 2]


def null_curve(shape, x, threshold):
    t = np.log(x) / np.log(x[-1])
    if shape == "flat":
        return np.full(x.shape, 0.4)
    if shape == "falling":
        return 0.5 - 0.2 * t
    return 0.5 - 0.2 * np.minimum(t / (np.log(threshold) / np.log(x[-1])), 1.0)  # kink at the threshold


def train_curve(x, threshold, n_seeds):
    """Train error falling to 0 at the threshold, the same for every seed."""
    return np.tile(np.where(x >= threshold, 0.0, 0.5 * (1 - x / threshold)), (n_seeds, 1))


def test_false_positive_rate_on_peak_free_curves():
    # 3 shapes x 4 seed counts x 3 grid sizes x 4 noise levels x 2 draws = 288 peak-free data sets, min_rise 0 so
    # that the test alone decides.
    rng = np.random.default_rng(12)
    calls = []
    for shape, n_seeds, k, sd in itertools.product(("flat", "falling", "kink"), (2, 3, 5, 10), (10, 20, 40),
                                                   (0.002, 0.01, 0.04, 0.2)):
        x, threshold = grid(k)
        curve = null_curve(shape, x, threshold)
        for _ in range(2):
            test = curve + sd * rng.standard_normal((n_seeds, k))
            calls.append(analyze(x, train_curve(x, threshold, n_seeds), test, min_rise=0.0).double_descent)
    n = len(calls)
    allowed = stats.binom.ppf(0.999, n, 0.05)  # 5%, with the slack of one chance in a thousand
    assert sum(calls) <= allowed, f"{sum(calls)} of {n} peak-free curves called double descent"


def test_power_at_eight_standard_errors_with_five_seeds():
    rng = np.random.default_rng(8)
    x, threshold = grid(30)
    n_seeds, sd = 5, 0.01
    step = np.log(x[1] / x[0])
    height = 8 * sd / np.sqrt(n_seeds)
    curve = null_curve("kink", x, threshold / 4) + height * np.exp(-0.5 * (np.log(x / threshold) / step) ** 2)
    found = [analyze(x, train_curve(x, threshold, n_seeds), curve + sd * rng.standard_normal((n_seeds, 30)),
                     min_rise=0.0).double_descent for _ in range(60)]
    assert np.mean(found) >= 0.85  # measured 100% in the study; 0.85 leaves binomial slack below 0.9


def narrow_bump_on_a_falling_baseline(x, threshold, height, stderr):
    """A bump a third of a decade wide at half height, at the threshold of a baseline falling 3 stderrs a decade."""
    decades = np.log10(x / threshold)
    return 0.4 - 3 * stderr * decades + height * np.exp(-0.5 * (decades / (1 / 3 / 2.3548)) ** 2)


def test_power_on_a_narrow_bump_on_a_falling_baseline():
    rng = np.random.default_rng(9)
    x, threshold = grid(25)
    candidates = (x >= threshold / 4) & (x <= threshold * 4)
    n_seeds, sd = 5, 0.01
    stderr = sd / np.sqrt(n_seeds)
    found = {}
    for height in (6, 8):
        curve = narrow_bump_on_a_falling_baseline(x, threshold, height * stderr, stderr)
        draws = [curve + sd * rng.standard_normal((n_seeds, 25)) for _ in range(60)]
        found[height] = [[peak_test(e, candidates, min_rise=0.0, **options).significant for e in draws]
                         for options in ({}, {"widths": (1,)})]
    assert np.mean(found[8][0]) >= 0.9  # the study: ~100%
    # At 6 stderrs the study measures ~95% against ~85% for the mean's largest descent alone.
    assert np.mean(found[6][0]) >= 0.85 and sum(found[6][0]) > sum(found[6][1])


def test_false_positives_on_a_falling_peak_free_curve():
    # The curve of the power test without its bump, for the double-descent test and the rise test alike.
    rng = np.random.default_rng(10)
    x, threshold = grid(25)
    candidates = (x >= threshold / 4) & (x <= threshold * 4)
    curve = narrow_bump_on_a_falling_baseline(x, threshold, 0.0, 0.01 / np.sqrt(3))
    for sides in ("both", "left"):
        calls = [peak_test(curve + 0.01 * rng.standard_normal((3, 25)), candidates, min_rise=0.0,
                           sides=sides).significant for _ in range(100)]
        assert sum(calls) <= stats.binom.ppf(0.999, 100, 0.05), (sides, sum(calls))


def test_a_one_point_spike_on_a_coarse_grid_is_still_found():
    # The mean's own descent keeps a spike that the 3-point running mean spreads over its neighbours.
    rng = np.random.default_rng(11)
    x, threshold = grid(10)
    candidates = (x >= threshold / 4) & (x <= threshold * 4)
    curve = np.where(x == threshold, 0.4 + 6 * 0.01 / np.sqrt(5), 0.4)
    draws = [curve + 0.01 * rng.standard_normal((5, 10)) for _ in range(40)]
    found, smoothed_only = ([peak_test(e, candidates, min_rise=0.0, **options).significant for e in draws]
                            for options in ({}, {"widths": (3,)}))
    assert np.mean(found) >= 0.9 and sum(found) > sum(smoothed_only)


def test_running_mean_matches_a_plain_loop():
    rng = np.random.default_rng(6)
    y = rng.random((3, 9))
    y[rng.random(y.shape) < 0.2] = np.nan
    for width in (1, 3, 5):
        half = width // 2
        for row, smoothed in zip(y, running_mean(y, width)):
            expected = np.array([np.nanmean(row[max(i - half, 0):i + half + 1]) if np.isfinite(row[i]) else np.nan
                                 for i in range(row.size)])
            np.testing.assert_allclose(smoothed, expected)
    valley = np.array([0.5, 0.45, 0.3, 0.3, 0.32, 0.6, 0.61])
    assert np.all(largest_descents(valley, np.ones(7, bool), (1, 3, 5)) <= 1e-12)  # still peak-free


def test_combined_p_value_is_uniform_under_the_null():
    # Data and simulated statistics drawn alike (two correlated widths): p <= alpha in about alpha of the cases.
    rng = np.random.default_rng(7)
    rejected = []
    for _ in range(400):
        z = rng.standard_normal((201, 2))
        z[:, 1] = 0.7 * z[:, 0] + np.sqrt(1 - 0.7 ** 2) * z[:, 1]
        rejected.append(combined_p_value(z[0], z[1:])[0] <= 0.05)
    assert abs(np.mean(rejected) - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / 400)
    one = rng.standard_normal((101, 1))
    assert combined_p_value(one[0], one[1:])[0] == (1 + np.sum(one[1:, 0] >= one[0, 0])) / 101
    with pytest.raises(ValueError, match="widths"):
        peak_test(np.zeros((2, 5)), np.ones(5, bool), min_rise=0.0, widths=(2,))


def test_the_old_rule_was_fooled_where_the_new_one_is_not():
    # A flat curve on 30 points with 3 seeds: the highest of 30 noisy points, tested as if chosen in advance.
    rng = np.random.default_rng(3)
    x, threshold = grid(30)
    old = new = 0
    for _ in range(40):
        test = 0.4 + 0.03 * rng.standard_normal((3, 30))
        mean, se = test.mean(0), test.std(0, ddof=1) / np.sqrt(3)
        d = np.where((x >= threshold / 4) & (x <= threshold * 4), descents(mean), -np.inf)
        peak = int(np.argmax(d))
        left, right = int(np.argmin(mean[:peak])), peak + 1 + int(np.argmin(mean[peak + 1:]))
        old += all(mean[peak] - mean[i] > max(0.005, 2 * np.hypot(se[peak], se[i])) for i in (left, right))
        new += analyze(x, train_curve(x, threshold, 3), test).double_descent
    assert old >= 6 and new <= 4  # the old rule's rate is ~30% here (the study), the new one's <= 5%


def test_verdict_is_reproducible_and_clear_peaks_are_found():
    x, threshold = grid(20)
    rng = np.random.default_rng(0)
    curve = null_curve("kink", x, threshold / 4) + 0.1 * np.exp(-0.5 * np.log(x / threshold) ** 2)
    test = curve + 0.01 * rng.standard_normal((3, 20))
    first, second = (analyze(x, train_curve(x, threshold, 3), test) for _ in range(2))
    assert first.double_descent and first.p_value == second.p_value <= 0.05
    assert "3 seeds" in first.evidence


def test_valley_fit_is_peak_free_and_keeps_valleys():
    rng = np.random.default_rng(1)
    for _ in range(20):
        y, w = rng.random(15), rng.random(15) + 0.1
        fit = valley_fit(y, w)
        assert np.all(descents(fit) <= 1e-12)  # no point rises above a lower one on each side
        falling = falling_fit(y, w)
        assert np.all(np.diff(falling) <= 1e-12)
        # Weighted least squares: no peak-free candidate tried here fits better.
        assert np.sum(w * (y - fit) ** 2) <= np.sum(w * (y - falling) ** 2) + 1e-12
    valley = np.array([0.5, 0.4, 0.3, 0.3, 0.35, 0.6])
    np.testing.assert_allclose(valley_fit(valley, np.ones(6)), valley)


def test_one_seed_is_not_tested_against_seed_noise():
    x, threshold = grid(12)
    train = train_curve(x, threshold, 1)[0]
    test = null_curve("kink", x, threshold / 4) + 0.05 * np.exp(-0.5 * np.log(x / threshold) ** 2)
    plain = analyze(x, train, test)
    floored = analyze(x, train, test, n_test=10000)
    assert plain.double_descent and plain.p_value is None
    assert plain.evidence.startswith("one seed: not tested against seed noise") and "min_rise" in plain.evidence
    assert floored.p_value is not None and "binomial" in floored.evidence
    # The bump rises 0.027 above the under-parameterized min: the binomial floor of 100 test examples (stderr
    # ~0.05 a point) swallows it; that of 10000 (~0.005) does not.
    assert floored.double_descent and not analyze(x, train, test, n_test=100).double_descent
    report = {**floored.to_dict(), "x_axis": "width", "wall_seconds": 1.0,
              "timing": {"compile_seconds": 0.0, "run_seconds": 0.0}}
    assert "one seed: not tested against seed noise" in summary(report)
    with pytest.raises(ValueError, match="n_test"):
        analyze(x, train, test, n_test=0)


def test_loss_threshold_is_where_the_loss_reaches_zero():
    x = np.array([100, 200, 300, 400, 500, 800, 1600], float)
    train_error = np.array([0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0])  # classification error 0 from 300
    train_loss = np.array([0.4, 0.2, 0.05, 1e-15, 1e-20, 1e-22, 1e-22])  # the fit interpolates from 400
    test = np.array([0.6, 0.65, 0.8, 0.9, 0.8, 0.7, 0.6])
    report = analyze(x, train_error, test, train_loss=train_loss)
    assert (report.interpolation_threshold, report.error_threshold, report.loss_threshold) == (400, 300, 400)
    assert report.threshold_basis == "train_loss" and report.overparameterized_regime["start"] == 500
    assert any("loss-based threshold (400)" in note for note in report.notes)
    by_error = analyze(x, train_error, test)
    assert (by_error.interpolation_threshold, by_error.threshold_basis, by_error.loss_threshold) == (300, "train_error",
                                                                                                      None)


def test_samplewise_rise_uses_the_calibrated_test():
    n = np.geomspace(100, 4000, 12)
    train = np.tile(np.where(n <= 800, 0.0, 0.2), (4, 1))
    rng = np.random.default_rng(5)
    bump = 0.08 * np.exp(-0.5 * np.log(n / 800) ** 2 / 0.1)
    clear = 0.6 - 0.1 * np.log(n / 100) / np.log(40) + bump + 0.005 * rng.standard_normal((4, 12))
    noisy = 0.6 - 0.1 * np.log(n / 100) / np.log(40) + 0.05 * rng.standard_normal((4, 12))
    found = analyze(n, train, clear, samplewise=True).rise_test
    assert found["significant"] and found["p_value"] <= 0.05
    assert analyze(n, train, noisy, samplewise=True).rise_test["p_value"] > 0.05
    assert analyze(n, train, clear).rise_test is None  # model-wise reports carry no rise test


def test_epochwise_uses_the_calibrated_test():
    steps = np.geomspace(1, 1e5, 25)
    base = 0.9 - 0.4 * np.minimum(np.log(steps) / np.log(100), 1.0)  # falls to 0.5 by step 100, then flat
    peak = 0.08 * np.exp(-0.5 * (np.log(steps / 3000) / 0.8) ** 2)
    train = np.tile(np.linspace(0.9, 0.0, 25), (4, 1))
    rng = np.random.default_rng(2)
    real = epochwise_analysis(steps, train, base + peak + 0.01 * rng.standard_normal((4, 25)))
    assert real.epochwise_double_descent and real.p_value <= 0.05
    within_noise = epochwise_analysis(steps, train, base + 0.3 * peak + 0.05 * rng.standard_normal((4, 25)))
    assert not within_noise.epochwise_double_descent and "4 seeds" in within_noise.evidence


def test_running_median_matches_a_plain_loop():
    rng = np.random.default_rng(4)
    for window in (1, 3, 5):
        y = rng.random((3, 11))
        y[rng.random(y.shape) < 0.2] = np.nan
        half = window // 2
        for row, smoothed in zip(y, running_median(y, window)):
            expected = row.copy()
            for i in range(half, row.size - half):
                around = row[i - half:i + half + 1]
                if np.isfinite(row[i]):
                    expected[i] = np.median(around[np.isfinite(around)])
            np.testing.assert_array_equal(smoothed, expected)


def test_peak_test_checks_sides():
    with pytest.raises(ValueError, match="sides"):
        peak_test(np.zeros((2, 5)), np.ones(5, bool), min_rise=0.0, sides="right")
