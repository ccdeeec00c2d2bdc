"""A sweep's outputs in its run folder: curves.npz, then report.json and the figures written from the curves alone.

`run_experiment` calls `write_curves` and `write_analysis` after training; `reanalyze(out_dir)` reads config.json
and curves.npz of a finished run (`load_run`) and calls `write_analysis` again, so a run can be re-analysed and
re-plotted without training (`python -m ddjax.run --report DIR`). Reading a run needs neither its family nor its
data set: the facts the analysis needs of the data set are recorded in config.json ("analysis"), and nothing in a
run folder is ever run.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, NamedTuple

import numpy as np

from ddjax.analysis.inputs import AnalysisInputs, analysis_inputs, inputs_from_dict
from ddjax.analysis.modelwise import DoubleDescentReport, seed_mean_and_error
from ddjax.analysis.sweep_report import gather, member_grid, slices, strength_grid, sweep_report, x_axis
from ddjax.analysis.theory import ridge_excess_risk
from ddjax.config import AXES, AXIS, Config, ConfigError, config_from_dict, recorded_coordinates, steps_per_epoch
from ddjax.data.arrays import is_npz
from ddjax.data.registry import DATASETS
from ddjax.result import SweepResult
from ddjax.runs.checkpoint import write_npz
from ddjax.runs.figures import plot_curves, plot_epochwise, plot_regularization
from ddjax.runs.files import (CONFIG_FILE, CURVES_FIGURE, CURVES_FILE, EPOCHWISE_FIGURE, REGULARIZATION_FIGURE,
                              REPORT_FILE, figure_file)
from ddjax.runs.folder import read_meta, write_text_atomically


def write_analysis(folder: str | os.PathLike, result: SweepResult, config: Config, name: str, *,
                   wall_seconds: float, extra: dict[str, Any] | None = None,
                   inputs: AnalysisInputs | None = None) -> dict[str, Any]:
    """Analyses `result`, writes the figures and then report.json into `folder`, and returns the report.

    report.json is written last and atomically: its presence marks a run folder as finished. `inputs`: what the
    analysis knows of the data set (None: asked of the data-set registry, `analysis_inputs`).
    """
    folder = pathlib.Path(folder)
    inputs = analysis_inputs(config) if inputs is None else inputs
    report, reports = sweep_report(result, config, inputs)
    report.update(wall_seconds=wall_seconds, **(extra or {}))
    write_figures(folder, result, config, name, report, reports, theory=inputs.theory)
    write_text_atomically(folder / REPORT_FILE, json.dumps(report, indent=2))
    return report


def write_figures(folder: pathlib.Path, result: SweepResult, config: Config, name: str, report: dict[str, Any],
                  reports: list[DoubleDescentReport], *, theory: bool) -> None:
    """curves.png (curves-i.png for slice i > 0), for runs with >= 3 eval steps epochwise.png (-i), and for runs
    that sweep a regularization strength regularization.png (-i): every strength's curve, the optimal ones on top;
    with `theory` (`AnalysisInputs.theory`) the closed-form risk is drawn over the curves."""
    axis = x_axis(config)
    emc = report.get("effective_model_complexity")
    for i, (cut, analysis) in enumerate(zip(slices(result, config), reports)):
        label = _settings(config, cut.fixed)
        overlay = _theory_overlay(config, axis, cut.fixed, cut.x, cut.test_error) if theory else None
        plot_curves(folder / figure_file(CURVES_FIGURE, i), cut.x, cut.train_error, cut.test_error, analysis,
                    x_label=axis, title=f"{name}: {label}", emc=emc[i]["emc"] if emc else None, overlay=overlay,
                    log_y=overlay is not None, extra=_early_stopped(report, i))
    if "epochwise" in report:
        for i, (fixed, xs, index) in enumerate(member_grid(result, config)):
            mean = _seed_mean(gather(result.curves["test_error"], index))
            theory = _seed_mean(gather(result.curves["theory_risk"], index)) if "theory_risk" in result.curves else None
            entries = report["epochwise"][i * xs.size:(i + 1) * xs.size]  # Listed slice by slice, x by x.
            peaks = [(entry["peak"] or {}).get("step") for entry in entries]
            label = _settings(config, fixed)
            plot_epochwise(folder / figure_file(EPOCHWISE_FIGURE, i), xs, result.eval_steps, mean,
                           peak_steps=peaks, highlight=_highlight(xs, reports[i]), x_label=axis,
                           title=f"{name}: {'test error' if theory is None else 'test risk'} over training "
                                 f"({label})",
                           steps_per_epoch=steps_per_epoch(config), theory=theory,
                           y_label="test error" if theory is None else "test risk")
    grids = strength_grid(result, config) if "regularization" in report else []
    for i, (entry, (fixed, xs, strengths, index)) in enumerate(zip(report.get("regularization", []), grids)):
        errors = gather(result.curves["test_error"][:, -1], index)  # [strength, seed, x]
        means = np.stack([seed_mean_and_error(e)[0] for e in errors])
        overlays = [_theory_overlay(config, axis, {**fixed, entry["axis"]: s}, xs, errors[j]) if theory else None
                    for j, s in enumerate(strengths)]
        label = _settings(config, fixed)
        plot_regularization(folder / figure_file(REGULARIZATION_FIGURE, i), xs, strengths, means, entry,
                            x_label=axis, title=f"{name}: {label}" if label else name,
                            theory=None if overlays[0] is None else [o[:2] for o in overlays],
                            log_y=overlays[0] is not None)


def _settings(config: Config, fixed: dict[str, Any]) -> str:
    """A slice's fixed coordinates for a title, without the axes that do not apply to the config: those refused
    away from their default, and a closed form's optimizer axes (it has no optimizer)."""
    return ", ".join(f"{k}={v}" for k, v in fixed.items() if k not in AXIS or (
        AXIS[k].applies(config) is None and not (config.method == "min_norm" and AXIS[k].enters == "optimizer")))


def _early_stopped(report: dict[str, Any], i: int) -> list[tuple[list, list, str]]:
    """The test curves at each member's early-stopping step of slice i, labelled with their verdicts."""
    if "early_stopping" not in report:
        return []
    entry = report["early_stopping"][i]
    words = {"validation": "best step by validation (early stopping)", "oracle": "best step by test error (oracle)"}
    return [(entry[k]["x"], [np.nan if v is None else v for v in entry[k]["test_error"]],
             f"test at {words[k]}: double descent {entry[k]['double_descent']}{_p(entry[k].get('p_value'))}")
            for k in ("validation", "oracle")]


def _seed_mean(errors: np.ndarray) -> np.ndarray:
    """The seed mean [x, step] of gathered curves [seed, x, step]."""
    return seed_mean_and_error(errors.reshape(len(errors), -1))[0].reshape(errors.shape[1:])


def _highlight(xs: np.ndarray, report: DoubleDescentReport) -> list[int]:
    """The smallest x, the x nearest the interpolation threshold (else the middle one), and the largest x."""
    threshold = report.interpolation_threshold
    middle = int(np.argmin(np.abs(np.log(xs / threshold)))) if threshold else xs.size // 2
    return sorted({0, middle, xs.size - 1})


def _theory_overlay(config: Config, axis: str, fixed: dict[str, Any], x: np.ndarray, test_error: np.ndarray):
    """The closed-form test risk s^2 + excess(p/n) on a dense x grid, for Gaussian linear regression."""
    if axis not in ("width", "n_train"):
        return None
    dense = np.geomspace(x[0], x[-1], 400)
    n, p = (dense, fixed["width"]) if axis == "n_train" else (fixed["n_train"], dense)
    n = n * (1 - config.validation_fraction)  # The rows fitted (held-out rows are not).
    ridge = fixed.get("ridge", 0.0)
    risk = ridge_excess_risk(p / n, ridge, config.signal_norm_sq, config.noise_var) + config.noise_var
    top = 3 * np.nanmax(test_error) if np.isfinite(test_error).any() else np.inf
    which = "the limit of the excess risk" if ridge == 0 else f"the ridge limit at lambda = {ridge:g}"
    return dense, np.where(risk <= top, risk, np.nan), f"theory: s^2 + {which} (Hastie et al.)"


class StoredRun(NamedTuple):
    """A finished run as read from its folder."""

    config: Config  # Checked without the registries (`config_from_dict(..., registries=False)`).
    name: str  # The experiment's name.
    result: SweepResult
    previous: dict[str, Any]  # Its report.json, or {}.
    inputs: AnalysisInputs


def load_run(out_dir: str | os.PathLike) -> StoredRun:
    """The finished run in `out_dir`, read from its config.json, curves.npz and report.json only: no family, no
    data set and no file of the user's is needed or run."""
    out = pathlib.Path(out_dir)
    for file in (CONFIG_FILE, CURVES_FILE):
        if not (out / file).is_file():
            raise ConfigError(f"{str(out)!r} is not a finished run: it has no {file}")
    meta = read_meta(out)
    config = config_from_dict(meta["config"], registries=False)
    inputs = stored_inputs(meta, config, str(out))
    previous = _previous_report(out)
    timing = previous.get("timing", {})
    with np.load(out / CURVES_FILE, allow_pickle=False) as arrays:
        coords = {k.removeprefix("coord_"): arrays[k] for k in arrays.files if k.startswith("coord_")}
        for axis in AXES:  # Left out while every member holds its default (`write_curves`).
            coords.setdefault(axis.name, np.full(len(arrays["diverged_step"]), axis.default[0]))
        curves = {k: arrays[k] for k in arrays.files if not k.startswith("coord_")
                  and k not in ("eval_steps", "diverged_step")}
        result = SweepResult(coords=coords, eval_steps=arrays["eval_steps"], curves=curves,
                             diverged_step=arrays["diverged_step"],
                             group_widths=tuple(timing.get("group_widths", ())),
                             compile_seconds=timing.get("compile_seconds", float("nan")),
                             run_seconds=timing.get("run_seconds", float("nan")),
                             n_compiles=timing.get("n_compiles", 0), scheme=timing.get("scheme", "unknown"),
                             padding_efficiency=timing.get("padding_efficiency", float("nan")),
                             n_devices=timing.get("n_devices", 1), n_programs=timing.get("n_programs", 1),
                             padding=previous.get("padding"))
    return StoredRun(config, meta.get("experiment", "custom"), result, previous, inputs)


def _previous_report(out: pathlib.Path) -> dict[str, Any]:
    """The run's report.json ({} if it has none); ConfigError if it is not a JSON object."""
    if not (out / REPORT_FILE).is_file():
        return {}
    try:
        report = json.loads((out / REPORT_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{str(out)!r}: unreadable {REPORT_FILE} ({' '.join(str(error).split())})") from None
    if not isinstance(report, dict):
        raise ConfigError(f"{str(out)!r}: {REPORT_FILE} holds no report (a JSON object)")
    return report


def stored_inputs(meta: dict[str, Any], config: Config, folder: str) -> AnalysisInputs:
    """The analysis inputs a run's config.json records ("analysis"). A config.json without them is answered by
    the data-set table of this process for a data set it knows (a built-in one, one registered here, or an
    npz:PATH file, read without pickles); any other is one line naming what is missing."""
    if "analysis" in meta:
        return inputs_from_dict(meta["analysis"], f"{folder!r}: config.json")
    if config.dataset not in DATASETS and not is_npz(config.dataset):
        raise ConfigError(f"cannot analyse {folder!r}: its config.json records no \"analysis\" (n_test, theory) and "
                          f"its dataset {config.dataset!r} is neither built in nor registered here; add them to "
                          f"config.json (n_test: the test split's size)")
    try:
        return analysis_inputs(config)
    except ConfigError as error:
        raise ConfigError(f"cannot analyse {folder!r}: its config.json records no \"analysis\" (n_test, theory), "
                          f"and its data set cannot answer ({error})") from None


def write_curves(folder: str | os.PathLike, result: SweepResult) -> None:
    """Writes curves.npz: `coord_AXIS` [member] per axis, `eval_steps`, `diverged_step` and one [member, eval_step]
    array per curve (byte-for-byte reproducible; `load_run` reads it back). An axis not recorded at its default
    (`ddjax.config.axes.Axis.recorded_at_default`) is left out while every member holds the default, so a run
    that does not sweep it writes the file it wrote before the axis existed."""
    recorded = recorded_coordinates(result.coords)
    arrays = {f"coord_{k}": v for k, v in result.coords.items() if k in recorded}
    write_npz(pathlib.Path(folder) / CURVES_FILE, {"eval_steps": result.eval_steps,
                                                   "diverged_step": result.diverged_step, **arrays, **result.curves})


def reanalyze(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Re-analyses a finished run without training: rewrites its report.json and figures, returns the report."""
    run = load_run(out_dir)
    kept = {k: run.previous[k] for k in ("resumed_from_step",) if k in run.previous}
    return write_analysis(out_dir, run.result, run.config, run.name, inputs=run.inputs, extra=kept,
                          wall_seconds=run.previous.get("wall_seconds", float("nan")))


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Terminal lines for the report sections beyond the double-descent analysis."""
    lines = []
    bootstrap = report.get("bootstrap")
    if bootstrap:
        c = f"{bootstrap['confidence']:.0%}"
        for key in ("interpolation_threshold", "peak_x", "peak_error"):
            interval = bootstrap[key]
            if interval:
                lines.append(f"{key} {c} interval (bootstrap): [{interval['low']:.4g}, {interval['high']:.4g}]")
    epochwise = report.get("epochwise", [])
    if epochwise:
        found = [e for e in epochwise if e["epochwise_double_descent"]]
        shapes = [e.get("shape") for e in epochwise]
        counts = ", ".join(f"{n} {shape.replace('_', ' ')}" for shape in dict.fromkeys(shapes)
                           if shape and (n := shapes.count(shape)))
        lines.append(f"epoch-wise double descent in {len(found)} of {len(epochwise)} curves"
                     + (f" (shapes: {counts})" if counts else ""))
        for entry in found if len(epochwise) > 8 else epochwise:  # Every curve when there are few.
            if not entry.get("description"):  # A report written before curves were named by shape.
                lines.append(f"  {_fixed(entry['fixed'])}: {_peak_words(entry)}")
                continue
            peak = entry["peak"] or {}
            when = f" (sampled by epoch: peak at epoch {peak['epoch']:g})" if "epoch" in peak else ""
            lines.append(f"  {_fixed(entry['fixed'])}: {entry['description']}{when}")
    for entry in report.get("early_stopping", []):
        for k, words in (("validation", "early stopping by validation"), ("oracle", "oracle (best test step)")):
            read = entry[k]
            peak = read["test_error_peak"]
            where = f", peak {peak['error']:.4g} at {peak['x']:g}" if peak else ""
            lines.append(f"{words} {_fixed(entry['fixed'])}: double descent {read['double_descent']}"
                         f"{_p(read.get('p_value'))}{where}")
    for entry in report.get("effective_model_complexity", []):
        hurts = entry["more_data_hurts"]
        lines.append(f"{_fixed(entry['fixed'])}: {entry['note']}; more data hurts: "
                     + (f"n {hurts['from']:g} -> {hurts['to']:g} (+{hurts['rise']:.3f}, significant: "
                        f"{hurts['significant']}{_p(hurts.get('p_value'))})" if hurts else "no"))
    for entry in report.get("theory", []):
        lines.append(f"theory {_fixed(entry['fixed'])}: max relative deviation {entry['max_relative_deviation']:.3g}"
                     f" outside g in {entry['excluded_band']} (matches within {entry['tolerance']:g}: "
                     f"{entry['matches']})")
    for entry in report.get("gd_theory", []):
        lines.append(f"closed form {_fixed(entry['fixed'])}: trained risk within {entry['max_relative_deviation']:.3g} "
                     f"(relative; at most {entry['max_deviation_in_standard_errors']:.2g} standard errors) of it; "
                     f"{entry['theory_description']}; the verdict on the trained curves agrees: "
                     f"{entry['verdict_agrees']}")
    for entry in report.get("regularization", []):
        for key in ("oracle", "validation"):
            curve = entry[key]
            if curve is not None:
                lines.append(f"optimal {entry['axis']} ({key}) {_fixed(entry['fixed'])}: monotone: {curve['monotone']}"
                             f"{_p(curve['rise_test'].get('p_value'))}; double descent: {curve['double_descent']}"
                             f"{_p(curve['double_descent_test'].get('p_value'))}")
    for entry in report.get("weight_norm", []):
        if entry["peak"]:
            lines.append(f"weight norm {_fixed(entry['fixed'])}: peaks at {entry['peak']['x']:g} "
                         f"({entry['peak']['norm']:.4g})")
    return lines


def _peak_words(entry: dict[str, Any]) -> str:
    """An epoch-wise entry's peak and verdict (reports written before curves were named by shape)."""
    peak = entry["peak"]
    where = "no peak"
    if peak:  # Sampled by epoch: the entry gives the epoch too.
        when = f"epoch {peak['epoch']:g}" if "epoch" in peak else f"step {peak['step']:g}"
        where = f"peak at {when} (error {peak['error']:.3f})"
    return f"{where}, double descent: {entry['epochwise_double_descent']}{_p(entry.get('p_value'))}"


def _p(p_value: float | None) -> str:
    return "" if p_value is None else f", p = {p_value:.3g}"


def _fixed(fixed: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in fixed.items())
