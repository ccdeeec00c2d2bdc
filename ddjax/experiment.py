"""Experiment modules and the outputs of one run: config.json, curves.npz, report.json, curves.png."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import tempfile
import time
from types import ModuleType
from typing import Any

import numpy as np

from ddjax.config import Config, ConfigError, replace, to_dict

OUTPUT_FILES = ("config.json", "curves.npz", "report.json", "curves.png")
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
    spec = importlib.util.spec_from_file_location(f"ddjax_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"experiment {name!r} defines no get_config()")
    return module


def experiment_config(name: str, variant: str = "default") -> Config:
    """The config of experiment `name` in `variant`."""
    return load_experiment(name).get_config(variant)


def variant(config: Config, name: str, **variants: dict[str, Any]) -> Config:
    """`config` with the overrides of variant `name` applied ("default" applies none)."""
    if name == "default":
        return config
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; available: default, {', '.join(variants)}")
    return replace(config, **variants[name])


def prepare_output_dir(out_dir: str | os.PathLike, *, force: bool = False) -> pathlib.Path:
    """Checks that `out_dir` can be written (before any training) and returns it as a path."""
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} exists and is a file")
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"output folder {str(out)!r} exists and is not empty; pass --force to replace it")
    parent = out.resolve().parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"output folder {str(out)!r} is not writable")
    return out


def run_experiment(config: Config, out_dir: str | os.PathLike, *, name: str = "custom", force: bool = False,
                   progress: bool = False) -> dict[str, Any]:
    """Trains the sweep of `config`, analyses it and writes the four output files into `out_dir`.

    The files are written into a temporary sibling folder that is renamed into place at the end, so a failed
    run never leaves a half-written output folder. Returns the report.
    """
    import jax

    import ddjax
    from ddjax.outputs import write_analysis
    from ddjax.sweep import run_sweep

    out = prepare_output_dir(out_dir, force=force)
    start = time.perf_counter()
    result = run_sweep(config, progress=progress)
    wall_seconds = time.perf_counter() - start
    out.resolve().parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        meta = {"experiment": name, "config": to_dict(config), "ddjax_version": ddjax.__version__,
                "jax_version": jax.__version__, "devices": [str(d) for d in jax.devices()]}
        (staging / "config.json").write_text(json.dumps(meta, indent=2))
        arrays = {f"coord_{k}": v for k, v in result.coords.items()}
        np.savez(staging / "curves.npz", eval_steps=result.eval_steps, diverged_step=result.diverged_step,
                 **arrays, **result.curves)
        report = write_analysis(staging, result, config, name, wall_seconds=wall_seconds)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return report


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal: threshold, peak, regimes, time."""
    peak, regime = report["test_error_peak"], report["overparameterized_regime"]
    lines = [
        f"interpolation threshold ({report['x_axis']}): {report['interpolation_threshold']}",
        f"test-error peak: {peak}",
        f"under-parameterized best: {report['under_min']}   over-parameterized best: {report['over_min']}",
        f"over-parameterized regime: {regime}",
        f"double descent: {report['double_descent']}",
        f"time: {report['wall_seconds']:.1f} s (compile {report['timing']['compile_seconds']:.1f} s, "
        f"train {report['timing']['run_seconds']:.1f} s)",
    ]
    from ddjax.outputs import summary_lines

    return "\n".join(lines + summary_lines(report) + [f"note: {n}" for n in report["notes"]])
