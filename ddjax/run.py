"""Command line: `python -m ddjax.run [EXPERIMENT[:VARIANT]] [--set KEY=VALUE ...] [--out DIR] [--mode M]`.

`python -m ddjax.run --resume DIR` continues an unfinished run from its last checkpoint (`--registered-in FILE`
names the file that registers a user's family or data set; nothing in a run folder is run otherwise);
`python -m ddjax.run --report DIR` re-analyses and re-plots the finished run in DIR without training, from its
config.json and curves.npz alone.
On a CPU the command splits JAX's host into one device per core (`--cpu-devices`), so the members of a sweep
train on all cores side by side (`ddjax.training.sharding`). With `--distributed` (or the environment of a
multi-host job, see `ddjax.training.hosts.detect_cluster`) the same command on every host trains one sweep over
all their devices; process 0 writes the run folder.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import sys

import jax

from ddjax.arguments import positive_int
from ddjax.config import MODES, ConfigError, apply_overrides, config_from_dict
from ddjax.experiment import (DEFAULT_EXPERIMENT, available_experiments, experiment_config, resume_experiment,
                              run_experiment, run_registering_files, summary)
from ddjax.runs import folder as run_folder
from ddjax.runs.files import OUTPUT_FILES, REPORT_FILE
from ddjax.runs.registered import check_registrations, resume_command
from ddjax.training import hosts
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
    parser.add_argument("--registered-in", action="append", default=[], metavar="FILE",
                        help="with --resume: run FILE to register the run's own family or data set (the file its "
                             "config.json names); refused unless its sha256 is the one recorded there")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--report", metavar="DIR", help="re-analyse and re-plot the finished run in DIR (no training)")
    parser.add_argument("--cpu-devices", type=positive_int, metavar="N",
                        help=f"JAX CPU devices to split the members over (default: one per core, {os.cpu_count()} "
                             "here; 1 turns splitting off; no effect on GPU or TPU runs)")
    parser.add_argument("--distributed", action="store_true",
                        help="join a multi-host job (jax.distributed.initialize) and split the members over every "
                             "host's devices; run the same command on every host. Also on when JAX_COORDINATOR_ADDRESS "
                             "is set, or TPU_WORKER_HOSTNAMES names several hosts")
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="the multi-host job's coordinator, process 0's address (default: JAX_COORDINATOR_ADDRESS, "
                             "or JAX's detection on Cloud TPU, Slurm, Open MPI); implies --distributed")
    parser.add_argument("--num-processes", type=positive_int, metavar="N",
                        help="processes in the job (default: JAX_NUM_PROCESSES or detected); implies --distributed")
    parser.add_argument("--process-id", type=_process_id, metavar="I",
                        help="this process's index, 0 .. N-1 (default: JAX_PROCESS_ID or detected); implies "
                             "--distributed")
    return parser.parse_args(argv)


def _process_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; allowed: a whole number >= 0")
    return int(text)


def _join_cluster(args: argparse.Namespace) -> None:
    """Joins the multi-host job the arguments or the environment describe, if any (ConfigError if it cannot)."""
    asked = args.distributed or any(v is not None for v in (args.coordinator, args.num_processes, args.process_id))
    cluster = hosts.detect_cluster(asked, coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
    if cluster is not None:
        hosts.initialize(cluster)


def _overrides(args: argparse.Namespace) -> list[str]:
    """The `--set` overrides, with `--mode` as one more."""
    return args.overrides + ([f"mode={args.mode}"] if args.mode else [])


def _resume(args: argparse.Namespace, name: str, variant: str) -> dict:
    """Resumes run folder `args.resume`: runs the files the arguments name (`--registered-in`, the experiment),
    checks that they register the run's own names as recorded, and compares a config they give with the run's."""
    folder = args.resume
    if args.out or args.force:
        raise ConfigError(f"--resume {folder!r} continues that folder in place; it takes no "
                          f"{'--out' if args.out else '--force'}")
    meta = hosts.from_main(lambda: run_folder.unfinished_run(folder))  # Process 0's folder.
    run_registering_files(meta, args.registered_in, folder)
    overrides = _overrides(args)
    given = experiment_config(name, variant or "default") if args.experiment is not None else None
    check_registrations(meta, folder)
    if given is None and overrides:
        given = config_from_dict(meta["config"])
    config = None if given is None else apply_overrides(given, overrides)
    return resume_experiment(folder, config, progress=not args.no_progress)


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """The command; `own_process=True` (`python -m ddjax.run`, `ddjax-run`) also applies --cpu-devices."""
    args = parse_args(argv)
    if own_process:
        split_cpu(args.cpu_devices or os.cpu_count() or 1)
    try:
        _join_cluster(args)  # Before anything touches a device.
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.registered_in and not args.resume:
        print("error: --registered-in names the file that registers a resumed run's family or data set; it "
              "applies only with --resume", file=sys.stderr)
        return 2
    if args.report:
        return _reanalyze(args.report)
    name, _, variant = (args.experiment or DEFAULT_EXPERIMENT).partition(":")
    out = args.resume or args.out
    try:
        if args.resume:
            report = _resume(args, name, variant)
        else:
            config = apply_overrides(experiment_config(name, variant or "default"), _overrides(args))
            stem = pathlib.Path(name).stem + (f"-{variant}" if variant else "")
            out = out or f"runs/{stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
            report = run_experiment(config, out, name=stem, force=args.force, progress=not args.no_progress)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = out is not None and run_folder.status(out) == "unfinished"
        print("interrupted" + (f"; continue with: {resume_command(run_folder.read_meta(out), str(out))}"
                               if resumable else ""), file=sys.stderr)
        return 130
    if not hosts.is_main():
        print(f"process {jax.process_index()} of {jax.process_count()}: done; process 0 wrote the run folder")
        return 0
    print(summary(report))
    print(f"wrote {out}/: {' '.join(OUTPUT_FILES)}")
    return 0


def _reanalyze(out: str) -> int:
    from ddjax.runs.outputs import reanalyze

    try:
        report = reanalyze(out)  # Reads config.json and curves.npz; runs nothing.
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
