"""A researcher's own flax module against the built-in MLP on the same sweep: whole-sweep time, compile time,
programs and devices, alternated and repeated (CPU speed drifts within minutes).

    PYTHONPATH=. python benchmarks/user_module.py                 # mlp_mnist1d's default sweep, 3 rounds
    PYTHONPATH=. python benchmarks/user_module.py --quick         # 2000 steps, 1 round

The module is ten lines of plain flax (Dense, ReLU, Dense) registered with `ddjax.register_model`: ddjax derives
its padding from the module, checks it exact in float64, and trains its widths in width groups over every device,
as the built-in conv families. The built-in MLP trains the same members in the packed layout, and in the grouped
layout (the user module's). The runs draw different initial values (the module's LeCun normal, the MLP's He), so
only the cost is compared. Each round runs the three one after the other in fresh processes, split into 2 CPU
devices as the CLI does, alternating the order; the medians are reported. Writes benchmarks/user-module-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROUND = r"""
import json, sys, time
import flax.linen as nn
import ddjax
from ddjax.sweep import run_sweep

class Net(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_classes)(nn.relu(nn.Dense(self.width)(x.reshape(x.shape[0], -1))))

which, steps = sys.argv[1], int(sys.argv[2])
if which == "user":
    ddjax.register_model("net", Net)
config = ddjax.replace(ddjax.experiment_config("mlp_mnist1d"), model="net" if which == "user" else "mlp",
                       steps=steps, n_bootstrap=0)
start = time.perf_counter()
if which == "mlp_grouped":
    result = run_sweep(config, scheme="grouped")
elif which == "user_serial":
    result = run_sweep(config, mode="serial")
else:
    result = run_sweep(config)
wall = time.perf_counter() - start
print(json.dumps({"wall_seconds": wall, "compile_seconds": result.compile_seconds,
                  "run_seconds": result.run_seconds, "n_compiles": result.n_compiles, "scheme": result.scheme,
                  "n_programs": result.n_programs, "n_devices": result.n_devices, "groups": list(result.group_widths),
                  "padding": result.padding, "padding_efficiency": result.padding_efficiency}))
"""


def one_round(which: str, steps: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": os.getcwd()}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", ROUND, which, str(steps)], env=env, capture_output=True, text=True,
                         check=True)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "process_seconds": time.perf_counter() - start}


def torch_round(steps: int) -> dict | None:
    """The same sweep as a plain PyTorch loop (`torch_peer`): each (width, seed) built, trained with Adam and
    evaluated alone, one after another; None where torch is not installed."""
    try:
        import torch
        import torch_peer
    except ImportError:
        return None
    from ddjax import experiment_config, replace
    from ddjax.data.datasets import member_labels
    from ddjax.data.registry import load_dataset

    config = replace(experiment_config("mlp_mnist1d"), steps=steps)
    data = load_dataset(config)
    n = config.n_train[0]
    eval_at = torch_peer.evaluation_steps(config.steps, config.n_evals)
    start = time.perf_counter()
    for seed in config.seed:
        labels = member_labels(data, n, config.label_noise[0], seed, config.data_seed)[:n]
        tensors = (torch.tensor(data.x_train[:n]), torch.tensor(labels, dtype=torch.long),
                   torch.tensor(data.x_test), torch.tensor(data.y_test, dtype=torch.long))
        for width in config.width:
            torch.manual_seed(seed)
            model = torch_peer.mlp(tensors[0].shape[1], width, config.depth, data.n_classes)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate[0])
            batches = torch_peer.random_batches(n, config.batch_size, config.steps)
            torch_peer.train_alone(model, optimizer, batches, tensors, eval_at)
    return {"wall_seconds": time.perf_counter() - start, "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/user-module-cpu.json")
    parser.add_argument("--peers", action="store_true",
                        help="after the rounds, once each: the user module in serial mode (one program a width) "
                             "and the PyTorch loop (where torch is installed)")
    args = parser.parse_args()
    steps, rounds = (2000, 1) if args.quick else (8000, args.rounds)
    runs: dict[str, list[dict]] = {"user": [], "mlp": [], "mlp_grouped": []}
    for r in range(rounds):
        for which in ("user", "mlp", "mlp_grouped") if r % 2 == 0 else ("mlp_grouped", "mlp", "user"):
            runs[which].append(one_round(which, steps))
            print(which, json.dumps(runs[which][-1]), flush=True)
    median = {which: {key: statistics.median(run[key] for run in rs) for key in
                      ("process_seconds", "wall_seconds", "compile_seconds", "run_seconds")}
              for which, rs in runs.items()}
    ratio = median["user"]["wall_seconds"] / median["mlp"]["wall_seconds"]
    grouped = median["user"]["wall_seconds"] / median["mlp_grouped"]["wall_seconds"]
    print(f"user module / built-in MLP, sweep wall time (median of {rounds}): {ratio:.2f}x against packed, "
          f"{grouped:.2f}x against the built-in grouped; user compile {median['user']['compile_seconds']:.1f} s")
    record = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average_at_end": os.getloadavg(), "steps": steps, "rounds": rounds, "runs": runs,
              "median": median, "ratio_user_to_builtin": ratio,
              "ratio_user_to_builtin_grouped": grouped}
    if args.peers:
        record["peers"] = {"user_serial": one_round("user_serial", steps), "torch": torch_round(steps)}
        for way, row in record["peers"].items():
            wall = None if row is None else row["wall_seconds"]
            print(f"{way}: " + ("skipped (torch is not installed)" if wall is None else
                                f"{wall:.1f} s, {wall / median['user']['wall_seconds']:.2f}x the padded user module"))
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
