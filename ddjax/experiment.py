"""Experiment modules, and running one in a run folder: config.json, curves.npz, report.json, curves.png."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import time
from types import ModuleType
from typing import Any

import jax

from ddjax.analysis.inputs import analysis_inputs
from ddjax.config import Config, ConfigError, config_differences, config_from_dict, ensure_valid, replace, to_dict
from ddjax.runs import checkpoint
from ddjax.runs import folder as run_folder
from ddjax.runs.files import CHECKPOINT_FILE
from ddjax.runs.registered import check_named_files, check_registrations, recorded_registrations
from ddjax.training import hosts

DEFAULT_EXPERIMENT = "mlp_mnist1d"


def experiment_dirs() -> list[pathlib.Path]:
    """Where experiment modules live: `ddjax/experiments` when installed, `experiments/` in a checkout."""
    package = pathlib.Path(__file__).resolve().parent
    return [d for d in (package / "experiments", package.parent / "experiments") if d.is_dir()]


def available_experiments() -> list[str]:
    """Names of all experiment modules."""
    return sorted({p.stem for d in experiment_dirs() for p in d.glob("*.py") if not p.stem.startswith("_")})


def load_experiment(name: str) -> ModuleType:
    """The experiment module called `name` (or at path `name`), which defines `get_config(variant)`."""
    path = pathlib.Path(name)
    if name.endswith(".py"):
        if not path.is_file():
            raise ConfigError(f"experiment file {name!r} does not exist")
    else:
        found = [d / f"{name}.py" for d in experiment_dirs() if (d / f"{name}.py").is_file()]
        if not found or not name.isidentifier():
            raise ConfigError(f"unknown experiment {name!r}; available: {', '.join(available_experiments())}")
        path = found[0]
    module = _exec_file(path)
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"experiment {name!r} defines no get_config()")
    return module


def _exec_file(path: pathlib.Path) -> ModuleType:
    """Runs the Python file at `path` as a module (an experiment module, or a file that registers a family)."""
    spec = importlib.util.spec_from_file_location(f"ddjax_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def experiment_config(name: str, variant: str = "default") -> Config:
    """The config of experiment `name` in `variant`."""
    return load_experiment(name).get_config(variant)


def variant(config: Config, name: str, **variants: dict[str, Any]) -> Config:
    """`config` with the overrides of variant `name` applied ("default" applies none), validated, with `epochs`
    resolved into `steps`."""
    if name == "default":
        return replace(config)
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; available: default, {', '.join(variants)}")
    return replace(config, **variants[name])


def run_meta(config: Config, name: str) -> dict[str, Any]:
    """The contents of a run's config.json: experiment name, resolved config, versions, devices and processes, what
    the analysis needs to know of the data set ("analysis", `ddjax.analysis.inputs`), and for a user's family or
    data set the file that registered it and its sha256 (`ddjax.runs.registered`)."""
    import ddjax

    meta = {"experiment": name, "config": to_dict(config), "ddjax_version": ddjax.__version__,
            "jax_version": jax.__version__, "devices": [str(d) for d in jax.devices()],
            "n_processes": jax.process_count()}
    meta.update(recorded_registrations(config))
    meta["analysis"] = analysis_inputs(config)._asdict()
    return meta


def run_registering_files(meta: dict[str, Any], files: list[str], folder: str) -> None:
    """Runs the files the user named to register the family or data set of the run `meta` describes, once each
    is known to be one the run recorded (`ddjax.runs.registered.check_named_files`: ConfigError before any runs)."""
    check_named_files(meta, files, folder)
    for file in files:
        _exec_file(pathlib.Path(file))


def run_experiment(config: Config, out_dir: str | os.PathLike, *, name: str = "custom", force: bool = False,
                   progress: bool = False) -> dict[str, Any]:
    """Trains the sweep of `config` in run folder `out_dir`, analyses it and writes the output files.

    The folder is created first, holding config.json, and receives checkpoint.npz at every chunk boundary (vmap
    mode), so a killed run can be continued with `resume_experiment`; report.json is written last and marks the
    run finished. Bad input raises ConfigError and leaves no folder behind; so does data that cannot be had (image
    data sets are downloaded and verified before the folder is created), and so does a sweep whose members cannot
    fit in device memory even one at a time (`ddjax.training.memory`). Returns the report.
    """
    from ddjax.sweep import prepare

    config = ensure_valid(config)
    # The data (downloaded and verified if need be), the layout and the memory plan: refused before the folder exists.
    prepared = prepare(config, mode=None, scheme="auto")
    created = []  # In a multi-host job only process 0 creates (and writes) the run folder.
    hosts.from_main(lambda: created.append(run_folder.create(out_dir, run_meta(config, name), force=force)))
    try:
        return _train_in(pathlib.Path(out_dir), config, name, progress=progress, resumed=None, prepared=prepared)
    except ConfigError:
        for run in created:
            run_folder.discard(run)
        raise


def resume_experiment(run_dir: str | os.PathLike, config: Config | None = None, *,
                      progress: bool = False) -> dict[str, Any]:
    """Continues the unfinished run in `run_dir` from its last checkpoint (or from step 0 if it has none).

    A family or data set of the user's must be registered in this process first, by a file with the sha256 the
    run recorded or in a notebook cell (`ddjax.runs.registered.check_registrations`); nothing is run to find it.

    Args:
      config: if given, must equal the run's config; a difference raises ConfigError naming the keys.

    Returns:
      The report; its "resumed_from_step" is the loop step training continued from (serial mode: the number of
      members already trained).
    """
    path = pathlib.Path(run_dir)
    loaded = []  # Process 0 reads the run folder; in a multi-host job it sends the others what they need.
    meta = hosts.from_main(lambda: _read_unfinished(path, config, loaded))
    stored = config_from_dict(meta["config"])
    saved = loaded[0] if hosts.is_main() else None
    if jax.process_count() > 1:  # The other hosts parse process 0's checkpoint file, sent as it is.
        data = hosts.share_bytes((path / CHECKPOINT_FILE).read_bytes() if saved is not None else b"")
        if not hosts.is_main():
            saved = checkpoint.parse_checkpoint(data, str(path / CHECKPOINT_FILE)) if data else None
    return _train_in(path, stored, meta.get("experiment", "custom"), progress=progress, resumed=saved)


def _read_unfinished(path: pathlib.Path, config: Config | None, loaded: list) -> dict[str, Any]:
    """The config.json of the unfinished run at `path`, checked against `config` and this job's process count;
    appends its checkpoint (or None) to `loaded`. Raises ConfigError naming what does not match."""
    meta = run_folder.unfinished_run(path)
    check_registrations(meta, str(path))
    try:
        stored = config_from_dict(meta["config"])
    except ConfigError as error:
        raise ConfigError(f"cannot resume {str(path)!r}: its config.json is invalid ({error})") from None
    if config is not None:
        differences = config_differences(stored, config)
        if differences:
            given, saved = to_dict(config), to_dict(stored)
            details = ", ".join(f"{k} (run: {saved.get(k)}, given: {given.get(k)})" for k in differences)
            raise ConfigError(f"cannot resume {str(path)!r} with a different config; differing keys: {details}")
    processes = meta.get("n_processes", 1)
    if processes != jax.process_count():
        raise ConfigError(f"cannot resume {str(path)!r} on {jax.process_count()} process(es): it was trained by "
                          f"{processes}; resume it on the same topology (see docs/devices.md, Running on TPU and GPU)")
    checkpoint.discard_partial_write(path)
    saved = checkpoint.load_checkpoint(path)
    if saved is not None:
        checkpoint.check_config(saved, to_dict(stored))
    loaded.append(saved)
    return meta


def _train_in(out: pathlib.Path, config: Config, name: str, *, progress: bool,
              resumed: checkpoint.Checkpoint | None, prepared=None) -> dict[str, Any]:
    from ddjax.runs.outputs import write_analysis, write_curves
    from ddjax.sweep import run_sweep

    start = time.perf_counter()
    earlier = 0.0 if resumed is None else resumed.elapsed_seconds

    def save(step, state):
        if hosts.is_main():  # `state` holds every host's members (the trainer gathered them).
            checkpoint.save_checkpoint(out, step, state, config=to_dict(config),
                                       elapsed_seconds=earlier + time.perf_counter() - start)

    def restore(template):
        state = checkpoint.restore_state(resumed, template)
        resumed.leaves.clear()  # Restored: the run need not hold the file's copy (a staged solve's carry is GBs).
        return state

    # Several programs are checkpointed after each: the "step" counts finished programs (members, for serial).
    result = run_sweep(config, progress=progress and hosts.is_main(), on_chunk=save,
                       restore=None if resumed is None else restore, start_step=0 if resumed is None else resumed.step,
                       prepared=prepared)

    def write_outputs():
        write_curves(out, result)
        report = write_analysis(out, result, config, name, wall_seconds=earlier + time.perf_counter() - start,
                                extra={"resumed_from_step": None if resumed is None else resumed.step})
        (out / CHECKPOINT_FILE).unlink(missing_ok=True)
        return report

    return hosts.from_main(write_outputs)  # Every host returns the report process 0 wrote.


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal: threshold, peak, regimes, time."""
    peak, regime = report["test_error_peak"], report["overparameterized_regime"]
    lines = [
        f"interpolation threshold ({report['x_axis']}): {report['interpolation_threshold']}{_basis(report)}",
        f"test-error peak: {peak}",
        f"under-parameterized best: {report['under_min']}   over-parameterized best: {report['over_min']}",
        f"over-parameterized regime: {regime}",
        f"double descent: {report['double_descent']}{_tested(report)}",
        f"time: {report['wall_seconds']:.1f} s (compile {report['timing']['compile_seconds']:.1f} s, "
        f"train {report['timing']['run_seconds']:.1f} s{_on_devices(report['timing'].get('n_devices', 1))}"
        f"{_in_programs(report['timing'].get('n_programs', 1))})",
    ]
    if report.get("resumed_from_step") is not None:
        done = report["resumed_from_step"]
        serial = report["timing"].get("scheme") == "serial"
        lines.append(f"resumed after {done} trained members" if serial else f"resumed from step {done}")
    from ddjax.runs.outputs import summary_lines

    return "\n".join(lines + summary_lines(report) + [f"note: {n}" for n in report["notes"]])


def _basis(report: dict[str, Any]) -> str:
    """Which threshold the regimes use, and the other one when they differ."""
    if report.get("threshold_basis") != "train_loss":
        return ""
    error = report.get("error_threshold")
    other = "" if error == report["interpolation_threshold"] else f"; train error reaches 0 at {error}"
    return f" (train loss reaches 0{other})"


def _tested(report: dict[str, Any]) -> str:
    """What the verdict rests on: the p-value of the calibrated test, or that one seed was not tested."""
    if report.get("n_seeds") == 1:
        return " (one seed: not tested against seed noise)"
    p = report.get("p_value")
    return "" if p is None else f" (p = {p:.3g} against simulated peak-free curves with the seeds' noise)"


def _in_programs(n_programs: int) -> str:
    return (f", {n_programs} consecutive programs (memory planning, one a width of a module family, or one a "
            f"stage of a closed form)"
            if n_programs > 1 else "")


def _on_devices(n_devices: int) -> str:
    return f" on {n_devices} devices" if n_devices > 1 else ""
