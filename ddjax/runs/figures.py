"""Figures of double-descent curves: seed means as lines, the spread over seeds as bands.

Figures are built as `matplotlib.figure.Figure` objects and saved directly, without pyplot, so plotting
touches no global state and needs no display.
"""
from __future__ import annotations

import os
import textwrap

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from ddjax.analysis.modelwise import DoubleDescentReport, check_curves, seed_mean_and_error


def plot_curves(path: str | os.PathLike, x: ArrayLike, train_error: ArrayLike, test_error: ArrayLike,
                report: DoubleDescentReport | None = None, *, x_label: str = "width",
                title: str | None = None, emc: float | None = None,
                overlay: tuple[ArrayLike, ArrayLike, str] | None = None, log_y: bool = False,
                extra: list[tuple[ArrayLike, ArrayLike, str]] | None = None) -> None:
    """Writes a PNG of train and test error against x on a log x-axis.

    Each curve is its seed mean (line with markers) and, with >= 2 seeds, a band from the lowest to the
    highest seed. A report adds a dashed line at the interpolation threshold (a dotted one where the train error reaches
    zero when the threshold is the train loss's and the two differ), a star at the test-error peak
    and a light shading over the over-parameterized regime, and, if it has a bootstrap, error bars on the peak
    (location and height) and a gray band over the threshold's interval. Non-finite entries (diverged members)
    are left out of means and bands.

    Args:
      path: where to write the PNG; missing parent directories are created.
      x: shape (K,), positive and strictly ascending.
      train_error: shape (K,) or (S, K) over S seeds.
      test_error: same shape as train_error.
      report: the result of `analyze` on the same curves, or None for the curves alone.
      x_label: the x-axis label.
      title: the figure title; None means a summary of the report, if there is one.
      emc: draw a dotted line at this effective model complexity.
      overlay: (x, y, label) of a reference curve to draw over the errors, e.g. a closed-form risk.
      log_y: a log y-axis (for risks that span decades).
      extra: (x, seed-mean y, label) of more test curves to draw dashed, e.g. the test error at each member's
        early-stopping step.
    """
    x, train, test = check_curves(x, train_error, test_error)
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    ax = fig.add_subplot()
    _plot_curve(ax, x, train, "train", "tab:blue")
    _plot_curve(ax, x, test, "test", "tab:orange")
    if overlay is not None:
        ax.plot(*overlay[:2], color="black", linewidth=1.2, label=overlay[2])
    for (x_extra, y_extra, label), color in zip(extra or [], ("tab:red", "tab:gray", "tab:purple")):
        ax.plot(x_extra, y_extra, color=color, linestyle="--", marker="s", markersize=3, label=label)
    if emc is not None:
        ax.axvline(emc, color="tab:purple", linestyle=":", linewidth=1.5, label=f"EMC ({emc:g})")
    if report is not None:
        _mark_report(ax, report)
        if title is None:
            tested = "one seed, not tested against seed noise" if report.n_seeds == 1 else f"{report.n_seeds} seeds"
            p = "" if report.p_value is None or report.n_seeds == 1 else f", p = {report.p_value:.2g}"
            title = f"double descent: {'yes' if report.double_descent else 'no'} ({tested}{p})"
    ax.set_xscale("log")
    # Explicit limits keep the axis valid when a curve is all NaN or has a single point.
    ax.set_xlim(x[0] / 1.25, x[-1] * 1.25)
    if log_y:
        ax.set_yscale("log")
        positive = test[np.isfinite(test) & (test > 0)]
        if positive.size:
            ax.set_ylim(bottom=positive.min() / 3)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel("error")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(_fitted(title, fig), fontsize="medium")
    _legend_below(fig, ax)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, format="png")


def plot_regularization(path: str | os.PathLike, x: ArrayLike, strengths: ArrayLike, test_means: ArrayLike,
                        entry: dict, *, x_label: str = "width", title: str | None = None,
                        theory: list[tuple[ArrayLike, ArrayLike]] | None = None, log_y: bool = False) -> None:
    """Writes a PNG of every strength's seed-mean test error against x (thin lines, light to dark with the
    strength) and, on top, the optimally regularized curves of `entry` (a report's `regularization` entry):
    the oracle (black) and the validation choice (red, dashed), each labelled with its monotone verdict.

    Args:
      test_means: [strength, K] seed means.
      theory: per strength, (x, risk) of its closed-form curve, drawn dotted in the strength's colour.
    """
    from matplotlib import colormaps

    x, strengths, test_means = np.asarray(x, float), np.asarray(strengths, float), np.asarray(test_means, float)
    fig = Figure(figsize=(6.8, 5.6), layout="constrained")
    ax = fig.add_subplot()
    colors = colormaps["viridis"](np.linspace(0.9, 0.1, len(strengths)))
    name = entry.get("axis", "strength")
    for j, strength in enumerate(strengths):
        ax.plot(x, test_means[j], marker=".", markersize=4, linewidth=1, color=colors[j], label=f"{name}={strength:g}")
        if theory is not None:
            ax.plot(*theory[j], color=colors[j], linestyle=":", linewidth=1)
    for key, color, style in (("oracle", "black", "-"), ("validation", "tab:red", "--")):
        curve = entry.get(key)
        if curve is None:
            continue
        verdict = "monotone" if curve["monotone"] else "not monotone"
        p = curve["rise_test"].get("p_value")
        tested = "" if p is None else f", rise p = {p:.2g}"
        ax.plot(x, np.array(curve["mean"], dtype=float), color=color, linestyle=style, linewidth=2.5, zorder=5,
                label=f"optimal, {key} ({verdict}{tested})")
    ax.set_xscale("log")
    ax.set_xlim(x[0] / 1.25, x[-1] * 1.25)
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel("test error")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(_fitted(title or f"optimally regularized test error over {name}", fig), fontsize="medium")
    if theory is not None:
        ax.plot([], [], color="gray", linestyle=":", label="theory (Hastie et al. 2019)")
    _legend_below(fig, ax)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, format="png")


def _legend_below(fig: Figure, ax: Axes) -> None:
    """The legend under the axes, so that it covers no curve."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize="small", frameon=False)


def _fitted(title: str, fig: Figure) -> str:
    """`title` wrapped to the figure's width at the medium font (a slice's fixed coordinates can be long)."""
    return textwrap.fill(title, width=int(fig.get_figwidth() * 11))


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
        basis = " (train loss 0)" if report.threshold_basis == "train_loss" else ""
        ax.axvline(report.interpolation_threshold, color="gray", linestyle="--", linewidth=1,
                   label=f"interpolation threshold{basis} ({report.interpolation_threshold:g})")
    if report.threshold_basis == "train_loss" and report.error_threshold not in (None, report.interpolation_threshold):
        # The regimes use the loss-based threshold; the error-based one is marked too, so the two can be told apart.
        ax.axvline(report.error_threshold, color="gray", linestyle=":", linewidth=1,
                   label=f"train error 0 ({report.error_threshold:g})")
    peak = report.test_error_peak
    if peak is not None:
        ax.plot([peak["x"]], [peak["error"]], marker="*", markersize=14, color="tab:red", linestyle="none",
                label=f"test-error peak ({peak['x']:g})")
    bootstrap = report.bootstrap or {}
    threshold = bootstrap.get("interpolation_threshold")
    if threshold is not None and threshold["high"] > threshold["low"]:
        ax.axvspan(threshold["low"], threshold["high"], color="gray", alpha=0.15, linewidth=0,
                   label=f"threshold {bootstrap['confidence']:.0%} interval")
    peak_x, peak_error = bootstrap.get("peak_x"), bootstrap.get("peak_error")
    if peak is not None and peak_x is not None and peak_error is not None:
        ax.errorbar([peak["x"]], [peak["error"]], color="tab:red", linestyle="none", capsize=3,
                    xerr=[[max(peak["x"] - peak_x["low"], 0)], [max(peak_x["high"] - peak["x"], 0)]],
                    yerr=[[max(peak["error"] - peak_error["low"], 0)], [max(peak_error["high"] - peak["error"], 0)]],
                    label=f"peak {bootstrap['confidence']:.0%} intervals (bootstrap)")


def plot_epochwise(path: str | os.PathLike, x: ArrayLike, steps: ArrayLike, test_error: ArrayLike, *,
                   peak_steps: list[float | None] | None = None, highlight: list[int] | None = None,
                   x_label: str = "width", title: str | None = None, steps_per_epoch: int | None = None,
                   theory: ArrayLike | None = None, y_label: str = "test error") -> None:
    """Writes a PNG of the test error over (x, training step): a heatmap and a few curves against steps.

    Args:
      path: where to write the PNG; missing parent directories are created.
      x: shape (K,): the model sizes (rows of the heatmap).
      steps: shape (T,): ascending eval steps (columns).
      test_error: shape (K, T): seed-mean test error.
      peak_steps: per x, the epoch-wise peak step to mark, or None.
      highlight: indices into x to draw as curves (default: the smallest, the middle and the largest).
      x_label: what x is.
      title: the figure title.
      steps_per_epoch: when given (sampling by epoch), time is shown in epochs: steps / steps_per_epoch.
      theory: shape (K, T): a closed form of the same curves, drawn dashed under each highlighted curve.
      y_label: what the errors are.
    """
    x, steps, errors = np.asarray(x, float), np.asarray(steps, float), np.asarray(test_error, float)
    time_label, times = ("epoch", steps / steps_per_epoch) if steps_per_epoch else ("training step", steps)
    if errors.shape != (x.size, steps.size):
        raise ValueError(f"test_error must have shape (len(x), len(steps))={(x.size, steps.size)}, got {errors.shape}")
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    heat, lines = fig.subplots(1, 2, width_ratios=[1.2, 1])
    # Index axes, labelled with the values: eval steps are log-spaced and start at 0.
    image = heat.imshow(np.ma.masked_invalid(errors), aspect="auto", origin="lower", cmap="viridis",
                        interpolation="nearest")
    fig.colorbar(image, ax=heat, label=y_label)
    columns = np.unique(np.linspace(0, steps.size - 1, min(steps.size, 7)).round().astype(int))
    heat.set_xticks(columns, [f"{times[c]:.3g}" if steps_per_epoch else f"{times[c]:g}" for c in columns])
    rows = np.unique(np.linspace(0, x.size - 1, min(x.size, 12)).round().astype(int))
    heat.set_yticks(rows, [f"{x[r]:g}" for r in rows])
    heat.set_xlabel(time_label)
    heat.set_ylabel(x_label)
    marked = [(int(np.searchsorted(steps, step)), row) for row, step in enumerate(peak_steps or []) if step is not None]
    if marked:
        heat.plot(*zip(*marked), marker="o", markersize=5, color="white", markeredgecolor="black",
                  linestyle="none", label="epoch-wise peak")
        heat.legend(fontsize="small", loc="upper right")
    highlight = highlight if highlight is not None else sorted({0, x.size // 2, x.size - 1})
    for i, color in zip(highlight, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")):
        lines.plot(times, errors[i], color=color, marker="o", markersize=3, label=f"{x_label} {x[i]:g}")
        if theory is not None:
            lines.plot(times, np.asarray(theory, float)[i], color=color, linestyle="--", linewidth=1.2,
                       label=f"{x_label} {x[i]:g}: closed form")
    lines.set_xscale("symlog", linthresh=1 / steps_per_epoch if steps_per_epoch else 1)
    lines.set_xlabel(time_label)
    lines.set_ylabel(f"{y_label} (seed mean)")
    lines.grid(True, alpha=0.3)
    lines.legend(fontsize="small")
    if title:
        fig.suptitle(_fitted(title, fig), fontsize="medium")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
