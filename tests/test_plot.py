"""Tests for ddjax.runs.figures: every kind of curve the analysis accepts becomes a PNG file."""

import numpy as np
import pytest

from ddjax.analysis.modelwise import analyze
from ddjax.runs.figures import plot_curves

X = 2.0 ** np.arange(8)
TRAIN = np.array([0.6, 0.4, 0.2, 0.05, 0.0, 0.0, 0.0, 0.0])
TEST = np.array([0.6, 0.5, 0.45, 0.55, 0.4, 0.35, 0.3, 0.3])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def seeds(curve, n_seeds=3):
    offsets = np.linspace(-0.02, 0.02, n_seeds)[:, None]
    return np.clip(curve + offsets, 0, 1)


def assert_png(path):
    assert path.exists() and path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("with_report", [False, True])
def test_writes_png(tmp_path, with_report):
    train, test = seeds(TRAIN), seeds(TEST)
    report = analyze(X, train, test) if with_report else None
    path = tmp_path / "figures" / "curves.png"  # the missing folder is created
    plot_curves(path, X, train, test, report, x_label="width", title=None)
    assert_png(path)


def test_nans_and_diverged_columns(tmp_path):
    train, test = seeds(TRAIN), seeds(TEST)
    train[1, 2] = test[1, 2] = np.nan
    train[:, 5] = test[:, 5] = np.nan  # a column with no finite seed at all
    path = tmp_path / "nan.png"
    plot_curves(str(path), X, train, test, analyze(X, train, test), x_label="n_features", title="nan")
    assert_png(path)


@pytest.mark.parametrize("train, test", [(TRAIN, TEST), (TRAIN[None], TEST[None]),
                                         (np.full(8, np.nan), np.full(8, np.nan)), ([0.0], [0.3])])
def test_single_seed_and_degenerate_curves(tmp_path, train, test):
    x = X[:np.shape(train)[-1]]
    path = tmp_path / "one.png"
    plot_curves(path, x, train, test, analyze(x, train, test))
    assert_png(path)


def test_rejects_invalid_x(tmp_path):
    with pytest.raises(ValueError, match="strictly ascending"):
        plot_curves(tmp_path / "bad.png", X[::-1], TRAIN, TEST)


def test_bootstrap_emc_and_overlay_marks(tmp_path):
    train, test = seeds(TRAIN), seeds(TEST)
    path = tmp_path / "marks.png"
    plot_curves(path, X, train, test, analyze(X, train, test, n_bootstrap=20), emc=16.0,
                overlay=(X, TEST + 0.1, "theory"), log_y=True)
    assert_png(path)


def test_epochwise_heatmap(tmp_path):
    from ddjax.runs.figures import plot_epochwise

    steps = np.array([0, 1, 10, 100, 1000])
    errors = np.random.default_rng(0).uniform(0.3, 0.9, (4, 5))
    errors[2, 3] = np.nan  # A diverged member leaves a hole.
    path = tmp_path / "epochwise.png"
    plot_epochwise(path, [8, 16, 32, 64], steps, errors, peak_steps=[None, 10.0, 100.0, None], title="t")
    assert_png(path)
    with pytest.raises(ValueError, match="shape"):
        plot_epochwise(path, [8, 16], steps, errors)


def test_marks_both_thresholds_when_they_differ(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), original(self, *a, **k)))
    loss = np.array([0.4, 0.2, 0.1, 0.05, 1e-16, 1e-20, 1e-20, 1e-20])  # reaches 0 at x=16, the error at x=8
    train = np.array([0.6, 0.4, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0])
    for train_loss, expected in ((loss, {"interpolation threshold (train loss 0) (16)", "train error 0 (8)"}),
                                 (None, {"interpolation threshold (8)"})):
        report = analyze(X, train, TEST, train_loss=train_loss)
        plot_curves(tmp_path / "both.png", X, train, TEST, report)
        labels = {t.get_text() for t in saved[-1].legends[0].get_texts()}  # The legend sits under the axes.
        assert {label for label in labels if "threshold" in label or "train error 0" in label} == expected
