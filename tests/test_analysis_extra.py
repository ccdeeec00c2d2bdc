"""The analysis additions on synthetic curves with known answers: bootstrap over seeds, sample-wise orientation,
effective model complexity and epoch-wise double descent."""

import json

import numpy as np
import pytest

from ddjax.analysis.epochwise import epochwise_analysis
from ddjax.analysis.modelwise import analyze, bootstrap_seeds, effective_model_complexity
from ddjax.analysis.sweep_report import more_data_hurts

X = 2.0 ** np.arange(10)  # 1 .. 512
TRAIN = np.array([0.6, 0.5, 0.4, 0.3, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0])  # Threshold at x=32.
TEST = np.array([0.7, 0.6, 0.5, 0.45, 0.5, 0.6, 0.45, 0.35, 0.3, 0.28])  # Peak 0.6 at x=32.
MONOTONE = np.linspace(0.7, 0.3, X.size)


def test_identical_seeds_give_point_intervals_and_certain_double_descent():
    report = analyze(X, np.stack([TRAIN] * 4), np.stack([TEST] * 4), n_bootstrap=200)
    b = report.bootstrap
    assert b["interpolation_threshold"] == {"low": 32.0, "high": 32.0, "fraction_defined": 1.0}
    assert b["peak_x"]["low"] == b["peak_x"]["high"] == 32.0
    assert b["peak_error"]["low"] == pytest.approx(0.6) and b["peak_error"]["high"] == pytest.approx(0.6)
    assert b["rise_under"]["low"] == pytest.approx(0.15) and b["rise_over"]["low"] == pytest.approx(0.32)
    assert b["p_double_descent"] == 1.0 and report.double_descent
    json.dumps(report.to_dict())


def test_bootstrap_describes_but_does_not_decide():
    # Two seeds with a bump and two without: a resample of 4 rows holds k ~ Binomial(4, 1/2) bumped rows, and
    # its mean rises above both minima by more than min_rise = 0.08 only for k >= 3 (rises 0.09 and 0.15;
    # 0.03 for k = 2): probability 5/16. The verdict is the calibrated test's, with or without resamples.
    train = np.stack([TRAIN] * 4)
    test = np.stack([TEST, TEST, MONOTONE, MONOTONE])
    report = analyze(X, train, test, n_bootstrap=2000, min_rise=0.08)
    assert report.bootstrap["p_double_descent"] == pytest.approx(5 / 16, abs=0.03)
    assert "double_descent" not in report.bootstrap
    assert not report.double_descent
    for min_rise in (0.0, 0.08):
        with_resamples = analyze(X, train, test, n_bootstrap=300, min_rise=min_rise)
        without = analyze(X, train, test, min_rise=min_rise)
        assert (with_resamples.double_descent, with_resamples.p_value) == (without.double_descent, without.p_value)


def test_peak_location_interval_spans_the_seeds_peaks():
    shifted = np.array([0.7, 0.6, 0.5, 0.45, 0.6, 0.5, 0.45, 0.35, 0.3, 0.28])  # Its peak is at x=16.
    b = bootstrap_seeds(X, np.stack([TRAIN] * 3), np.stack([TEST, TEST, shifted]), n_resamples=500)
    assert b["peak_x"]["low"] == 16 and b["peak_x"]["high"] == 32
    assert b == bootstrap_seeds(X, np.stack([TRAIN] * 3), np.stack([TEST, TEST, shifted]), n_resamples=500)


def test_threshold_interval_counts_resamples_that_never_interpolate():
    never = TRAIN + 0.2
    b = bootstrap_seeds(X, np.stack([TRAIN, never]), np.stack([TEST, TEST]), n_resamples=1000)
    # The mean interpolates only when both rows are the interpolating seed (probability 1/4).
    assert b["interpolation_threshold"]["fraction_defined"] == pytest.approx(0.25, abs=0.05)


def test_one_seed_has_no_bootstrap():
    report = analyze(X, TRAIN, TEST, n_bootstrap=100)
    assert report.bootstrap is None and "no bootstrap: one seed" in report.notes
    assert report.double_descent == analyze(X, TRAIN, TEST).double_descent


N = np.array([25, 50, 100, 200, 400, 800, 1600], float)
N_TRAIN = np.array([0.0, 0.0, 0.0, 0.0, 0.05, 0.1, 0.12])  # Fits up to n=200.
N_TEST = np.array([0.5, 0.45, 0.5, 0.7, 0.55, 0.4, 0.3])  # More data hurts from n=50 to n=200.


def test_samplewise_orientation():
    report = analyze(N, N_TRAIN, N_TEST, samplewise=True)
    assert report.interpolation_threshold == 200 and report.test_error_peak["x"] == 200
    assert report.over_min == {"x": 50.0, "error": 0.45} and report.under_min == {"x": 1600.0, "error": 0.3}
    assert report.overparameterized_regime == {"start": 25.0, "end": 100.0}
    assert report.double_descent
    hurts = more_data_hurts(report)
    assert (hurts["from"], hurts["to"], hurts["significant"]) == (50, 200, True)
    assert hurts["rise"] == pytest.approx(0.25)
    # Read model-wise, the same curves put the threshold at the smallest n and miss the peak's meaning.
    assert analyze(N, N_TRAIN, N_TEST).interpolation_threshold == 25


@pytest.mark.parametrize("train, expected", [
    (N_TRAIN, (200.0, False)),
    (np.zeros(7), (1600.0, True)),  # Interpolates every n tried: EMC is at least the largest.
    (np.full(7, 0.2), (None, False)),
    (np.array([0.0, 0.02, 0.0, 0.05, 0.0, 0.3, 0.3]), (400.0, False)),  # The largest n that reaches it.
])
def test_effective_model_complexity(train, expected):
    emc = effective_model_complexity(N, np.stack([train, train]), tolerance=0.01)
    assert (emc["emc"], emc["censored"]) == expected


STEPS = np.array([0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000], float)
# Falls to 0.5 by step 30, rises to 0.6 around steps 1000-3000 (0.62 at one step), falls to 0.45.
EPOCH_TEST = np.array([0.9, 0.85, 0.7, 0.6, 0.5, 0.5, 0.58, 0.62, 0.6, 0.5, 0.46, 0.45])
EPOCH_TRAIN = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0])


def test_epochwise_double_descent_found():
    report = epochwise_analysis(STEPS, EPOCH_TRAIN, EPOCH_TEST)
    # On the 3-step running median the single 0.62 becomes 0.6, the level of its neighbours.
    assert report.peak == {"step": 1000.0, "error": 0.6}
    assert report.first_min == {"step": 30.0, "error": 0.5}
    assert report.later_min == {"step": 100000.0, "error": 0.45}
    assert report.epochwise_double_descent and report.interpolation_step == 1000 and report.final_error == 0.45
    assert report.member_peaks[0]["step"] == 1000 and report.member_peaks[0]["prominence"] == pytest.approx(0.1)
    json.dumps(report.to_dict())


def test_a_single_evaluation_spike_is_not_a_peak():
    spike = np.array([0.9, 0.85, 0.7, 0.6, 0.55, 0.5, 0.62, 0.48, 0.46, 0.45, 0.44, 0.43])
    assert epochwise_analysis(STEPS, EPOCH_TRAIN, spike).peak is None
    unsmoothed = epochwise_analysis(STEPS, EPOCH_TRAIN, spike, smoothing_window=1)
    assert unsmoothed.peak == {"step": 300.0, "error": 0.62} and unsmoothed.epochwise_double_descent


@pytest.mark.parametrize("test, peak_step", [
    (np.linspace(0.9, 0.4, STEPS.size), None),  # Only falls.
    (np.array([0.9, 0.9, 0.93, 0.93, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.44, 0.43]), None),  # Wobbles before falling.
    (np.array([0.9, 0.85, 0.7, 0.6, 0.5, 0.55, 0.6, 0.65, 0.7, 0.72, 0.73, 0.74]), None),  # Overfits for good.
    (np.array([0.9, 0.85, 0.7, 0.6, 0.5, 0.5, 0.51, 0.512, 0.505, 0.49, 0.48, 0.47]), 300.0),  # Below min_rise.
])
def test_no_epochwise_double_descent(test, peak_step):
    report = epochwise_analysis(STEPS, EPOCH_TRAIN, test)
    assert not report.epochwise_double_descent
    assert (report.peak or {}).get("step") == peak_step


def test_epochwise_per_member_peaks_and_bad_input():
    late = np.array([0.9, 0.85, 0.7, 0.6, 0.55, 0.5, 0.48, 0.5, 0.56, 0.56, 0.5, 0.45])  # Peaks at step 3000.
    report = epochwise_analysis(STEPS, np.stack([EPOCH_TRAIN] * 3),
                                np.stack([EPOCH_TEST, late, np.full(STEPS.size, 0.5)]))
    assert [(p or {}).get("step") for p in report.member_peaks] == [1000, 3000, None]
    with pytest.raises(ValueError, match="ascending steps"):
        epochwise_analysis(STEPS[::-1], EPOCH_TRAIN, EPOCH_TEST)
    with pytest.raises(ValueError, match="odd integer"):
        epochwise_analysis(STEPS, EPOCH_TRAIN, EPOCH_TEST, smoothing_window=2)
