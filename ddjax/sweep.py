"""A sweep: named axes -> members -> width groups -> one trainer program -> stacked curves."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ddjax import grouping
from ddjax.config import AXES, Config
from ddjax.data import Dataset, load_dataset, member_labels
from ddjax.models import Params, forward_macs, get_model
from ddjax.train import CURVES, Members, SharedData, TrainSpec, build_program, chunk_steps, log_spaced_steps, train


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Coordinates and stacked curves of every member.

    `coords[axis]` has shape [member]; `curves[name]` has shape [member, eval_step] with evaluations after
    `eval_steps[j]` steps (NaN after a member diverged); `diverged_step[m]` is -1 or the step it diverged at.
    """

    coords: dict[str, np.ndarray]
    eval_steps: np.ndarray
    curves: dict[str, np.ndarray]
    diverged_step: np.ndarray
    group_widths: tuple[int, ...]
    compile_seconds: float
    run_seconds: float
    n_compiles: int

    def final(self, name: str) -> np.ndarray:
        """The last evaluation of curve `name`, shape [member]."""
        return self.curves[name][:, -1]


def expand_members(config: Config) -> dict[str, np.ndarray]:
    """The cartesian grid of the config's axes, one entry per member (the last axis varies fastest)."""
    grid = list(itertools.product(*(getattr(config, axis) for axis in AXES)))
    return {axis: np.array([point[i] for point in grid]) for i, axis in enumerate(AXES)}


def train_spec(config: Config, dataset: Dataset) -> TrainSpec:
    """The static training description of `config`."""
    return TrainSpec(
        model=get_model(config.model, depth=config.depth), optimizer=config.optimizer, momentum=config.momentum,
        loss=config.loss, batch_size=config.batch_size, steps=config.steps,
        eval_steps=log_spaced_steps(config.steps, config.n_evals), chunk_steps=chunk_steps(config.steps, config.n_chunks),
        input_dim=dataset.x_train.shape[1], n_classes=dataset.n_classes)


def stack_members(coords: dict[str, np.ndarray], index: np.ndarray, dataset: Dataset, config: Config,
                  spec: TrainSpec, max_width: int) -> tuple[Params, Members]:
    """Initial parameters (padded to `max_width`) and `Members` of the members at `index`, stacked."""
    labels = np.stack([member_labels(dataset, int(coords["n_train"][i]), float(coords["label_noise"][i]),
                                     int(coords["seed"][i]), config.data_seed) for i in index])
    params = [spec.model.init(int(coords["seed"][i]), int(coords["width"][i]), max_width, spec.input_dim,
                              spec.n_classes) for i in index]
    members = Members(width=jnp.asarray(coords["width"][index], jnp.int32),
                      n_train=jnp.asarray(coords["n_train"][index], jnp.int32),
                      learning_rate=jnp.asarray(coords["learning_rate"][index], jnp.float32),
                      seed=jnp.asarray(coords["seed"][index], jnp.uint32),
                      labels=jnp.asarray(labels[:, :max(config.n_train)], jnp.int32))
    return jax.tree.map(lambda *leaves: jnp.asarray(np.stack(leaves)), *params), members


def shared_data(dataset: Dataset, config: Config) -> SharedData:
    """The device copy of the training split (truncated to the largest n_train) and the test split."""
    n_max = max(config.n_train)
    return SharedData(jnp.asarray(dataset.x_train[:n_max]), jnp.asarray(dataset.x_test),
                      jnp.asarray(dataset.y_test))


def _unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


def run_sweep(config: Config, *, mode: str | None = None, progress: bool = False,
              on_chunk: Callable[[int, Any], None] | None = None) -> SweepResult:
    """Trains every member of `config`'s grid and returns the stacked curves.

    With `config.method == "min_norm"` nothing is trained: `ddjax.closed_form` solves every read-out instead.

    Args:
      mode: "vmap" (all members in one compiled program, widths grouped to limit padding) or "serial" (one
        member at a time, each at its own width, sharing the member code); defaults to `config.mode`.
      progress: show a progress bar with ETA over chunks of steps.
    """
    if config.method == "min_norm":  # No training: the read-out is solved in closed form.
        from ddjax.closed_form import solve_sweep

        return solve_sweep(config)
    mode = mode or config.mode
    dataset = load_dataset(config)
    data = shared_data(dataset, config)
    spec = train_spec(config, dataset)
    coords = expand_members(config)
    n_members = len(coords["width"])
    bar = _progress_bar(progress, spec.steps * (1 if mode == "vmap" else n_members), f"{mode} {n_members} members")
    if mode == "vmap":
        plan = grouping.plan_groups(coords["width"], cost=lambda w: _member_cost(config, spec, w))
        params, groups = zip(*(stack_members(coords, index, dataset, config, spec, width)
                               for index, width in zip(plan.indices, plan.max_widths)))
        program = build_program(spec)
        outcome = train(program, spec, params, groups, data, progress=bar, on_chunk=on_chunk)
        order = np.concatenate(plan.indices)
        states, compile_s, run_s = outcome.states, outcome.compile_seconds, outcome.run_seconds
        n_compiles = program.trace_count()
        group_widths = plan.max_widths
    else:
        order, states, compile_s, run_s, compiled = np.arange(n_members), [], 0.0, 0.0, {}
        for i in range(n_members):
            width = int(coords["width"][i])
            if width not in compiled:
                compiled[width] = build_program(spec, batched=False)
            params, members = _unstack(stack_members(coords, np.array([i]), dataset, config, spec, width), 0)
            outcome = train(compiled[width], spec, (params,), (members,), data, progress=bar)
            states.append(jax.tree.map(lambda a: a[None], outcome.states[0]))
            compile_s, run_s = compile_s + outcome.compile_seconds, run_s + outcome.run_seconds
        n_compiles = sum(p.trace_count() for p in compiled.values())
        group_widths = tuple(sorted(compiled))
    if bar is not None:
        bar.close()
    inverse = np.argsort(order)
    curves = {k: np.concatenate([np.asarray(s.curves[k]) for s in states])[inverse] for k in CURVES}
    diverged = np.concatenate([np.asarray(s.diverged_step) for s in states])[inverse]
    return SweepResult(coords, np.asarray(spec.eval_steps), curves, diverged, tuple(int(w) for w in group_widths),
                       compile_s, run_s, n_compiles)


def _member_cost(config: Config, spec: TrainSpec, width: int) -> float:
    return float(forward_macs(config.model, int(width), spec.input_dim, spec.n_classes, config.depth))


def _progress_bar(enabled: bool, total: int, description: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="step", dynamic_ncols=True)
