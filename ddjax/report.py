"""From a sweep's stacked curves to analysis reports: one curve per slice of the non-x axes, seeds stacked."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

from ddjax.analysis import DoubleDescentReport, analyze
from ddjax.config import AXES, Config
from ddjax.sweep import SweepResult

X_AXIS_PREFERENCE = ("width", "n_train", "label_noise", "learning_rate")


class Slice(NamedTuple):
    """One curve: fixed values of the other axes, x ascending, errors of shape (seeds, K)."""

    fixed: dict[str, float]
    x: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray


def x_axis(config: Config) -> str:
    """The axis curves are drawn against: the first of width, n_train, ... with more than one value."""
    return next((axis for axis in X_AXIS_PREFERENCE if len(getattr(config, axis)) > 1), "width")


def slices(result: SweepResult, config: Config, *, step_index: int = -1) -> list[Slice]:
    """The sweep's final (or `step_index`) errors cut into one (seeds, K) curve per slice of the other axes."""
    axis = x_axis(config)
    others = [a for a in AXES if a not in (axis, "seed")]
    xs = np.array(sorted(getattr(config, axis)), dtype=float)
    seeds = list(config.seed)
    out = []
    for values in itertools.product(*(getattr(config, a) for a in others)):
        shape = (len(seeds), len(xs))
        train, test = np.full(shape, np.nan), np.full(shape, np.nan)
        mask = np.logical_and.reduce([result.coords[a] == v for a, v in zip(others, values)])
        for m in np.flatnonzero(mask):
            row, col = seeds.index(result.coords["seed"][m]), int(np.searchsorted(xs, result.coords[axis][m]))
            train[row, col] = result.curves["train_error"][m, step_index]
            test[row, col] = result.curves["test_error"][m, step_index]
        out.append(Slice({a: _plain(v) for a, v in zip(others, values)}, xs, train, test))
    return out


def diverged_members(result: SweepResult) -> list[dict[str, Any]]:
    """Coordinates and divergence step of every member whose loss went non-finite."""
    return [{**{a: _plain(result.coords[a][m]) for a in AXES}, "step": int(result.diverged_step[m])}
            for m in np.flatnonzero(result.diverged_step >= 0)]


def sweep_report(result: SweepResult, config: Config) -> tuple[dict[str, Any], list[DoubleDescentReport]]:
    """The JSON report of a sweep and the analysis of each slice.

    Top-level analysis fields are those of the first slice (the only one unless several label-noise levels,
    training-set sizes or learning rates are swept); every slice is listed under "slices".
    """
    cuts = slices(result, config)
    reports = [analyze(s.x, s.train_error, s.test_error, train_tolerance=config.train_tolerance) for s in cuts]
    diverged = diverged_members(result)
    body = {
        **reports[0].to_dict(),
        "x_axis": x_axis(config),
        "slices": [{"fixed": s.fixed, **r.to_dict()} for s, r in zip(cuts, reports)],
        "diverged": diverged,
        "timing": {"compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
                   "n_compiles": result.n_compiles, "group_widths": list(result.group_widths), "scheme": result.scheme,
                   "padding_efficiency": result.padding_efficiency},
    }
    if diverged:
        body["notes"] = [*body["notes"], f"{len(diverged)} diverged member(s) excluded from the analysis"]
    return body, reports


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
