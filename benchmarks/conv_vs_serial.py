"""Convolutional members: the `cnn1d` channel sweep on MNIST-1D trained by ddjax vmap, ddjax serial and PyTorch.

    python benchmarks/conv_vs_serial.py                       # the notebook's 29 widths 2..100, 300 steps, 1 repeat
    python benchmarks/conv_vs_serial.py --steps 20000         # the whole notebook sweep (500 epochs)
    python benchmarks/conv_vs_serial.py --quick               # seconds: 6 widths, 40 steps

Ways: ddjax vmap (the default: the mapped layout, all members in one program, width groups each padded to its own
widest member, evaluations one member at a time on XLA's convolution), ddjax grouped (the same with vmapped
patch-matmul evaluations, the default before), ddjax serial
(one member at a time, one compile per width) and PyTorch eager serial (the same CNN, SGD with momentum, batch
100, epoch permutations, evaluation on train and test at the same steps; only where torch imports). Prints a
table and writes a JSON of every figure plus machine info, and a PNG of the totals, following
`vmap_vs_serial.py`. Medians over repeats taken round-robin over the ways; every repeat compiles afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ddjax.arguments import positive_int  # noqa: E402
from ddjax.config import Config, replace  # noqa: E402
from ddjax.data.registry import load_dataset  # noqa: E402
from ddjax.experiment import load_experiment  # noqa: E402
from ddjax.models.registry import forward_macs  # noqa: E402
from ddjax.sweep import run_sweep  # noqa: E402
from ddjax.training.sharding import split_cpu  # noqa: E402

WAYS = ("ddjax vmap", "ddjax grouped", "ddjax serial", "torch serial")


def sweep_config(widths: tuple[int, ...], steps: int) -> Config:
    """The `cnn_mnist1d` experiment's sweep at `widths`, cut to `steps` steps."""
    config = load_experiment("cnn_mnist1d").get_config()
    return replace(config, width=widths, epochs=0, steps=steps, n_evals=10, n_chunks=2)


def useful_gflop(config: Config, n_test: int) -> float:
    """FLOPs the members need: 3 forward-sized passes per training example, 1 per evaluated example."""
    macs = sum(forward_macs("cnn1d", w, 40, 10) for w in config.width) * len(config.seed)
    n_evals = len(np.unique(np.round(np.geomspace(1, config.steps, config.n_evals)))) + 1
    return 2 * macs * (3 * config.steps * config.batch_size + n_evals * (config.n_train[0] + n_test)) / 1e9


def time_ddjax(config: Config, mode: str, scheme: str = "auto") -> dict:
    start = time.perf_counter()
    result = run_sweep(config, mode=mode, scheme=scheme)
    return {"compile_s": result.compile_seconds, "run_s": result.run_seconds, "total_s": time.perf_counter() - start,
            "efficiency": result.padding_efficiency, "n_compiles": result.n_compiles, "n_devices": result.n_devices,
            "groups": list(result.group_widths) if mode == "vmap" else None, "scheme": result.scheme,
            "test_error": float(np.nanmean(result.final("test_error")))}


def time_torch(config: Config) -> dict | None:
    """PyTorch eager: each width trained alone, same data, SGD momentum, epoch permutations, same eval steps."""
    try:
        import torch
        import torch_peer
    except ImportError:
        return None
    data = load_dataset(config)
    n = config.n_train[0]
    tensors = (torch.tensor(data.x_train[:n, None, :]), torch.tensor(data.y_train[:n], dtype=torch.long),
               torch.tensor(data.x_test[:, None, :]), torch.tensor(data.y_test, dtype=torch.long))
    eval_at = torch_peer.evaluation_steps(config.steps, config.n_evals)
    start, errors = time.perf_counter(), []
    for seed in config.seed:
        for width in config.width:
            torch.manual_seed(seed)
            model = torch.nn.Sequential(
                torch.nn.Conv1d(1, width, 5, 2, 1), torch.nn.ReLU(), torch.nn.Conv1d(width, width, 3, 2, 1),
                torch.nn.ReLU(), torch.nn.Conv1d(width, width, 3, 2, 1), torch.nn.ReLU(), torch.nn.Flatten(),
                torch.nn.Linear(5 * width, 10))
            optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate[0], momentum=config.momentum[0])
            batches = torch_peer.epoch_batches(n, config.batch_size, config.steps)
            errors.append(torch_peer.train_alone(model, optimizer, batches, tensors, eval_at))
    total = time.perf_counter() - start
    return {"compile_s": 0.0, "run_s": total, "total_s": total, "efficiency": 1.0, "n_compiles": 0,
            "n_devices": 1, "groups": None, "test_error": float(np.mean(errors))}


def measure(way: str, config: Config) -> dict | None:
    if way == "torch serial":
        return time_torch(config)
    if way == "ddjax grouped":  # The grouped layout, the default before the mapped one (evaluations vmapped).
        return time_ddjax(config, "vmap", "grouped")
    return time_ddjax(config, way.split()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long version: 6 widths, 40 steps")
    parser.add_argument("--steps", type=int, help="training steps (default 300; quick 40)")
    parser.add_argument("--widths", help="comma-separated widths (default: the notebook's 29, 2..100)")
    parser.add_argument("--repeats", type=int, default=1, help="repeats per way (default 1)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated subset of: {', '.join(WAYS)}")
    parser.add_argument("--out", default="benchmarks/conv-results", help="path prefix of the .json and .png outputs")
    parser.add_argument("--cpu-devices", type=positive_int, help="JAX devices the CPU is split into (default: one "
                        "per core, as `python -m ddjax.run` does)")
    args = parser.parse_args(argv)
    split_cpu(args.cpu_devices or os.cpu_count() or 1)
    ways = [w.strip() for w in args.ways.split(",")]
    if any(w not in WAYS for w in ways):
        parser.exit(2, f"error: unknown way in {args.ways!r}; allowed: {', '.join(WAYS)}\n")
    config = load_experiment("cnn_mnist1d").get_config()
    widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else (
        (2, 4, 8, 16, 32, 64) if args.quick else config.width)
    config = sweep_config(widths, args.steps or (40 if args.quick else 300))
    useful = useful_gflop(config, len(load_dataset(config).y_test))
    runs = {way: [] for way in ways}
    for _ in range(args.repeats):  # Round-robin: every way samples the same stretches of a drifting machine.
        for way in ways:
            runs[way].append(measure(way, config))
    rows = {}
    for way in ways:
        if runs[way][0] is None:
            print(f"# {way}: skipped (torch is not installed)")
            continue
        rows[way] = {k: (statistics.median(r[k] for r in runs[way]) if isinstance(runs[way][0][k], float) else
                         runs[way][0][k]) for k in runs[way][0]}
    header = ("way", "widths", "steps", "devices", "compile s", "run s", "total s", "exec GFLOP", "pad eff",
              "GFLOP/s", "vmap faster by")
    print(f"# cnn1d on MNIST-1D: {len(widths)} widths {min(widths)}..{max(widths)}, useful {useful:.1f} GFLOP")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    vmap_total = rows.get("ddjax vmap", {}).get("total_s")
    for way, row in rows.items():
        executed = useful / row["efficiency"]
        row.update(useful_gflop=useful, executed_gflop=executed, achieved_gflops=executed / row["run_s"],
                   vmap_speedup=row["total_s"] / vmap_total if vmap_total else None)
        print(f"| {way} | {len(widths)} | {config.steps} | {row['n_devices']} | {row['compile_s']:.2f} | "
              f"{row['run_s']:.2f} | {row['total_s']:.2f} | {executed:.1f} | {row['efficiency']:.2f} | "
              f"{row['achieved_gflops']:.1f} | {row['vmap_speedup'] or float('nan'):.2f}x |")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": {"widths": list(widths), "steps": config.steps, "batch_size": config.batch_size,
                          "repeats": args.repeats}, "rows": rows, "cpu_count": os.cpu_count()}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    _plot(out.with_suffix(".png"), rows, config)
    print(f"# wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


def _plot(path: pathlib.Path, rows: dict, config: Config) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    ax = figure.add_subplot()
    names = list(rows)
    ax.barh(names, [rows[n]["compile_s"] for n in names], label="compile")
    ax.barh(names, [rows[n]["run_s"] for n in names], left=[rows[n]["compile_s"] for n in names], label="run")
    ax.set(xlabel="seconds", title=f"cnn1d, {len(config.width)} widths, {config.steps} steps")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
