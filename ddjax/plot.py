"""Figures of double-descent curves: seed means as lines, the spread over seeds as bands.

Figures are built as `matplotlib.figure.Figure` objects and saved directly, without pyplot, so plotting
touches no global state and needs no display.
"""
from __future__ import annotations

import os

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ddjax.analysis import DoubleDescentReport, check_curves, seed_mean_and_error


def plot_curves(path: str | os.PathLike, x: ArrayLike, train_error: ArrayLike, test_error: ArrayLike,
                report: DoubleDescentReport | None = None, *, x_label: str = "width",
                title: str | None = None) -> None:
    """Writes a PNG of train and test error against x on a log x-axis.

    Each curve is its seed mean (line with markers) and, with >= 2 seeds, a band from the lowest to the
    highest seed. A report adds a dashed line at the interpolation threshold, a star at the test-error peak
    and a light shading over the over-parameterized regime. Non-finite entries (diverged members) are left
    out of means and bands.

    Args:
      path: where to write the PNG; missing parent directories are created.
      x: shape (K,), positive and strictly ascending.
      train_error: shape (K,) or (S, K) over S seeds.
      test_error: same shape as train_error.
      report: the result of `analyze` on the same curves, or None for the curves alone.
      x_label: the x-axis label.
      title: the figure title; None means a summary of the report, if there is one.
    """
    x, train, test = check_curves(x, train_error, test_error)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    _plot_curve(ax, x, train, "train", "tab:blue")
    _plot_curve(ax, x, test, "test", "tab:orange")
    if report is not None:
        _mark_report(ax, report)
        if title is None:
            title = f"double descent: {'yes' if report.double_descent else 'no'} ({report.n_seeds} seeds)"
    ax.set_xscale("log")
    # Explicit limits keep the axis valid when a curve is all NaN or has a single point.
    ax.set_xlim(x[0] / 1.25, x[-1] * 1.25)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel("error")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, format="png")


def _plot_curve(ax: Axes, x: np.ndarray, errors: np.ndarray, name: str, color: str) -> None:
    mean, _ = seed_mean_and_error(errors)
    ax.plot(x, mean, marker="o", markersize=4, color=color, label=f"{name} (seed mean)")
    if errors.shape[0] < 2:
        return
    finite = np.isfinite(errors)
    # Masked, not NaN: fill_between splits the band at masked points but would put NaN vertices in its polygon.
    low = np.ma.masked_invalid(np.where(finite, errors, np.inf).min(axis=0))
    high = np.ma.masked_invalid(np.where(finite, errors, -np.inf).max(axis=0))
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0, label=f"{name} (seed range)")


def _mark_report(ax: Axes, report: DoubleDescentReport) -> None:
    regime = report.overparameterized_regime
    if regime is not None:
        ax.axvspan(regime["start"], regime["end"], color="tab:green", alpha=0.08, label="over-parameterized")
    if report.interpolation_threshold is not None:
        ax.axvline(report.interpolation_threshold, color="gray", linestyle="--", linewidth=1,
                   label=f"interpolation threshold ({report.interpolation_threshold:g})")
    peak = report.test_error_peak
    if peak is not None:
        ax.plot([peak["x"]], [peak["error"]], marker="*", markersize=14, color="tab:red", linestyle="none",
                label=f"test-error peak ({peak['x']:g})")
