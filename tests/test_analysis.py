"""Tests for ddjax.analysis.modelwise: known synthetic curves, then properties that must hold for any curves."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ddjax.analysis.modelwise import analyze, seed_mean_and_error

X = 2.0 ** np.arange(10)  # 1 .. 512
# Train error reaches 0 at x=32; test error falls, rises to a peak at x=32, then falls lower than before.
TRAIN = np.array([0.6, 0.5, 0.4, 0.3, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0])
TEST = np.array([0.7, 0.6, 0.5, 0.45, 0.5, 0.6, 0.45, 0.35, 0.3, 0.28])


def locations(report):
    """The x-locations a report names, which must not depend on seed order or a constant shift."""
    point_x = lambda p: None if p is None else p["x"]
    return (report.interpolation_threshold, point_x(report.test_error_peak), point_x(report.under_min),
            point_x(report.over_min), report.overparameterized_regime)


def test_known_double_descent():
    report = analyze(X, TRAIN, TEST)
    assert report.threshold_reached and report.interpolation_threshold == 32
    assert report.test_error_peak == {"x": 32.0, "error": 0.6}
    assert report.under_min == {"x": 8.0, "error": 0.45}
    assert report.over_min == {"x": 512.0, "error": 0.28}
    assert report.overparameterized_regime == {"start": 64.0, "end": 512.0}
    assert report.double_descent
    assert (report.n_seeds, report.n_excluded) == (1, 0)
    json.dumps(report.to_dict())  # plain types only


def test_peak_beats_higher_underparameterized_edge():
    # x=8 is higher than the peak but lies on the descent from the left: the peak is the bump at 32.
    test = np.array([0.9, 0.85, 0.8, 0.7, 0.5, 0.6, 0.45, 0.35, 0.3, 0.28])
    report = analyze(X, TRAIN, test)
    assert report.test_error_peak["x"] == 32 and report.under_min["x"] == 16 and report.double_descent


def test_monotone_test_error_is_not_double_descent():
    report = analyze(X, TRAIN, np.linspace(0.7, 0.2, X.size))
    assert report.interpolation_threshold == 32
    assert not report.double_descent


def test_diverged_seed_is_excluded():
    clean = np.stack([TEST, TEST, TEST])
    diverged = clean.copy()
    diverged[1, 4] = np.nan
    train = np.stack([TRAIN] * 3)
    train_diverged = train.copy()
    train_diverged[1, 4] = np.inf
    report = analyze(X, train_diverged, diverged)
    expected = analyze(X, train, clean)
    assert report.n_excluded == 2 and report.n_seeds == 3
    assert locations(report) == locations(expected)
    assert report.double_descent == expected.double_descent
    assert any("excluded 2" in note for note in report.notes)


def test_all_nan_column_has_no_estimate():
    train, test = TRAIN.copy(), TEST.copy()
    train[5] = test[5] = np.nan  # the true peak and threshold diverged: neither may be invented there
    report = analyze(X, train, test)
    assert report.interpolation_threshold == 64
    assert report.test_error_peak["x"] != 32
    assert any("x=[32]" in note for note in report.notes)


def test_threshold_never_reached():
    report = analyze(X, TRAIN + 0.12, TEST)
    assert report.interpolation_threshold is None and not report.threshold_reached
    assert report.overparameterized_regime is None
    assert any("never reached 0.01" in note and "min 0.12 at x=32" in note for note in report.notes)


def test_bump_within_seed_noise_is_not_double_descent():
    # Seeds differ by +-0.05 around a curve with a 0.01 bump: the mean is exact, the noise is ~0.14.
    base = np.array([0.5, 0.45, 0.4, 0.35, 0.3, 0.31, 0.3, 0.29, 0.28, 0.27])
    spread = 0.05 * (-1.0) ** np.arange(X.size)
    noisy = analyze(X, np.stack([TRAIN, TRAIN]), np.stack([base + spread, base - spread]))
    quiet = analyze(X, np.stack([TRAIN, TRAIN]), np.stack([base, base]))
    assert noisy.test_error_peak["x"] == quiet.test_error_peak["x"] == 32
    assert quiet.double_descent and not noisy.double_descent


def test_min_rise_sets_the_single_seed_noise():
    assert analyze(X, TRAIN, TEST, min_rise=0.1).double_descent
    assert not analyze(X, TRAIN, TEST, min_rise=0.2).double_descent  # the under-side rise is 0.15


@pytest.mark.parametrize("x, match", [(X[::-1], "strictly ascending"), (X.reshape(2, 5), "1-D"),
                                      (X - 1, "positive"), (X[:-1], "shape")])
def test_invalid_x(x, match):
    with pytest.raises(ValueError, match=match):
        analyze(x, TRAIN, TEST)


def test_mismatched_shapes():
    with pytest.raises(ValueError, match="disagree"):
        analyze(X, np.stack([TRAIN, TRAIN]), TEST)


def test_degenerate_inputs():
    single = analyze([8], [[0.0], [0.0]], [[0.3], [0.4]])
    assert single.interpolation_threshold == 8 and single.test_error_peak["x"] == 8
    assert single.under_min is None and single.over_min is None and not single.double_descent
    empty = analyze(X, np.full((2, X.size), np.nan), np.full((2, X.size), np.nan))
    assert locations(empty) == (None,) * 5 and not empty.double_descent
    assert empty.n_excluded == 4 * X.size and "no data" in empty.notes[0]


def test_seed_mean_and_error():
    mean, stderr = seed_mean_and_error([[0.1, np.nan, np.nan], [0.3, 0.2, np.nan]])
    np.testing.assert_allclose(mean[:2], [0.2, 0.2])
    assert np.isnan(mean[2])
    np.testing.assert_allclose(stderr, [np.std([0.1, 0.3], ddof=1) / np.sqrt(2), 0.0, 0.0])


# Errors on a grid of 1/64 with 1, 2 or 4 seeds keep every sum and mean exact in floating point, so
# properties can demand exact equality instead of tolerating rounding that flips ties.
def curves(max_value=64, seeds=(1, 2, 4)):
    return st.tuples(st.sampled_from(seeds), st.integers(1, 10)).flatmap(lambda sk: st.tuples(
        hnp.arrays(np.int64, sk, elements=st.integers(0, max_value)).map(lambda a: a / 64),
        hnp.arrays(np.int64, sk, elements=st.integers(0, max_value)).map(lambda a: a / 64)))


@settings(max_examples=50, deadline=None)
@given(curves(), st.randoms(use_true_random=False), st.data())
def test_invariant_to_seed_order(train_test, rng, data):
    train, test = train_test
    mask = data.draw(hnp.arrays(bool, train.shape))
    train, test = np.where(mask, np.nan, train), np.where(mask[:, ::-1], np.nan, test)
    order = list(range(train.shape[0]))
    rng.shuffle(order)
    x = 2.0 ** np.arange(train.shape[1])
    assert analyze(x, train[order], test[order]).to_dict() == analyze(x, train, test).to_dict()


@settings(max_examples=50, deadline=None)
@given(curves(max_value=48), st.integers(-16, 16), st.data())
def test_constant_shift_of_test_error_moves_nothing(train_test, shift, data):
    train, test = train_test
    # Whole columns diverged (NaN at every seed) keep each column's seed count a power of two, so means stay exact.
    dead = data.draw(hnp.arrays(bool, train.shape[1]))
    train, test = np.where(dead, np.nan, train), np.where(dead[::-1], np.nan, test)
    x = 2.0 ** np.arange(train.shape[1])
    assert locations(analyze(x, train, test + shift / 64)) == locations(analyze(x, train, test))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(1, 10), st.data())
def test_random_nan_masks_never_crash(n_seeds, k, data):
    floats = st.floats(0, 1)
    bad = st.sampled_from([np.nan, np.inf, -np.inf])
    train = data.draw(hnp.arrays(float, (n_seeds, k), elements=floats))
    test = data.draw(hnp.arrays(float, (n_seeds, k), elements=floats))
    for errors in (train, test):
        mask = data.draw(hnp.arrays(bool, errors.shape))
        errors[mask] = data.draw(hnp.arrays(float, int(mask.sum()), elements=bad))
    x = np.sort(data.draw(hnp.arrays(float, k, elements=st.floats(0.5, 1e4), unique=True)))
    report = analyze(x, train, test)
    assert report.n_excluded == (~np.isfinite(train)).sum() + (~np.isfinite(test)).sum()
    assert isinstance(report.double_descent, bool)
    json.dumps(report.to_dict(), allow_nan=False)  # Nothing non-finite leaks into the report.
    regime = report.overparameterized_regime
    named = [*locations(report)[:4], *(() if regime is None else (regime["start"], regime["end"]))]
    assert all(value is None or value in x for value in named)
    if report.threshold_reached:
        assert np.isfinite(train[:, x == report.interpolation_threshold]).any()
    for point in (report.test_error_peak, report.under_min, report.over_min):
        assert point is None or np.isfinite(test[:, x == point["x"]]).any()


@settings(max_examples=50, deadline=None)
@given(curves(), st.sampled_from([0.0, 1 / 64, 0.1]), st.data())
def test_threshold_only_where_train_error_reaches_tolerance(train_test, tolerance, data):
    train, test = train_test
    train = np.where(data.draw(hnp.arrays(bool, train.shape)), np.nan, train)  # Diverged members.
    x = 2.0 ** np.arange(train.shape[1])
    report = analyze(x, train, test, train_tolerance=tolerance)
    finite = np.isfinite(train)
    count = finite.sum(axis=0)
    mean = np.where(count > 0, np.where(finite, train, 0).sum(axis=0) / np.maximum(count, 1), np.nan)
    reached = mean <= tolerance  # False where no seed has a finite train error.
    if report.threshold_reached:
        first = int(np.flatnonzero(x == report.interpolation_threshold)[0])
        assert reached[first] and not reached[:first].any()
    else:
        assert not reached.any() and report.interpolation_threshold is None
        assert report.overparameterized_regime is None
        assert any("never reached" in note or "unknown" in note for note in report.notes)
