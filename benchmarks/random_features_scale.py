"""Belkin et al.'s (2019) Fig. 2 at full size through the staged solver (`ddjax.solvers.feature_blocks`).

    DDJAX_DATA=/work/data/ddjax python benchmarks/random_features_scale.py                  # min-norm, n = 10^4
    DDJAX_DATA=/work/data/ddjax python benchmarks/random_features_scale.py --variant ridge  # 6 strengths
    python benchmarks/random_features_scale.py --variant small --checkpoint-dir /tmp/rf     # resumable

Reads `experiments/random_features_mnist.py`'s config (default: n = 10^4 MNIST training images, 16 widths N from
1000 to 60000, one seed; `ridge`: 6 strengths, n_train 12500 of which the last 20% validate), standardizes the
images as the closed-form sweep does, and solves every width in stages, one per N, ascending. With
`--checkpoint-dir` it saves the state after every stage (`ddjax.runs.checkpoint.save_checkpoint`: the carry and
the curves so far) and resumes from it, so a run killed at any point (kill -9 included) continues to the same
curves. Prints a table per stage and writes JSON: seconds per stage (cosine features, products, solves, checkpoint),
total, peak RSS, the memory plan, the curves per N, and the two checks of the figure: the test error peaks at
N = n, and at the largest N it is below the under-parameterized minimum.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ddjax.data.augment import standardize_on_host  # noqa: E402
from ddjax.data.datasets import member_labels  # noqa: E402
from ddjax.data.registry import load_dataset  # noqa: E402
from ddjax.experiment import experiment_config  # noqa: E402
from ddjax.runs.checkpoint import discard_partial_write, load_checkpoint, save_checkpoint  # noqa: E402
from ddjax.solvers.feature_blocks import (carry_template, initial_carry, make_problem, plan_stages,  # noqa: E402
                                          restore_carry, run_stage)
from ddjax.solvers.feature_memory import plan_block  # noqa: E402
from ddjax.training.members import train_spec  # noqa: E402


STAGE_PARTS = ("cosine_seconds", "product_seconds", "solve_seconds", "checkpoint_seconds")


def build_problem(variant: str, draw: str, seed: int):
    config = experiment_config("random_features_mnist", variant)
    dataset = load_dataset(config)
    image = train_spec(config, dataset).image
    n_train = max(config.n_train)
    x_train = standardize_on_host(np.asarray(dataset.x_train[:n_train]), image)
    x_test = standardize_on_host(np.asarray(dataset.x_test), image)
    labels = member_labels(dataset, n_train, config.label_noise[0], seed, config.data_seed)
    problem = make_problem(x_train, labels, x_test, np.asarray(dataset.y_test), n_train=n_train,
                           validation_fraction=config.validation_fraction, n_classes=dataset.n_classes, seed=seed,
                           strengths=config.ridge, draw=draw)
    return config, problem


def state_template(stages, index, problem, names):
    """The checkpointed state before stage `index`: the carry and the curves [stage, strength] so far."""
    curves = {k: jax.ShapeDtypeStruct((index, len(problem.strengths)), np.float64) for k in names}
    return {"carry": carry_template(stages, index, problem), "curves": curves}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="default")
    parser.add_argument("--draw", default="common", choices=("common", "independent"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block", type=int, default=0, help="features per block (0: the memory plan's)")
    parser.add_argument("--checkpoint-dir", default="")
    parser.add_argument("--stop-after", type=int, default=0, help="exit after this many stages (a test of resume)")
    parser.add_argument("--compare-eigh", default="", help="widths (comma-separated) solved a second time with "
                        "one eigendecomposition (the reference) from a copy of the carry; differences go to the JSON")
    parser.add_argument("--out", default="random-features-scale.json")
    args = parser.parse_args()

    t_start = time.perf_counter()
    config, problem = build_problem(args.variant, args.draw, args.seed)
    n_fit, n_eval = len(problem.x_fit), len(problem.x_eval)
    stages = plan_stages(config.width, n_fit, draw=args.draw)
    plan = plan_block(stages, n_fit=n_fit, n_eval=n_eval, input_dim=problem.x_fit.shape[1],
                      n_classes=problem.n_classes, checkpoint=bool(args.checkpoint_dir))
    block = args.block or plan.block
    print(f"n_fit {n_fit}, evaluated rows {n_eval} ({problem.n_val} validation), {len(stages)} stages, "
          f"strengths {problem.strengths}, draw {args.draw}; block {block}, planned peak "
          f"{plan.peak_bytes / 2**30:.2f} GiB (N = {plan.largest_stage}) of a {plan.budget_bytes / 2**30:.1f} GiB "
          f"budget; data ready in {time.perf_counter() - t_start:.1f} s", flush=True)

    names = ["train_error", "train_loss", "test_error", "test_loss", "weight_norm"]
    names += ["val_error", "val_loss"] if problem.validation else []
    comparisons = []
    first, carry, timings = 0, initial_carry(problem), []
    done = {k: np.zeros((0, len(problem.strengths))) for k in names}
    if args.checkpoint_dir:
        pathlib.Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        discard_partial_write(args.checkpoint_dir)
        checkpoint = load_checkpoint(args.checkpoint_dir)
        if checkpoint is not None:
            first = checkpoint.step
            state = restore_carry(checkpoint, state_template(stages, first, problem, names))
            carry, done = state["carry"], state["curves"]
            timings = checkpoint.config.get("timings", [])
            print(f"resumed before stage {first} (N = {stages[first].width if first < len(stages) else '-'})")
            del checkpoint, state
    print(f"{'N':>6} {'side':>8} {'cos s':>6} {'prod s':>7} {'solve s':>8} {'ckpt s':>7} {'cpu s':>7} "
          f"{'test err':>9} {'test loss':>10} {'train err':>9} {'|W|':>9} {'method':>9} {'rcond':>8}", flush=True)
    compare = {int(w) for w in args.compare_eigh.split(",") if w}
    for stage in stages[first:]:
        copy = {k: v.copy() for k, v in carry.items()} if stage.width in compare else None
        cpu0 = time.process_time()
        carry, curves, report = run_stage(carry, stage, problem, block=block)
        cpu = time.process_time() - cpu0
        if copy is not None:
            copy, reference, eigh_report = run_stage(copy, stage, problem, block=block, factorization="eigh")
            del copy
            differences = {k: float(np.max(np.abs(curves[k] - reference[k]) / np.abs(reference[k]).clip(1e-300)))
                           for k in names}
            comparisons.append({"width": stage.width, "cholesky": {k: v.tolist() for k, v in curves.items()},
                                "eigh": {k: v.tolist() for k, v in reference.items()},
                                "max_relative_difference": differences, "eigh_solve_seconds":
                                eigh_report["solve_seconds"], "cholesky_solve_seconds": report["solve_seconds"]})
            print(f"N = {stage.width}: eigh solve {eigh_report['solve_seconds']:.1f} s against "
                  f"{report['solve_seconds']:.1f} s; largest relative difference of the curves "
                  f"{max(differences.values()):.1e} ({max(differences, key=differences.get)})", flush=True)
        done = {k: np.concatenate([done[k], curves[k][None]]) for k in names}
        t0 = time.perf_counter()
        timing = {"width": stage.width, "side": stage.side, "cpu_seconds": cpu,
                  **{k: report[k] for k in ("cosine_seconds", "product_seconds", "solve_seconds", "methods",
                                            "rconds")}}
        if args.checkpoint_dir:
            save_checkpoint(args.checkpoint_dir, stage.index + 1, {"carry": carry, "curves": done},
                            config={"variant": args.variant, "draw": args.draw, "seed": args.seed,
                                    "timings": timings + [timing]})
        timing["checkpoint_seconds"] = time.perf_counter() - t0
        timings.append(timing)
        print(f"{stage.width:>6} {stage.side:>8} {report['cosine_seconds']:6.1f} {report['product_seconds']:7.1f} "
              f"{report['solve_seconds']:8.1f} {timing['checkpoint_seconds']:7.1f} {cpu:7.1f} "
              f"{curves['test_error'][0]:9.4f} {curves['test_loss'][0]:10.4f} {curves['train_error'][0]:9.4f} "
              f"{curves['weight_norm'][0]:9.1f} {report['methods'][0]:>9} {report['rconds'][0]:8.1e}", flush=True)
        if args.stop_after and stage.index + 1 - first >= args.stop_after:
            print(f"stopped after {args.stop_after} stages")
            if comparisons:
                pathlib.Path(args.out).write_text(json.dumps({"eigh_comparisons": comparisons}, indent=1) + "\n")
            return
    widths = np.array([s.width for s in stages])
    test = done["test_error"][:, 0]
    under = widths + 1 <= n_fit
    result = {
        "variant": args.variant, "draw": args.draw, "seed": args.seed, "n_fit": n_fit, "n_eval": n_eval,
        "strengths": list(problem.strengths), "widths": widths.tolist(), "block": block,
        "memory_plan": plan._asdict(), "total_seconds": time.perf_counter() - t_start,
        "stage_seconds": sum(t[k] for t in timings for k in STAGE_PARTS if k in t),
        "stage_cpu_seconds": sum(t.get("cpu_seconds", 0.0) for t in timings),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "resumed_before_stage": first,
        "stages": timings, "eigh_comparisons": comparisons, "curves": {k: v.tolist() for k, v in done.items()},
        "peak_width": int(widths[np.argmax(test)]),
        "largest_below_underparameterized_minimum": bool(under.any() and test[-1] < test[under].min()),
        "machine": {"processor": _cpu_name(), "cores": os.cpu_count(), "load_average_at_end": os.getloadavg()},
    }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"total {result['total_seconds']:.0f} s, peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB (this "
          f"process), min-norm test error peaks at N = {result['peak_width']}, at N = {widths[-1]} below the "
          f"under-parameterized minimum: {result['largest_below_underparameterized_minimum']}; wrote {args.out}")


def _cpu_name() -> str:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
