"""A sweep: named axes -> members -> a layout's programs -> one runner -> stacked curves.

`prepare` does everything that can refuse a sweep before anything runs (validation, the data set, the layout, the
training spec, the memory plan), once; `run_sweep` runs what it prepared (preparing it first if need be).
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from ddjax.config import Config, ConfigError, ensure_valid
from ddjax.data.registry import dataset_info, load_dataset
from ddjax.models.padding import leaf_paths
from ddjax.models.registry import model_info
from ddjax.result import SweepResult
from ddjax.solvers import layouts as _solver_layouts  # noqa: F401  (registers the closed-form layouts)
from ddjax.solvers import two_layer
from ddjax.training.layouts import Context, Layout, choose_layout, schemes
from ddjax.training.costs import MemberCost, member_cost
from ddjax.training.members import expand_members, model_input_shape, shared_data, train_spec
from ddjax.training.memory import Budget, Needs, device_budget, refuse_oversize, sweep_needs
from ddjax.training.runner import run_plan
from ddjax.training.spec import TrainSpec

__all__ = ["Prepared", "prepare", "run_prepared", "run_sweep", "schemes"]


class Prepared(NamedTuple):
    """A sweep ready to run: its layout and what the layout plans from (`ddjax.training.layouts.Context`), and the
    `mode` and `scheme` it was prepared for."""

    layout: Layout
    context: Context
    mode: str | None
    scheme: str

    def prepares(self, config: Config, mode: str | None, scheme: str) -> bool:
        """Whether this is the preparation of `config` in `mode` and `scheme`."""
        return self.context.config is config and self.mode == mode and self.scheme == scheme


def prepare(config: Config, *, mode: str | None = None, scheme: str = "auto") -> Prepared:
    """Validates `config` (once: a config from `ddjax.config.replace` is valid already), loads its data set, picks
    its layout, computes its training spec and memory plan (the trainer's, or the layout's own), and refuses
    (ConfigError, one line) a member that cannot fit in device memory even alone, or a solve that cannot fit its
    budget, before anything is allocated or compiled.

    Args:
      mode: "serial" is shorthand for scheme "serial" (one member at a time, the reference); default
        `config.mode`.
      scheme: the layout (`ddjax.training.layouts`): "packed" (one-hidden-layer families: every member's units in
        one wide layer), "blockpacked" (MLPs of any depth: width buckets of block-diagonal hidden layers),
        "grouped" (members padded to the widest of a few width groups), "padded" (every member padded to the
        widest one, the naive reference), "mapped" (grouped, with evaluations one member after another: `cnn1d` on
        a CPU), "serial", and the solvers' "closed_form" and "gradient_descent". "auto" takes the first of the
        solvers' (for their methods), then packed, blockpacked, mapped, grouped that can hold the config: the
        benchmarks measured them in that order.
    """
    config = ensure_valid(config)
    layout = choose_layout(config, scheme, mode)
    dataset = load_dataset(config) if dataset_info(config.dataset).load is not None else None
    spec = train_spec(config, dataset) if dataset is not None else None
    devices = _devices(config, layout)
    cost = member_cost(config, model_input_shape(dataset), spec.n_classes) if dataset is not None else None
    memory = _memory(config, dataset, spec, devices, cost) if config.method == "train" else None
    if spec is not None:
        _check_layer_group(config, spec)
    data = shared_data(dataset, config) if dataset is not None else None
    # The member axis is split over every device, every host's in a multi-host job (a no-op with one).
    context = Context(config, dataset, data, spec, expand_members(config),
                      devices if layout.splits_members(config) else None, memory, cost)
    if layout.memory_plan is not None:
        context = context._replace(memory=layout.memory_plan(context))
    return Prepared(layout, context, mode, scheme)


def run_prepared(prepared: Prepared, *, progress: bool = False,
                 on_chunk: Callable[[int, Any], None] | None = None, restore: Callable[[Any], Any] | None = None,
                 start_step: int = 0) -> SweepResult:
    """Runs a prepared sweep (see `run_sweep`)."""
    if start_step and restore is None:
        raise ConfigError(f"start_step={start_step} is not allowed without restore: a run starts at 0 unless it "
                          f"resumes a checkpoint")
    layout, context = prepared.layout, prepared.context
    n_members = len(context.coords["width"])
    outcome = run_plan(layout.plan(context), n_members, restore=restore, start_step=start_step, on_chunk=on_chunk,
                       progress=progress, description=f"{layout.name} {n_members} members")
    if context.config.theory == "linearized":  # Each member's risk over training in closed form, beside it.
        outcome["curves"] = {**outcome["curves"], **two_layer.theory_curves(
            context.config, context.dataset, context.spec, context.coords, outcome["eval_steps"])}
    padding = getattr(context.spec.model, "padding", None) if context.spec is not None else None
    return SweepResult(coords=context.coords, scheme=layout.name, **outcome,
                       padding=None if padding is None else padding._asdict())


def run_sweep(config: Config, *, mode: str | None = None, scheme: str = "auto", progress: bool = False,
              on_chunk: Callable[[int, Any], None] | None = None, restore: Callable[[Any], Any] | None = None,
              start_step: int = 0, prepared: Prepared | None = None) -> SweepResult:
    """Trains (or solves) every member of `config`'s grid and returns the stacked curves.

    Memory planning (`ddjax.training.memory`): a member that cannot fit in device memory even alone is refused
    (ConfigError) before anything is allocated; a sweep over the budget (or over `config.max_members_per_program`)
    trains as consecutive programs over equal-shaped subsets of members, compiled once, with the curves of one
    program.

    Args:
      mode, scheme: the layout (see `prepare`).
      progress: show a progress bar with ETA over chunks of steps.
      on_chunk: called as on_chunk(next_step, state) after every chunk of a single trained program, or after
        every program of several (where the "step" counts finished programs: members, for the serial layout,
        and the state holds every member's curves), e.g. to checkpoint.
      restore: resumes at `start_step` from restore(template), where template is the `jax.eval_shape` of the
        state on_chunk receives.
      prepared: `prepare(config, mode=mode, scheme=scheme)` where the caller made it already (`run_experiment`
        does, before its run folder exists), so that nothing is done twice; ignored if it prepared another config,
        mode or scheme.
    """
    if prepared is None or not prepared.prepares(config, mode, scheme):
        prepared = prepare(config, mode=mode, scheme=scheme)
    return run_prepared(prepared, progress=progress, on_chunk=on_chunk, restore=restore, start_step=start_step)


def _check_layer_group(config: Config, spec: TrainSpec) -> None:
    """ConfigError (one line) if the axes that act on `layer_group` are swept and it matches no parameter."""
    if config.layer_rate == (1.0,) and config.layer_init_scale == (1.0,):
        return
    width = min(config.width)
    paths = leaf_paths(spec.model.init(0, width, width, spec.input_dim, spec.n_classes)["params"])
    if not any(fnmatch.fnmatchcase(path, config.layer_group) for path in paths):
        raise ConfigError(f"layer_group={config.layer_group!r} is not allowed: a pattern that matches a parameter of "
                          f"model={config.model} ({', '.join(paths)})")


def _devices(config: Config, layout: Layout) -> list[jax.Device]:
    """The devices a sweep runs on: every host's for a layout that splits its members, else one.

    One exception: a CPU split into host devices (one per core, as the CLI does) runs convolutional members on one
    device, whose convolutions' matmuls then use every core. Measured on the 2-core CPU (Intel Xeon, quiet), the
    `cnn1d` benchmark sweep (29 widths, 100 steps): run phase 29.3 s on one device against 38.9 s split over two.
    """
    if not layout.splits_members(config):
        return jax.local_devices()[:1]
    devices = jax.devices()
    if jax.process_count() == 1 and devices[0].platform == "cpu" and model_info(config.model).one_device_on_cpu:
        return devices[:1]
    return devices


def _memory(config: Config, dataset, spec: TrainSpec, devices, cost: MemberCost | None = None) -> tuple[Needs, Budget]:
    """The sweep's memory needs and the devices' budget; refuses a member that cannot fit alone. `cost`: the
    family's cost model, if the caller has it."""
    cost = cost or member_cost(config, model_input_shape(dataset), spec.n_classes)
    needs = sweep_needs(config, cost, n_classes=spec.n_classes,
                        example_bytes=int(np.prod(dataset.x_train.shape[1:])) * dataset.x_train.itemsize,
                        n_train_rows=max(config.n_train), n_test_rows=len(dataset.x_test),
                        batch_size=config.batch_size, n_evals=min(config.n_evals, config.steps) + 1,
                        eval_rows=spec.eval_batch or None)
    budget = device_budget(devices, config.memory_budget_bytes)
    refuse_oversize(config, needs, budget)
    return needs, budget
