"""Command line: `python -m ddjax.run [EXPERIMENT[:VARIANT]] [--set KEY=VALUE ...] [--out DIR] [--mode M]`.

`python -m ddjax.run --resume DIR` continues an unfinished run from its last checkpoint;
`python -m ddjax.run --report DIR` re-analyses and re-plots the finished run in DIR without training.
On a CPU the command splits JAX's host into one device per core (`--cpu-devices`), so the members of a sweep
train on all cores side by side (`ddjax.training.sharding`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import sys

from ddjax.arguments import positive_int
from ddjax.config import MODES, ConfigError, apply_overrides, config_from_dict
from ddjax.experiment import (DEFAULT_EXPERIMENT, available_experiments, experiment_config, resume_experiment,
                              run_experiment, summary)
from ddjax.runs import folder as run_folder
from ddjax.runs.files import OUTPUT_FILES, REPORT_FILE
from ddjax.training.sharding import split_cpu


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # One line and exit code 2, like every other bad input.
        self.exit(2, f"error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m ddjax.run", description="Train a double-descent sweep and analyse it.")
    parser.add_argument("experiment", nargs="?", default=None,
                        help=f"module in experiments/ or a path to one, optionally NAME:VARIANT (default "
                             f"{DEFAULT_EXPERIMENT}; available: {', '.join(available_experiments())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set width=1,2,4 --set steps=500")
    parser.add_argument("--out", help="output folder (default runs/<experiment>-<timestamp>)")
    parser.add_argument("--mode", choices=MODES, help="vmap (one program) or serial (one member at a time)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument("--resume", metavar="DIR", help="continue the unfinished run in DIR from its last checkpoint "
                                                        "(an experiment or --set, if given, must match its config)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--report", metavar="DIR", help="re-analyse and re-plot the finished run in DIR (no training)")
    parser.add_argument("--cpu-devices", type=positive_int, metavar="N",
                        help=f"JAX CPU devices to split the members over (default: one per core, {os.cpu_count()} "
                             "here; 1 turns splitting off; no effect on GPU or TPU runs)")
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, name: str, variant: str):
    """The config the arguments ask for; with --resume and neither experiment nor overrides, None (the run's)."""
    overrides = args.overrides + ([f"mode={args.mode}"] if args.mode else [])
    if args.resume and args.experiment is None:
        if not overrides:
            return None
        return apply_overrides(config_from_dict(run_folder.unfinished_run(args.resume)["config"]), overrides)
    return apply_overrides(experiment_config(name, variant or "default"), overrides)


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """The command; `own_process=True` (`python -m ddjax.run`, `ddjax-run`) also applies --cpu-devices."""
    args = parse_args(argv)
    if own_process:
        split_cpu(args.cpu_devices or os.cpu_count() or 1)
    if args.report:
        return _reanalyze(args.report)
    name, _, variant = (args.experiment or DEFAULT_EXPERIMENT).partition(":")
    out = args.resume or args.out
    try:
        if args.resume and (args.out or args.force):
            raise ConfigError(f"--resume {args.resume!r} continues that folder in place; it takes no "
                              f"{'--out' if args.out else '--force'}")
        config = _config(args, name, variant)
        if args.resume:
            report = resume_experiment(args.resume, config, progress=not args.no_progress)
        else:
            stem = pathlib.Path(name).stem + (f"-{variant}" if variant else "")
            out = out or f"runs/{stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
            report = run_experiment(config, out, name=stem, force=args.force, progress=not args.no_progress)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = out is not None and run_folder.status(out) == "unfinished"
        print("interrupted" + (f"; continue with: python -m ddjax.run --resume {out}" if resumable else ""),
              file=sys.stderr)
        return 130
    print(summary(report))
    print(f"wrote {out}/: {' '.join(OUTPUT_FILES)}")
    return 0


def _reanalyze(out: str) -> int:
    from ddjax.runs.outputs import reanalyze

    try:
        report = reanalyze(out)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(report))
    print(f"rewrote {out}/: {REPORT_FILE} and figures")
    return 0


def cli() -> int:
    """The `ddjax-run` console script."""
    return main(own_process=True)


if __name__ == "__main__":
    sys.exit(cli())
