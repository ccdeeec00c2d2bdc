"""vmap versus serial: the same width sweep trained several ways, side by side, in one process.

    python benchmarks/vmap_vs_serial.py            # full: 15 widths 1..256, 2000 steps, 3 repeats (minutes)
    python benchmarks/vmap_vs_serial.py --quick    # seconds: fewer steps, one repeat
    python benchmarks/vmap_vs_serial.py --depth 2  # the same grid with 2 hidden layers (block-packed layout)

Ways: ddjax's default vmap path (scheme "auto"), ddjax serial mode (one member at a time, one compile per
distinct width), the grouped and the naive padded vmap schemes, and PyTorch eager serial training of the same
widths (only where torch imports). Prints a table, writes a JSON file of every figure plus machine info, and a
PNG of total time against the number of members (1, 4, 16, 64). Medians over repeats, taken round-robin over
the ways; every repeat compiles afresh, as a new sweep would. Like `python -m ddjax.run`, it splits a CPU into
one JAX device per core (`--cpu-devices 1` keeps one); vmap mode spreads its members over them.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ddjax.arguments import positive_int  # noqa: E402
from ddjax.config import Config, geometric_widths, replace  # noqa: E402
from ddjax.data.registry import load_dataset  # noqa: E402
from ddjax.models.registry import forward_macs  # noqa: E402
from ddjax.sweep import run_sweep  # noqa: E402
from ddjax.training.sharding import split_cpu  # noqa: E402

WAYS = ("ddjax vmap", "ddjax serial", "grouped vmap", "padded vmap", "torch serial")


def sweep_config(n_widths: int, n_seeds: int, steps: int, depth: int = 1, dataset: str = "mnist1d") -> Config:
    """The benchmark sweep: an MLP of `depth` hidden layers on MNIST-1D, geometric widths 1..256, Adam, batch 128.

    `dataset` replaces MNIST-1D by another of its shape (e.g. "npz:PATH" of 4000 training and 1000 test signals)."""
    return replace(Config(), dataset=dataset, n_samples=5000, n_train=(4000,), label_noise=(0.15,), depth=depth,
                   width=geometric_widths(1, 256, n_widths) if n_widths > 1 else (256,),
                   seed=tuple(range(n_seeds)), steps=steps, batch_size=128, learning_rate=(1e-3,), n_evals=20,
                   n_chunks=4)


def useful_gflop(config: Config, n_test: int) -> float:
    """FLOPs the members need: 3 forward-sized passes per training example, 1 per evaluated example."""
    macs = sum(forward_macs("mlp", w, 40, 10, config.depth) for w in config.width) * len(config.seed)
    n_evals = len(np.unique(np.round(np.geomspace(1, config.steps, config.n_evals)))) + 1
    train = 3 * config.steps * config.batch_size
    evaluate = n_evals * (config.n_train[0] + n_test)
    return 2 * macs * (train + evaluate) / 1e9


def time_ddjax(config: Config, mode: str, scheme: str) -> dict:
    start = time.perf_counter()
    result = run_sweep(config, mode=mode, scheme=scheme)
    total = time.perf_counter() - start
    return {"scheme": result.scheme, "compile_s": result.compile_seconds, "run_s": result.run_seconds, "total_s": total,
            "efficiency": result.padding_efficiency, "n_compiles": result.n_compiles, "n_devices": result.n_devices,
            "test_error": float(np.nanmean(result.final("test_error")))}


def time_torch(config: Config) -> dict | None:
    """PyTorch eager: each width trained alone with Adam on the same data, batches and evaluation points."""
    try:
        import torch
        import torch_peer
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() and jax.default_backend() == "gpu" else "cpu"
    data = load_dataset(config)
    tensors = (torch.tensor(data.x_train[: config.n_train[0]], device=device),
               torch.tensor(data.y_train[: config.n_train[0]], dtype=torch.long, device=device),
               torch.tensor(data.x_test, device=device), torch.tensor(data.y_test, dtype=torch.long, device=device))
    eval_at = torch_peer.evaluation_steps(config.steps, config.n_evals)
    start, errors = time.perf_counter(), []
    for seed in config.seed:
        for width in config.width:
            torch.manual_seed(seed)
            model = torch_peer.mlp(40, width, config.depth, 10).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate[0])
            batches = torch_peer.random_batches(len(tensors[1]), config.batch_size, config.steps, device)
            errors.append(torch_peer.train_alone(model, optimizer, batches, tensors, eval_at))
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    return {"scheme": "torch", "compile_s": 0.0, "run_s": total, "total_s": total, "efficiency": 1.0, "n_compiles": 0,
            "test_error": float(np.mean(errors))}


def measure(way: str, config: Config) -> dict | None:
    if way == "torch serial":
        return time_torch(config)
    mode, scheme = {"ddjax vmap": ("vmap", "auto"), "ddjax serial": ("serial", "auto"),
                    "grouped vmap": ("vmap", "grouped"), "padded vmap": ("vmap", "padded")}[way]
    return time_ddjax(config, mode, scheme)


def median_of(runs: list[dict]) -> dict:
    return {k: runs[0][k] if isinstance(runs[0][k], str) else statistics.median(r[k] for r in runs) for k in runs[0]}


def matmul_peak_gflops() -> float:
    """This machine's float32 matmul rate through JAX (the same backend the sweeps use)."""
    n = 4096 if jax.default_backend() != "cpu" else 1024
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def machine_info() -> dict:
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"backend": jax.default_backend(), "device": getattr(device, "device_kind", str(device)),
            "device_count": jax.device_count(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "jax_version": jax.__version__, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long version: 200 steps, one repeat")
    parser.add_argument("--steps", type=int, help="training steps of the main table (default 2000)")
    parser.add_argument("--n-widths", type=positive_int, default=15, help="geometric widths 1..256 of the main table "
                        "(default 15)")
    parser.add_argument("--dataset", default="mnist1d", help="data set of MNIST-1D's shape (default mnist1d; e.g. "
                        "npz:PATH where the mnist1d package is missing)")
    parser.add_argument("--depth", type=positive_int, default=1, help="hidden layers of the MLP (default 1)")
    parser.add_argument("--repeats", type=int, help="repeats per way (default 3, quick 1)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated subset of: {', '.join(WAYS)}")
    parser.add_argument("--members", default="1,4,16,64", help="member counts of the scaling measurement")
    parser.add_argument("--scaling-steps", type=int, help="steps of the scaling measurement (default steps / 4)")
    parser.add_argument("--out", default="benchmarks/results", help="path prefix of the .json and .png outputs")
    parser.add_argument("--cpu-devices", type=positive_int, help="JAX devices the CPU is split into (default: one per core, "
                        "as `python -m ddjax.run` does; 1 = one device)")
    args = parser.parse_args(argv)
    split_cpu(args.cpu_devices or os.cpu_count() or 1)
    ways = [w.strip() for w in args.ways.split(",")]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        parser.exit(2, f"error: unknown way {unknown[0]!r}; allowed: {', '.join(WAYS)}\n")
    steps = args.steps or (200 if args.quick else 2000)
    repeats = args.repeats or (1 if args.quick else 3)
    info = machine_info()
    peaks = [matmul_peak_gflops()]
    print(f"# {info['device']} ({info['backend']}, {info['cpu_count']} CPUs: {info['cpu']}), jax {info['jax_version']}")
    print(f"# float32 matmul peak measured here: {peaks[0]:.1f} GFLOP/s (measured again after the sweeps)")

    config = sweep_config(args.n_widths, 1, steps, args.depth, args.dataset)
    n_test = len(load_dataset(config).y_test)
    useful = useful_gflop(config, n_test)
    rows = {}
    # Repeats go round-robin over the ways, so every way samples the same stretches of a drifting machine.
    runs = {way: [] for way in ways}
    for _ in range(repeats):
        for way in ways:
            runs[way].append(measure(way, config))
    for way in ways:
        if runs[way][0] is None:
            print(f"# {way}: skipped (torch is not installed)")
            continue
        rows[way] = median_of(runs[way])
    # A shared machine's speed drifts; the peak is the best of a measurement before and one after the sweeps.
    peaks.append(matmul_peak_gflops())
    peak = max(peaks)
    print(f"# float32 matmul peak: {peaks[0]:.1f} before, {peaks[1]:.1f} after the sweeps; using {peak:.1f} GFLOP/s")
    serial_total = rows.get("ddjax serial", {}).get("total_s")
    header = ("way", "scheme", "members", "devices", "steps", "compile s", "run s", "total s", "useful GFLOP", "exec GFLOP",
              "pad eff", "GFLOP/s", "of peak", "vs serial")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for way, row in rows.items():
        executed = useful / row["efficiency"]
        row.update(useful_gflop=useful, executed_gflop=executed, achieved_gflops=executed / row["run_s"],
                   fraction_of_peak=executed / row["run_s"] / peak,
                   speedup_vs_serial=serial_total / row["total_s"] if serial_total else None)
        print(f"| {way} | {row['scheme']} | {len(config.width)} | {row.get('n_devices', '-')} | {steps} | {row['compile_s']:.2f} | "
              f"{row['run_s']:.2f} | {row['total_s']:.2f} | {useful:.1f} | {executed:.1f} | {row['efficiency']:.2f} | "
              f"{row['achieved_gflops']:.1f} | {row['fraction_of_peak']:.1%} | "
              f"{row['speedup_vs_serial'] or float('nan'):.1f}x |")

    scaling_steps = args.scaling_steps or max(steps // 4, 50)
    scaling = {way: {} for way in rows}
    for members in (int(m) for m in args.members.split(",")):
        n_widths = min(members, 16)
        sized = sweep_config(n_widths, members // n_widths, scaling_steps, args.depth, args.dataset)
        for way in rows:
            scaling[way][members] = measure(way, sized)["total_s"]
        print(f"# {members} members, {scaling_steps} steps: "
              + ", ".join(f"{way} {scaling[way][members]:.2f} s" for way in rows))

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "matmul_peak_gflops": peak, "matmul_peak_measurements": peaks, "config": {"widths": list(config.width),
               "steps": steps, "batch_size": config.batch_size, "repeats": repeats, "depth": config.depth,
               "dataset": config.dataset}, "rows": rows,
               "scaling_steps": scaling_steps, "scaling_total_s": scaling}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    _plot_scaling(out.with_suffix(".png"), scaling, info, scaling_steps)
    print(f"# wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


def _plot_scaling(path: pathlib.Path, scaling: dict, info: dict, steps: int) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    ax = figure.add_subplot()
    for way, points in scaling.items():
        members = sorted(points)
        ax.plot(members, [points[m] for m in members], marker="o", label=way)
    ax.set(xscale="log", yscale="log", xlabel="members in the sweep", ylabel="total seconds (compile + run)",
           title=f"{steps} steps on {info['device']}")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
