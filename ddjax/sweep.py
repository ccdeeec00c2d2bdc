"""A sweep: named axes -> members -> a layout's programs -> one runner -> stacked curves."""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from ddjax.config import Config, ConfigError, validate
from ddjax.data.registry import load_dataset
from ddjax.models.registry import model_info
from ddjax.result import SweepResult
from ddjax.solvers.closed_form import solve_sweep
from ddjax.solvers.gradient_descent import descend_sweep
from ddjax.training.layouts import Context, SCHEMES, choose_layout
from ddjax.training.members import expand_members, shared_data, train_spec
from ddjax.training.memory import Budget, Needs, device_budget, refuse_oversize, sweep_needs
from ddjax.training.runner import run_plan
from ddjax.training.spec import TrainSpec

__all__ = ["SCHEMES", "check_memory", "run_sweep"]


def run_sweep(config: Config, *, mode: str | None = None, scheme: str = "auto", progress: bool = False,
              on_chunk: Callable[[int, Any], None] | None = None, restore: Callable[[Any], Any] | None = None,
              start_step: int = 0) -> SweepResult:
    """Trains every member of `config`'s grid and returns the stacked curves.

    With `config.method == "min_norm"` nothing is trained: `ddjax.solvers.closed_form` solves every read-out
    instead.

    Memory planning (`ddjax.training.memory`): a member that cannot fit in device memory even alone is refused
    (ConfigError) before anything is allocated; a sweep over the budget (or over `config.max_members_per_program`)
    trains as consecutive programs over equal-shaped subsets of members, compiled once, with the curves of one
    program.

    Args:
      mode: "vmap" (all members in one compiled program, the member axis split over the devices, see
        `ddjax.training.sharding`) or "serial" (one member at a time, each at its own width, sharing the member
        code); defaults to `config.mode`.
      scheme: how vmap mode lays members out (`ddjax.training.layouts`): "packed" (one-hidden-layer families:
        every member's units in one wide layer), "blockpacked" (MLPs of any depth: width buckets of block-diagonal
        hidden layers), "grouped" (members padded to the widest of a few width groups), "padded" (every member
        padded to the widest one, the naive reference), "mapped" (grouped, with evaluations one member after
        another: `cnn1d` on a CPU). "auto" takes the first of packed, blockpacked, mapped, grouped that can hold
        the config: the benchmarks measured them in that order.
      progress: show a progress bar with ETA over chunks of steps.
      on_chunk: called as on_chunk(next_step, state) after every chunk (vmap mode) or every member (serial mode,
        where the "step" counts finished members and the state holds every member's curves), e.g. to checkpoint.
      restore: resumes at `start_step` from restore(template), where template is the `jax.eval_shape` of the
        state on_chunk receives: vmap mode continues at that loop step, serial mode after that many members.
    """
    validate(config)  # A Config built directly, not via `replace`, has not been validated yet.
    if config.method == "min_norm":  # No training: the read-out is solved in closed form.
        return solve_sweep(config)
    if config.method == "gradient_descent":  # Least squares by full-batch GD, beside its closed form.
        return descend_sweep(config)
    mode = mode or config.mode
    if start_step and restore is None:
        raise ConfigError(f"start_step={start_step} is not allowed without restore: a run starts at 0 unless it "
                          f"resumes a checkpoint")
    layout = choose_layout(config, scheme, mode)
    dataset = load_dataset(config)
    spec = train_spec(config, dataset)
    devices = _devices(config, mode)
    memory = _memory(config, dataset, spec, devices)  # Refuses a member that cannot fit before allocating it.
    coords = expand_members(config)
    # vmap mode splits the member axis over every device, every host's in a multi-host job (a no-op with one).
    context = Context(config, dataset, shared_data(dataset, config), spec, coords,
                      devices if mode == "vmap" else None, memory)
    n_members = len(coords["width"])
    outcome = run_plan(layout.plan(context), spec, n_members, devices=context.devices, restore=restore,
                       start_step=start_step, on_chunk=on_chunk, progress=progress,
                       description=f"{mode} {n_members} members")
    return SweepResult(coords=coords, eval_steps=np.asarray(spec.eval_steps), scheme=layout.name, **outcome)


def check_memory(config: Config) -> None:
    """Raises ConfigError (one line) if a member of `config` cannot fit in device memory even alone, or its
    widths overflow int32: `run_experiment` asks before it creates a run folder. Nothing is allocated."""
    validate(config)
    if config.method != "train":
        return
    dataset = load_dataset(config)
    _memory(config, dataset, train_spec(config, dataset), _devices(config, config.mode))


def _devices(config: Config, mode: str) -> list[jax.Device]:
    """The devices a sweep trains on: every host's in vmap mode, one in serial mode.

    One exception: a CPU split into host devices (one per core, as the CLI does) runs convolutional members on one
    device, whose convolutions' matmuls then use every core. Measured on the 2-core CPU (Intel Xeon, quiet), the
    `cnn1d` benchmark sweep (29 widths, 100 steps): run phase 29.3 s on one device against 38.9 s split over two.
    """
    if mode != "vmap":
        return jax.local_devices()[:1]
    devices = jax.devices()
    if jax.process_count() == 1 and devices[0].platform == "cpu" and model_info(config.model).convolutional:
        return devices[:1]
    return devices


def _memory(config: Config, dataset, spec: TrainSpec, devices) -> tuple[Needs, Budget]:
    """The sweep's memory needs and the devices' budget; refuses a member that cannot fit alone."""
    n_train_rows = max(config.n_train)
    needs = sweep_needs(config, input_dim=spec.input_dim, n_classes=spec.n_classes,
                        example_bytes=int(np.prod(dataset.x_train.shape[1:])) * dataset.x_train.itemsize,
                        n_train_rows=n_train_rows, n_test_rows=len(dataset.x_test), batch_size=config.batch_size,
                        n_evals=min(config.n_evals, config.steps) + 1,
                        input_shape=tuple(int(d) for d in dataset.x_train.shape[1:]),
                        eval_rows=spec.eval_batch or None)
    budget = device_budget(devices, config.memory_budget_bytes)
    refuse_oversize(config, needs, budget)
    return needs, budget
