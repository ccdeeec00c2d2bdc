"""From a sweep's stacked curves to analysis reports: one curve per slice of the non-x axes, seeds stacked.

Besides the double-descent analysis of each slice, the report has a section for each analysis that applies:
`epochwise` (runs with >= 3 eval steps), `effective_model_complexity` (x axis n_train), `theory` (Gaussian
linear regression), `gd_theory` (gradient descent against its risk over time in closed form) and `weight_norm`
(closed-form read-outs). What the analysis knows of the data set beyond the curves comes in `AnalysisInputs`
(`ddjax.analysis.inputs`), so a stored run is analysed from its config.json and curves.npz alone.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

from ddjax.analysis.early_stopping import SELECTIONS, best_steps, read_at
from ddjax.analysis.epochwise import epochwise_analysis
from ddjax.analysis.inputs import AnalysisInputs, analysis_inputs
from ddjax.analysis.modelwise import DoubleDescentReport, analyze, effective_model_complexity, seed_mean_and_error
from ddjax.analysis.regularization import optimal_curves
from ddjax.analysis.theory import GD_FORMULA, compare_over_time, compare_to_theory
from ddjax.config import (STRENGTH_AXES, Config, recorded_axes, recorded_coordinates, steps_per_epoch,
                          validation_size)
from ddjax.result import SweepResult

X_AXIS_PREFERENCE = ("width", "n_train", "label_noise", "learning_rate")


class Slice(NamedTuple):
    """One curve: fixed values of the other axes, x ascending, errors (and the train loss) of shape (seeds, K)."""

    fixed: dict[str, float]
    x: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    train_loss: np.ndarray | None = None


def x_axis(config: Config) -> str:
    """The axis curves are drawn against: `config.x_axis`, or the first of width, n_train, ... swept."""
    if config.x_axis != "auto":
        return config.x_axis
    return next((axis for axis in X_AXIS_PREFERENCE if len(getattr(config, axis)) > 1), "width")


def report_axes(config: Config) -> list[str]:
    """The axes a report names: those outputs record (`ddjax.config.axes.recorded_axes`)."""
    return list(recorded_axes(config))


def member_grid(result: SweepResult, config: Config) -> list[tuple[dict[str, Any], np.ndarray, np.ndarray]]:
    """Per slice of the non-x axes: (fixed values, x ascending, member index [seed, K], -1 where missing)."""
    axis = x_axis(config)
    others = [a for a in report_axes(config) if a not in (axis, "seed")]
    xs = np.array(sorted(getattr(config, axis)), dtype=float)
    seeds = list(config.seed)
    out = []
    for values in itertools.product(*(getattr(config, a) for a in others)):
        index = np.full((len(seeds), len(xs)), -1)
        mask = np.logical_and.reduce([result.coords[a] == v for a, v in zip(others, values)])
        for m in np.flatnonzero(mask):
            index[seeds.index(result.coords["seed"][m]), int(np.searchsorted(xs, result.coords[axis][m]))] = m
        out.append(({a: _plain(v) for a, v in zip(others, values)}, xs, index))
    return out


def strength_axis(config: Config) -> str | None:
    """The regularization axis swept over more than one strength (one at most: each belongs to one method)."""
    return next((a for a in STRENGTH_AXES if len(getattr(config, a)) > 1), None)


def strength_grid(result: SweepResult, config: Config) -> list[tuple[dict[str, Any], np.ndarray, np.ndarray,
                                                                     np.ndarray]]:
    """Per slice of the axes other than x, seed and the strength axis: (fixed values, x ascending, strengths
    ascending, member index [strength, seed, K])."""
    axis = strength_axis(config)
    groups: dict[tuple, list] = {}
    for fixed, xs, index in member_grid(result, config):
        rest = {k: v for k, v in fixed.items() if k != axis}
        groups.setdefault(tuple(rest.items()), []).append((fixed[axis], xs, index))
    out = []
    for key, members in groups.items():
        members.sort(key=lambda entry: entry[0])
        out.append((dict(key), members[0][1], np.array([m[0] for m in members], float),
                    np.stack([m[2] for m in members])))
    return out


def regularization_section(result: SweepResult, config: Config, n_test: int | None) -> list[dict[str, Any]]:
    """The optimally regularized curves of every slice (`ddjax.analysis.regularization.optimal_curves`); `n_test`:
    `AnalysisInputs.n_test`."""
    axis = strength_axis(config)
    val = result.curves.get("val_error")
    entries = []
    for fixed, xs, strengths, index in strength_grid(result, config):
        test_error = gather(result.curves["test_error"][:, -1], index)
        val_error = None if val is None else gather(val[:, -1], index)
        entry = {"fixed": fixed, "axis": axis, **optimal_curves(xs, strengths, test_error, val_error, n_test=n_test)}
        if val_error is None:
            entry["note"] = "no validation choice: the run has no val_error curves (validation_fraction=0)"
        entries.append(entry)
    return entries


def gather(curve: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`curve[index]` along the member axis, NaN where the index is -1 (any trailing axes are kept)."""
    values = np.asarray(curve, dtype=float)[np.maximum(index, 0)]
    return np.where((index >= 0).reshape(index.shape + (1,) * (values.ndim - index.ndim)), values, np.nan)


def slices(result: SweepResult, config: Config, *, step_index: int = -1) -> list[Slice]:
    """The sweep's final (or `step_index`) errors cut into one (seeds, K) curve per slice of the other axes.

    The train loss comes along for closed-form read-outs (method="min_norm"): there the squared loss itself
    reaches zero, and its threshold is the one the theory means (`loss_threshold` in `ddjax.analysis.analyze`).
    """
    loss = result.curves.get("train_loss") if config.method == "min_norm" else None
    return [Slice(fixed, xs, gather(result.curves["train_error"][:, step_index], index),
                  gather(result.curves["test_error"][:, step_index], index),
                  None if loss is None else gather(loss[:, step_index], index))
            for fixed, xs, index in member_grid(result, config)]


def diverged_members(result: SweepResult) -> list[dict[str, Any]]:
    """Coordinates and divergence step of every member whose loss went non-finite."""
    axes = list(recorded_coordinates(result.coords))
    return [{**{a: _plain(result.coords[a][m]) for a in axes}, "step": int(result.diverged_step[m])}
            for m in np.flatnonzero(result.diverged_step >= 0)]


def sweep_report(result: SweepResult, config: Config,
                 inputs: AnalysisInputs | None = None) -> tuple[dict[str, Any], list[DoubleDescentReport]]:
    """The JSON report of a sweep and the analysis of each slice.

    Top-level analysis fields are those of the first slice (the only one unless several label-noise levels,
    training-set sizes or learning rates are swept); every slice is listed under "slices".

    Args:
      inputs: what the analysis knows of the data set (a stored run's, from its config.json); None: asked of the
        data-set registry (`analysis_inputs`).
    """
    inputs = analysis_inputs(config) if inputs is None else inputs
    cuts = slices(result, config)
    reports = [analyze(s.x, s.train_error, s.test_error, train_tolerance=config.train_tolerance,
                       samplewise=x_axis(config) == "n_train", n_bootstrap=config.n_bootstrap,
                       train_loss=s.train_loss, n_test=inputs.n_test) for s in cuts]
    diverged = diverged_members(result)
    body = {
        **reports[0].to_dict(),
        "x_axis": x_axis(config),
        "slices": [{"fixed": s.fixed, **r.to_dict()} for s, r in zip(cuts, reports)],
        "diverged": diverged,
        "timing": {"compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
                   "n_compiles": result.n_compiles, "group_widths": list(result.group_widths), "scheme": result.scheme,
                   "padding_efficiency": result.padding_efficiency, "n_devices": result.n_devices,
                   "n_programs": result.n_programs},
    }
    if result.padding is not None:
        body["padding"] = result.padding
        body["timing"]["padding_check_seconds"] = result.padding["check_seconds"]
        if not result.padding["exact"]:
            body["notes"] = [*body["notes"], f"padding changes {result.padding['reason']}: one program per width"]
    if diverged:
        body["notes"] = [*body["notes"], f"{len(diverged)} diverged member(s) excluded from the analysis"]
    body.update(extra_sections(result, config, cuts, reports, inputs))
    return body, reports


def extra_sections(result: SweepResult, config: Config, cuts: list[Slice], reports: list[DoubleDescentReport],
                   inputs: AnalysisInputs) -> dict[str, Any]:
    """The report sections of the analyses that apply to this sweep (see the module docstring)."""
    grid = member_grid(result, config)
    axis = x_axis(config)
    sections: dict[str, Any] = {}
    if len(result.eval_steps) >= 3:
        sections["epochwise"] = [
            {"fixed": {**fixed, axis: sorted(getattr(config, axis))[k]},
             **epochwise_analysis(result.eval_steps, gather(result.curves["train_error"], index[:, k]),
                                  gather(result.curves["test_error"], index[:, k]),
                                  train_tolerance=config.train_tolerance, n_test=inputs.n_test).to_dict()}
            for fixed, xs, index in grid for k in range(xs.size)]
        per_epoch = steps_per_epoch(config)
        if per_epoch is not None:  # Sampled by epoch: the time axis also reads in epochs.
            sections["epochwise"] = [with_epochs(entry, per_epoch) for entry in sections["epochwise"]]
    if "theory_risk" in result.curves and "epochwise" in sections:  # Gradient descent beside its closed form.
        verdicts = iter(sections["epochwise"])
        sections["gd_theory"] = []
        for fixed, xs, index in grid:
            for k in range(xs.size):
                entry = compare_over_time(result.eval_steps, gather(result.curves["test_error"], index[:, k]),
                                          gather(result.curves["theory_risk"], index[:, k]),
                                          min_rise=next(verdicts)["min_rise"], formula=theory_formula(config))
                sections["gd_theory"].append({"fixed": {**fixed, axis: sorted(getattr(config, axis))[k]}, **entry})
        for entry, verdict in zip(sections["gd_theory"], sections["epochwise"]):
            entry["epochwise_double_descent"] = verdict["epochwise_double_descent"]
            entry["verdict_agrees"] = verdict["epochwise_double_descent"] == entry["theory_double_descent"]
    # Members held out validation rows and were evaluated more than once: early stopping beside the last step.
    if "val_error" in result.curves and len(result.eval_steps) > 1:
        sections["early_stopping"] = early_stopping_section(result, config, inputs.n_test)
    if axis == "n_train":
        sections["effective_model_complexity"] = [
            {"fixed": cut.fixed, **effective_model_complexity(cut.x, cut.train_error, tolerance=config.train_tolerance),
             "more_data_hurts": more_data_hurts(report)} for cut, report in zip(cuts, reports)]
    if strength_axis(config) is not None:
        sections["regularization"] = regularization_section(result, config, inputs.n_test)
    if inputs.theory:
        sections["theory"] = []
        for fixed, xs, index in grid:
            n = xs if axis == "n_train" else np.full(xs.shape, fixed["n_train"], float)
            n = n - np.array([validation_size(int(v), config.validation_fraction) for v in n])  # The rows fitted.
            p = xs if axis == "width" else np.full(xs.shape, fixed["width"], float)
            comparison = compare_to_theory(n, p, gather(result.curves["excess_risk"][:, -1], index),
                                           config.signal_norm_sq, config.noise_var, ridge=fixed.get("ridge", 0.0))
            sections["theory"].append({"fixed": fixed, **comparison})
    if "weight_norm" in result.curves:
        sections["weight_norm"] = []
        for fixed, xs, index in grid:
            mean, _ = seed_mean_and_error(gather(result.curves["weight_norm"][:, -1], index))
            peak = int(np.nanargmax(mean)) if np.isfinite(mean).any() else None
            sections["weight_norm"].append({"fixed": fixed, "x": xs.tolist(), "mean": _floats(mean),
                                            "peak": None if peak is None else {"x": float(xs[peak]),
                                                                                "norm": float(mean[peak])}})
    return sections


def early_stopped_slices(result: SweepResult, config: Config, selected_by: str) -> tuple[list[Slice], np.ndarray]:
    """The slices read at each member's best eval step by curve `selected_by` (`ddjax.analysis.early_stopping`),
    and those steps (eval step values, -1 where a member has none)."""
    index = best_steps(result.curves[selected_by])
    at_best = SweepResult(**{**vars(result), "eval_steps": result.eval_steps[:1],
                             "curves": {k: read_at(v, index)[:, None] for k, v in result.curves.items()}})
    return slices(at_best, config), np.where(index >= 0, np.asarray(result.eval_steps)[np.maximum(index, 0)], -1)


def early_stopping_section(result: SweepResult, config: Config, n_test: int | None) -> list[dict[str, Any]]:
    """Per slice, the model-wise analysis of the test error at each member's best step, chosen on the validation
    split ("validation") and on the test set itself ("oracle", optimistic), with the calibrated verdict on each;
    `n_test`: `AnalysisInputs.n_test`."""
    by_slice: list[dict[str, Any]] = []
    for name, curve in SELECTIONS.items():
        cuts, steps = early_stopped_slices(result, config, curve)
        for i, (cut, (fixed, xs, index)) in enumerate(zip(cuts, member_grid(result, config))):
            report = analyze(cut.x, cut.train_error, cut.test_error, train_tolerance=config.train_tolerance,
                             samplewise=x_axis(config) == "n_train", n_test=n_test)
            if len(by_slice) <= i:
                by_slice.append({"fixed": fixed})
            mean, _ = seed_mean_and_error(cut.test_error)
            by_slice[i][name] = {
                "selected_by": curve, "x": xs.tolist(), "test_error": _floats(mean),
                "best_step": [_floats(row) for row in gather(np.where(steps >= 0, steps, np.nan), index)],
                **{k: v for k, v in report.to_dict().items()
                   if k in ("double_descent", "p_value", "evidence", "test_error_peak", "under_min", "over_min",
                            "interpolation_threshold")}}
    return by_slice


def theory_formula(config: Config) -> str:
    """What the `theory_risk` curves are, in words."""
    if config.theory == "linearized":
        return ("each member's network linearized at its initialization, trained with its per-layer steps: "
                "f0 + K(., X) K^+ [I - (I - K/n)^t] (y - f0(X)), K = eta1 K1 + eta2 K2 (Heckel & Yilmaz 2021)")
    return GD_FORMULA


def with_epochs(entry: dict[str, Any], per_epoch: int) -> dict[str, Any]:
    """An epoch-wise entry with `steps_per_epoch` and, beside each point's step, its epoch (steps / per_epoch)."""
    def point(p):
        return None if p is None else {**p, "epoch": p["step"] / per_epoch}

    timed = {key: point(value) if key in ("peak", "first_min", "later_min", "final_rise") else value
             for key, value in entry.items()}
    timed["member_peaks"] = [point(p) for p in entry.get("member_peaks", [])]
    if entry.get("interpolation_step") is not None:
        timed["interpolation_epoch"] = entry["interpolation_step"] / per_epoch
    return {**timed, "steps_per_epoch": per_epoch}


def more_data_hurts(report: DoubleDescentReport) -> dict[str, Any] | None:
    """Where the test error of a sample-wise sweep rises with more data: from the lowest error left of the peak
    (the over-parameterized side) up to the peak; `significant`, `p_value` and `evidence` are those of the
    report's calibrated rise test (`rise_test`: the same test as the double-descent verdict, one-sided)."""
    peak, before = report.test_error_peak, report.over_min
    if peak is None or before is None or peak["error"] <= before["error"]:
        return None
    test = report.rise_test or {}
    return {"from": before["x"], "to": peak["x"], "rise": peak["error"] - before["error"],
            "significant": bool(test.get("significant", False)), "p_value": test.get("p_value"),
            "evidence": test.get("evidence", "not tested")}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]
