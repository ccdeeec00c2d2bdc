"""A larger deep-MLP sweep: ddjax's whole command against a plain PyTorch loop over the same widths.

    python benchmarks/deep_mlp_sweep.py                  # 20 widths 1..300, 2 hidden layers, 20000 SGD steps
    python benchmarks/deep_mlp_sweep.py --steps 2000     # a tenth of it, to check the script

The sweep (as the MNIST-1D notebook and Nakkiran et al.'s MLPs run it): MNIST-1D, 4000 training samples with
15% label noise, 1000 test samples, an MLP of `--depth` hidden layers at 20 geometric widths 1..300, SGD at 0.05
with batch 100, train and test error at 20 log-spaced steps. ddjax runs it as one command in a subprocess,
`python -m ddjax.run mlp_mnist1d --set ...` (data generation, compile, training, analysis, output files: the
whole wall-clock time is counted); PyTorch (only where torch imports; never a ddjax dependency) trains the same
widths one after another in a plain eager loop, the way the MNIST-1D notebook does. Prints a table and writes
`<out>.json`. Run both back to back on a quiet machine: the ratio is what the figures are for.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ddjax.config import apply_overrides, geometric_widths  # noqa: E402
from ddjax.data.datasets import member_labels  # noqa: E402
from ddjax.data.registry import load_dataset  # noqa: E402
from ddjax.experiment import experiment_config  # noqa: E402
from ddjax.arguments import positive_int  # noqa: E402


def sweep_overrides(steps: int, depth: int, n_widths: int, max_width: int) -> list[str]:
    """`--set` values of the sweep, applied to the `mlp_mnist1d` experiment."""
    widths = ",".join(str(w) for w in geometric_widths(1, max_width, n_widths))
    return [f"width={widths}", f"depth={depth}", "seed=0", "n_samples=5000", "train_fraction=0.8", "n_train=4000",
            "label_noise=0.15", "optimizer=sgd", "learning_rate=0.05", "batch_size=100", f"steps={steps}",
            "n_evals=20"]


def time_ddjax(overrides: list[str], cpu_devices: int | None) -> dict:
    """Wall-clock of `python -m ddjax.run` on the sweep, and its report's timings and final test errors."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "run"
        command = [sys.executable, "-m", "ddjax.run", "mlp_mnist1d", "--out", str(out), "--no-progress"]
        command += [arg for value in overrides for arg in ("--set", value)]
        if cpu_devices:
            command += ["--cpu-devices", str(cpu_devices)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        total = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"ddjax.run failed ({done.returncode}): {done.stderr[-2000:]}")
        report = json.loads((out / "report.json").read_text())
        curves = np.load(out / "curves.npz")
        test_error = curves[[k for k in curves.files if k.endswith("test_error")][0]][:, -1]
    timing = report.get("timing", {})
    return {"total_s": total, "compile_s": timing.get("compile_seconds"), "run_s": timing.get("run_seconds"),
            "scheme": timing.get("scheme"), "n_devices": timing.get("n_devices"),
            "padding_efficiency": timing.get("padding_efficiency"), "final_test_error": test_error.tolist()}


def time_torch(overrides: list[str]) -> dict | None:
    """A plain PyTorch loop: each width built, trained and evaluated on its own, one after another."""
    try:
        import torch
        import torch_peer
    except ImportError:
        return None
    config = apply_overrides(experiment_config("mlp_mnist1d"), overrides)
    data = load_dataset(config)
    n = config.n_train[0]
    labels = member_labels(data, n, config.label_noise[0], config.seed[0], config.data_seed)[:n]
    tensors = (torch.tensor(data.x_train[:n]), torch.tensor(labels, dtype=torch.long), torch.tensor(data.x_test),
               torch.tensor(data.y_test, dtype=torch.long))
    eval_at = torch_peer.evaluation_steps(config.steps, config.n_evals)
    start, errors = time.perf_counter(), []
    for width in config.width:
        torch.manual_seed(config.seed[0])
        model = torch_peer.mlp(tensors[0].shape[1], width, config.depth, data.n_classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate[0])
        batches = torch_peer.random_batches(n, config.batch_size, config.steps)
        errors.append(torch_peer.train_alone(model, optimizer, batches, tensors, eval_at))
    return {"total_s": time.perf_counter() - start, "final_test_error": errors,
            "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=20000, help="SGD steps (default 20000)")
    parser.add_argument("--depth", type=positive_int, default=2, help="hidden layers (default 2)")
    parser.add_argument("--widths", type=positive_int, default=20, help="geometric widths 1..max (default 20)")
    parser.add_argument("--max-width", type=positive_int, default=300, help="widest member (default 300)")
    parser.add_argument("--cpu-devices", type=positive_int, help="passed to ddjax.run (default: its own)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch loop")
    parser.add_argument("--out", default="benchmarks/deep-mlp-sweep", help="path prefix of the .json output")
    args = parser.parse_args(argv)
    overrides = sweep_overrides(args.steps, args.depth, args.widths, args.max_width)
    rows = {"ddjax (whole command)": time_ddjax(overrides, args.cpu_devices)}
    torch_row = None if args.no_torch else time_torch(overrides)
    if torch_row is not None:
        rows["PyTorch loop"] = torch_row
    else:
        print("# PyTorch loop: skipped (torch is not installed, or --no-torch)")
    print(f"# {args.widths} widths 1..{args.max_width}, depth {args.depth}, {args.steps} SGD steps of batch 100")
    print("| way | total s | compile s | run s | mean final test error | PyTorch / this |")
    print("|---|---|---|---|---|---|")
    for way, row in rows.items():
        ratio = torch_row["total_s"] / row["total_s"] if torch_row else None
        row["torch_over_this"] = ratio
        compile_s, run_s = row.get("compile_s"), row.get("run_s")
        print(f"| {way} | {row['total_s']:.1f} | {'-' if compile_s is None else f'{compile_s:.1f}'} | "
              f"{'-' if run_s is None else f'{run_s:.1f}'} | {np.mean(row['final_test_error']):.3f} | "
              f"{'-' if ratio is None else f'{ratio:.1f}x'} |")
    out = pathlib.Path(args.out).with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "overrides": overrides, "rows": rows}, indent=2))
    print(f"# wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
