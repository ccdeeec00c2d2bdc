"""Run by tests/test_sharding.py in a fresh process whose CPU is split into 2 devices; prints a JSON summary.

For the packed and block-packed layouts (3 streams; 1 stream, cut into 2 parts) and the grouped one: the sweep's curves in vmap mode
(the member axis split over both devices) and in serial mode, how many devices the sweep used, the collective ops
in its compiled chunk, the shapes `on_chunk` received (the padding copies must not reach a checkpoint), and a run
resumed from the first chunk.
"""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
os.environ["JAX_ENABLE_X64"] = "1"  # The split and serial runs are compared in float64 (tests/reference.py).

import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ddjax.config import Config, replace  # noqa: E402
from ddjax.data.registry import load_dataset  # noqa: E402
from ddjax.sweep import run_sweep  # noqa: E402
from ddjax.training.sharding import leading_size  # noqa: E402
from ddjax.training.trainer import Program  # noqa: E402

COLLECTIVES = r"all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter"


def main() -> None:
    # 3 seeds: the packed layout's 3 streams are padded to 4; depth 2: grouped, groups of 3 members padded to 4.
    config = replace(Config(), dataset="gaussian", n_samples=400, input_dim=8, n_classes=3, teacher_noise=0.5,
                     width=(1, 3, 8, 20), seed=(0, 1, 2), n_train=(200,), label_noise=(0.1,), steps=40,
                     batch_size=16, n_evals=4, n_chunks=3, learning_rate=(3e-3,), precision="float64")
    compiled = []
    original = Program.compiled_chunk

    def recording(self, *args):
        executable = original(self, *args)
        compiled.append(executable.as_text())
        return executable

    Program.compiled_chunk = recording
    summary = {"n_devices": jax.device_count()}
    # One seed: a single packed stream, cut into 2 parts of its members, one per device.
    for name, scheme, overrides in (("packed", "packed", {}), ("packed_one_stream", "packed", {"seed": (0,)}),
                                    ("grouped", "grouped", {"depth": 2}),
                                    ("blockpacked", "blockpacked", {"depth": 2}),
                                    ("blockpacked_one_stream", "blockpacked", {"depth": 2, "seed": (0,)})):
        sweep = replace(config, **overrides)
        leading, saved = [], []

        def on_chunk(step, states):
            leading.append([leading_size(s) for s in states])
            if not saved:  # The first checkpoint, as host arrays.
                saved.append((step, jax.tree.map(np.asarray, states)))

        compiled.clear()
        split = run_sweep(sweep, scheme=scheme, on_chunk=on_chunk)
        n_compiled = len(compiled)
        step, states = saved[0]
        resumed = run_sweep(sweep, scheme=scheme, restore=lambda template: states, start_step=step)
        serial = run_sweep(sweep, mode="serial")
        summary[name] = {
            "n_devices": split.n_devices, "n_members": len(split.coords["width"]),
            "n_train": split.coords["n_train"].tolist(), "n_test": len(load_dataset(sweep).y_test),
            "split": {k: v.tolist() for k, v in split.curves.items()},
            "serial": {k: v.tolist() for k, v in serial.curves.items()},
            "collectives": sorted(set(re.findall(COLLECTIVES, compiled[0]))), "n_compiled": n_compiled,
            "on_chunk_leading": leading, "resumed_from": step,
            "resumed_equal": all(np.array_equal(resumed.curves[k], split.curves[k], equal_nan=True) for k in split.curves),
        }
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    main()
