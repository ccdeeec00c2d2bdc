"""One epoch of a CIFAR-10 experiment's member grid on synthetic images, and what its full run would cost.

    python benchmarks/cifar_epoch.py          # resnet18_cifar10, k = 1..64, 1 seed, 50000 images: an accelerator's job
    python benchmarks/cifar_epoch.py --experiment cnn5_cifar10:adam --widths 1 --n-train 128 --n-test 32   # a CPU check

Trains the experiment's sweep (default `resnet18_cifar10`: preactivation ResNet18s of width k, Adam 1e-4, batch 128,
15% label noise, random crop and flip, epochs of fresh permutations) for ONE epoch, as `python -m ddjax.run` would
(the same layout, width groups and memory planning), and times its compile apart from its run. No download: the
images are synthetic (uint8 32x32x3, 10 classes, a random template per class plus noise; 50000 training and 10000
test images unless --n-train/--n-test ask for fewer), put into a private data cache (`DDJAX_DATA`, a temporary
folder) through the importer of a Keras-layout .npz (`ddjax.data.importer.import_dataset`), so `dataset="cifar10"`
reads them and no cache of real data is touched. Fewer images than CIFAR-10's make the table entry of `cifar10`
that size in this process (as the tests do), to check the script on a CPU in seconds. The timing does not depend on
the pixels; the errors it reports mean nothing.

The projection, for the widths and seeds measured: the experiment's full run (its steps, evaluations and seeds)
from the measured epoch. For `resnet18_cifar10` at k = 1..64 that is Nakkiran et al. (2019, arXiv:1912.02292)
Fig. 1: "ResNet18s of varying width on CIFAR-10 with 15% label noise ... All models trained using Adam for 4K
epochs. The largest model (width 64) corresponds to standard ResNet18" (the caption); Adam at 1e-4 and batch 128
as in `experiments/resnet18_cifar10.py`. The measured run holds 3 evaluations (steps 0, 1 and the last; each of
every training and test image). Training and evaluation are told apart by the time of the run's middle chunks
(training steps only) where the grid is one program, else by counted multiply-accumulates
(`ddjax.models.registry.forward_macs`: a training example costs 3 forward passes, an evaluated one 1), an
estimate: on the 2-core CPU (under load) it put a ResNet18 step at 2.1x and 3.5x its measured time in two
runs. Writes one JSON of the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ddjax.arguments import positive_int  # noqa: E402
from ddjax.config import Config, ConfigError, replace  # noqa: E402
from ddjax.data import image_sets  # noqa: E402
from ddjax.experiment import load_experiment  # noqa: E402
from ddjax.models.registry import forward_macs  # noqa: E402
from ddjax.training.spec import log_spaced_steps  # noqa: E402

CIFAR10 = image_sets.IMAGE_SETS["cifar10"]  # The real set's sizes, kept before any smaller entry replaces it.
FIGURES = {"resnet18_cifar10": "Nakkiran et al. (2019), Deep Double Descent, arXiv:1912.02292, Fig. 1 (caption: "
                               "ResNet18s of varying width on CIFAR-10 with 15% label noise, all trained using Adam "
                               "for 4K epochs; width 64 is the standard ResNet18)"}
SECONDS_PER_DAY = 86400.0


def synthetic_cifar10(path: pathlib.Path, n_train: int, n_test: int, seed: int = 0) -> pathlib.Path:
    """Writes a Keras-layout .npz of CIFAR-10's image shape: uint8 images of a random template per class plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (CIFAR10.n_classes, *CIFAR10.image_shape)).astype(np.int16)

    def split(n):
        labels = np.arange(n) % CIFAR10.n_classes
        rng.shuffle(labels)
        noise = rng.integers(-48, 49, (n, *CIFAR10.image_shape), dtype=np.int16)
        return np.clip(templates[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.uint8)[:, None]

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def load_full_config(experiment: str) -> Config:
    """The config of `experiment` ("name" or "name:variant"), as `python -m ddjax.run` would run it."""
    name, _, variant = experiment.partition(":")
    return load_experiment(name).get_config(variant or "default")


def epoch_config(full: Config, widths: tuple[int, ...], n_seeds: int, n_train: int) -> Config:
    """`full` at `widths` x `n_seeds` seeds on `n_train` images, cut to one epoch (3 evaluations, 4 chunks)."""
    return replace(full, width=widths, seed=tuple(range(n_seeds)), n_train=(n_train,), epochs=1,
                   n_evals=1, n_chunks=4)


def counted_flop(config: Config, n_test: int) -> tuple[float, float]:
    """FLOPs of `config`'s training steps and of ONE evaluation (its training rows and `n_test`), unpadded."""
    shape = CIFAR10.image_shape
    macs = sum(forward_macs(config.model, w, int(np.prod(shape)), CIFAR10.n_classes, input_shape=shape)
               for w in config.width) * len(config.seed)
    return 2.0 * macs * 3 * config.batch_size * config.steps, 2.0 * macs * (config.n_train[0] + n_test)


def project(measured: dict, config: Config, full: Config, n_test: int, experiment: str) -> dict:
    """The cost of `full` (its steps, evaluations and seeds) for the measured widths, from `config`'s one epoch."""
    train_flop, eval_flop = counted_flop(config, n_test)
    n_evals = len(log_spaced_steps(config.steps, config.n_evals))
    if measured.get("step_s_between_chunks"):  # Measured: chunks that hold training steps only.
        step_s = measured["step_s_between_chunks"]
        share = min(step_s * config.steps / measured["run_s"], 1.0)
        split = "measured: the chunks between the first and the last (training steps only)"
    else:  # Training alone: the evaluations' counted share taken out.
        share = train_flop / (train_flop + n_evals * eval_flop)
        step_s = measured["run_s"] * share / config.steps
        split = "estimated: counted multiply-accumulates (a training example 3 forward passes, an evaluated one 1)"
    eval_s = measured["run_s"] * (1 - share) / n_evals
    full_rows = full.n_train[0] + CIFAR10.n_test
    full_eval_s = eval_s * full_rows / (config.n_train[0] + n_test)  # Evaluations scale with the rows evaluated.
    full_evals = len(log_spaced_steps(full.steps, full.n_evals))
    members_s = full.steps * step_s + full_evals * full_eval_s
    seeds = len(full.seed) / len(config.seed)
    epoch_steps = math.ceil(full.n_train[0] / full.batch_size)
    covers = (tuple(config.width) == tuple(full.width) and config.n_train == full.n_train
              and n_test == CIFAR10.n_test)
    return {
        "figure": FIGURES.get(experiment, f"the full run of {experiment}"),
        "covers_the_full_grid": covers,
        "full_steps": full.steps, "full_epochs": full.steps / epoch_steps, "full_evaluations": full_evals,
        "full_seeds": len(full.seed), "widths_measured": list(config.width), "seeds_measured": len(config.seed),
        "training_share_of_measured_run": share, "training_share_from": split,
        "step_s": step_s, "epoch_s": step_s * epoch_steps, "evaluation_s": full_eval_s,
        "training_tflops": (train_flop / measured["padding_efficiency"] / (step_s * config.steps) / 1e12
                            if measured["padding_efficiency"] else None),
        "projected_days": (measured["compile_s"] + members_s) / SECONDS_PER_DAY,
        "projected_days_all_seeds": (measured["compile_s"] + seeds * members_s) / SECONDS_PER_DAY,
        "projected_upper_days": (measured["compile_s"] + full.steps / config.steps * measured["run_s"])
        / SECONDS_PER_DAY,
        "how": "compile + full steps x the measured step (the run's training share) + full evaluations x "
               "the measured evaluation (scaled to the full set's rows); all seeds: the members' time x full/measured "
               "seeds (linear in members: assumed); upper: full steps x the measured run's time per step, its 3 "
               "evaluations included, for the measured seeds",
    }


class _Deadline(Exception):
    """Raised from the per-program callback to stop the sweep once --deadline has passed."""


def fraction_done(done: int, state, config: Config) -> float | None:
    """How much of the epoch's member-steps is done after `on_chunk(done, state)`: consecutive programs pass every
    member's curves (NaN until trained), one program its loop step; None if those curves cannot be read."""
    try:
        if isinstance(state, dict) and "curves" in state:
            return float(np.mean(~np.isnan(np.asarray(state["curves"]["test_error"])[:, -1])))
        return min(done, config.steps + 1) / (config.steps + 1)
    except (KeyError, TypeError, ValueError):
        return None


def extrapolate(marks: list[dict]) -> tuple[float, float] | None:
    """(seconds of the whole epoch's run, seconds before it: data placement and compile) from the marks of a run
    stopped early: the run's rate between the first and the last mark; None without two marks that differ."""
    usable = [m for m in marks if m["fraction"] is not None]
    if len(usable) < 2 or usable[-1]["fraction"] <= usable[0]["fraction"]:
        return None
    first, last = usable[0], usable[-1]
    run_s = (last["seconds"] - first["seconds"]) / (last["fraction"] - first["fraction"])
    return run_s, first["seconds"] - first["fraction"] * run_s


def step_between_chunks(marks: list[dict], steps: int) -> float | None:
    """Seconds of one training step from the chunks of ONE program between its first and its last: evaluations
    run at loop steps 0, 1 and `steps`, so those chunks hold training steps only; None with fewer than 3 chunks."""
    if len(marks) < 3 or marks[0]["done"] < 2 or marks[-2]["done"] > steps:
        return None
    return (marks[-2]["seconds"] - marks[0]["seconds"]) / (marks[-2]["done"] - marks[0]["done"])


def measure_epoch(config: Config, deadline: float | None = None) -> dict:
    """Runs the one-epoch sweep and returns its timings; prints a line as each program (or chunk) ends.

    With `deadline` (seconds), the sweep stops at the first program (or chunk) boundary past it (the second
    boundary at the earliest), and the epoch's run and compile are extrapolated from the marks (`complete: False`)."""
    from ddjax.sweep import run_sweep
    import jax

    start = time.perf_counter()
    marks = []

    def on_chunk(done, state):
        jax.block_until_ready(state)
        marks.append({"done": done, "seconds": time.perf_counter() - start,
                      "fraction": fraction_done(done, state, config)})
        fraction = marks[-1]["fraction"]
        print(f"# {done} done at {marks[-1]['seconds']:.1f} s"
              + ("" if fraction is None else f": {fraction:.3f} of the epoch"), flush=True)
        # Two marks at least, so that the run's rate can be read off them.
        if deadline is not None and marks[-1]["seconds"] > deadline and len(marks) >= 2 and (fraction or 0) < 1:
            raise _Deadline

    try:
        result = run_sweep(config, on_chunk=on_chunk)
    except _Deadline:
        estimate = extrapolate(marks)
        print(f"# stopped at the deadline of {deadline:.0f} s" + ("" if estimate is None else
              f": the epoch's run extrapolated to {estimate[0]:.1f} s, compile about {estimate[1]:.1f} s"), flush=True)
        return {"complete": False, "compile_s": None if estimate is None else estimate[1],
                "run_s": None if estimate is None else estimate[0], "total_s": time.perf_counter() - start,
                "padding_efficiency": None, "marks": marks,
                "how": "stopped at --deadline: run = seconds between the first and last marks / the epoch's fraction "
                       "done between them; compile = seconds to the first mark less its fraction of that run"}
    return {"complete": True, "compile_s": result.compile_seconds, "run_s": result.run_seconds,
            "total_s": time.perf_counter() - start, "scheme": result.scheme, "group_widths": list(result.group_widths),
            "padding_efficiency": result.padding_efficiency, "n_programs": result.n_programs,
            "n_compiles": result.n_compiles, "n_devices": result.n_devices, "marks": marks,
            "step_s_between_chunks": step_between_chunks(marks, config.steps) if result.n_programs == 1 else None,
            "final_test_error": float(np.nanmean(result.final("test_error")))}


def parse_widths(text: str) -> tuple[int, ...]:
    """"1-64" or "1,2,4": the widths k."""
    if "-" in text:
        low, high = (positive_int(part) for part in text.split("-", 1))
        return tuple(range(low, high + 1))
    return tuple(positive_int(part) for part in text.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="resnet18_cifar10", help="a CIFAR-10 experiment, name[:variant] "
                        "(default resnet18_cifar10)")
    parser.add_argument("--widths", help="widths k: a range 1-64 or a comma list (default: the experiment's)")
    parser.add_argument("--seeds", type=positive_int, default=1, help="seeds per width (default 1)")
    parser.add_argument("--n-train", type=positive_int, default=CIFAR10.n_train,
                        help=f"training images (default {CIFAR10.n_train}: an epoch of 391 steps of 128)")
    parser.add_argument("--n-test", type=positive_int, default=CIFAR10.n_test,
                        help=f"test images (default {CIFAR10.n_test})")
    parser.add_argument("--deadline", type=positive_int, help="seconds after which the sweep stops at the next "
                        "program (or chunk) boundary and the epoch is extrapolated from what ran (default: none)")
    parser.add_argument("--out", default="benchmarks/cifar-epoch.json", help="the JSON written")
    args = parser.parse_args(argv)
    try:
        full = load_full_config(args.experiment)
        widths = parse_widths(args.widths) if args.widths else tuple(full.width)
    except (ConfigError, argparse.ArgumentTypeError) as error:
        parser.exit(2, f"error: {error}\n")
    if full.dataset != "cifar10":
        parser.exit(2, f"error: --experiment {args.experiment!r} is not allowed: it trains on {full.dataset}; "
                       f"allowed: an experiment on cifar10\n")
    if args.n_train > CIFAR10.n_train or args.n_test > CIFAR10.n_test:
        parser.exit(2, f"error: --n-train {args.n_train} / --n-test {args.n_test} is not allowed: at most "
                       f"{CIFAR10.n_train} / {CIFAR10.n_test}\n")

    with tempfile.TemporaryDirectory(prefix="ddjax-synthetic-cifar10-") as cache:
        os.environ["DDJAX_DATA"] = cache  # Before any data is read: this process sees the synthetic copy only.
        from ddjax.data.importer import import_dataset

        if (args.n_train, args.n_test) != (CIFAR10.n_train, CIFAR10.n_test):  # Fewer images: a smaller entry.
            image_sets.IMAGE_SETS["cifar10"] = dataclasses.replace(CIFAR10, n_train=args.n_train, n_test=args.n_test)
        started = time.perf_counter()
        import_dataset("cifar10", [synthetic_cifar10(pathlib.Path(cache) / "synthetic-cifar10.npz", args.n_train,
                                                     args.n_test)])
        data_s = time.perf_counter() - started
        try:  # A grid the device cannot hold (memory planning) is refused in one line.
            config = epoch_config(full, widths, args.seeds, args.n_train)
            print(f"# {args.experiment}: {len(widths)} widths {min(widths)}..{max(widths)} x {args.seeds} seed(s), "
                  f"{args.n_train} + {args.n_test} images, {config.steps} steps of {config.batch_size}; synthetic "
                  f"data made in {data_s:.1f} s", flush=True)
            measured = measure_epoch(config, args.deadline)
        except ConfigError as error:
            parser.exit(2, f"error: {error}\n")

    import jax

    device = jax.devices()[0]
    # A run stopped at --deadline is projected from its extrapolated epoch, if its marks allowed one.
    projection = None if measured["run_s"] is None else project(measured, config, full, args.n_test, args.experiment)
    payload = {"device": getattr(device, "device_kind", str(device)), "backend": jax.default_backend(),
               "jax_version": jax.__version__,
               "data": f"synthetic, CIFAR-10's image shape: uint8 {args.n_train} + {args.n_test} x 32x32x3, 10 classes",
               "synthetic_data_s": data_s,
               "config": {"experiment": args.experiment, "model": config.model, "widths": list(widths),
                          "seeds": args.seeds, "n_train": args.n_train, "n_test": args.n_test, "steps": config.steps,
                          "batch_size": config.batch_size, "augment": config.augment, "optimizer": config.optimizer},
               "measured": measured, "projection": projection}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    if projection is not None:
        p = projection
        print(f"# compile {measured['compile_s']:.1f} s, epoch run {measured['run_s']:.1f} s"
              f"{'' if measured['complete'] else ' (extrapolated)'}; training share "
              f"{p['training_share_of_measured_run']:.2f}")
        print(f"# full run ({p['full_epochs']:.0f} epochs, {p['full_evaluations']} evaluations) projected for the "
              f"measured widths: {p['projected_days']:.3g} days for {args.seeds} seed(s), "
              f"{p['projected_days_all_seeds']:.3g} days for {p['full_seeds']} (upper {p['projected_upper_days']:.3g} "
              f"days){'' if p['covers_the_full_grid'] else '; NOT the full grid'}")
    print(f"# wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
