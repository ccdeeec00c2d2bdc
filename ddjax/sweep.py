"""A sweep: named axes -> members -> width groups -> one trainer program -> stacked curves."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from ddjax.config import Config, ConfigError, validate
from ddjax.data.registry import load_dataset
from ddjax.members import expand_members, shared_data, stack_members, train_spec
from ddjax.models.registry import forward_macs, packed_form
from ddjax.result import SweepResult
from ddjax.solvers.closed_form import solve_sweep
from ddjax.training import sharding
from ddjax.training.packed.layout import parts_per_stream
from ddjax.training.packed.setup import batch_stream_keys, packed_program, packed_setup
from ddjax.training.packed.streams import initial_states, packed_data
from ddjax.training.trainer import CURVES, TrainSpec, build_program, train
from ddjax.training.width_groups import plan_groups


def _unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


SCHEMES = ("auto", "packed", "grouped", "padded")


def run_sweep(config: Config, *, mode: str | None = None, scheme: str = "auto", progress: bool = False,
              on_chunk: Callable[[int, Any], None] | None = None, restore: Callable[[Any], Any] | None = None,
              start_step: int = 0) -> SweepResult:
    """Trains every member of `config`'s grid and returns the stacked curves.

    With `config.method == "min_norm"` nothing is trained: `ddjax.solvers.closed_form` solves every read-out
    instead.

    Args:
      mode: "vmap" (all members in one compiled program, the member axis split over the local devices, see
        `ddjax.training.sharding`) or "serial" (one member at a time, each at its own width, sharing the member
        code); defaults to `config.mode`.
      scheme: how vmap mode lays members out: "packed" (one-hidden-layer families: every member's units in one
        wide layer, see `ddjax.training.packed`), "grouped" (members padded to the widest of a few width groups),
        "padded" (every member padded to the widest one, the naive reference). "auto" takes "packed" where the
        model allows it, else "grouped": the benchmark measured both.
      progress: show a progress bar with ETA over chunks of steps.
      on_chunk: called as on_chunk(next_step, state) after every chunk (vmap mode) or every member (serial mode,
        where the "step" counts finished members and the state holds every member's curves), e.g. to checkpoint.
      restore: resumes at `start_step` from restore(template), where template is the `jax.eval_shape` of the
        state on_chunk receives: vmap mode continues at that loop step, serial mode after that many members.
    """
    validate(config)  # A Config built directly, not via `replace`, has not been validated yet.
    if config.method == "min_norm":  # No training: the read-out is solved in closed form.
        return solve_sweep(config)
    mode = mode or config.mode
    if start_step and restore is None:
        raise ConfigError(f"start_step={start_step} is not allowed without restore: a run starts at 0 unless it "
                          f"resumes a checkpoint")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if scheme == "auto":
        scheme = "packed" if packed_form(config.model, config.depth) else "grouped"
    if scheme == "packed" and not packed_form(config.model, config.depth):
        raise ValueError(f"scheme 'packed' needs a one-hidden-layer model, not {config.model} of depth {config.depth}")
    dataset = load_dataset(config)
    setup = (config, dataset, shared_data(dataset, config), train_spec(config, dataset), expand_members(config))
    n_members = len(setup[4]["width"])
    bars = []

    def make_bar():
        # Made after restoring, so a refused checkpoint prints its one-line error and nothing else.
        total, done = config.steps, start_step  # vmap: loop steps; serial: members times their steps.
        if mode == "serial":
            total, done = config.steps * n_members, start_step * config.steps
        bars.append(_progress_bar(progress, total, f"{mode} {n_members} members", min(done, total)))
        return bars[-1]

    # vmap mode splits the member axis over every local device (a no-op with one).
    options = _RunOptions(restore, start_step, on_chunk, jax.local_devices() if mode == "vmap" else None)
    try:
        if mode == "serial":
            outcome = _run_serial(*setup, make_bar, options)
        elif scheme == "packed":
            outcome = _run_packed(*setup, make_bar, options)
        else:
            outcome = _run_grouped(*setup, make_bar, options, max_groups=1 if scheme == "padded" else 8)
    finally:
        for bar in bars:
            if bar is not None:
                bar.close()
    return SweepResult(coords=setup[4], eval_steps=np.asarray(setup[3].eval_steps),
                       scheme=scheme if mode == "vmap" else "serial", **outcome)


class _RunOptions(NamedTuple):
    """How a sweep runner starts and reports: resume source and step, per-chunk callback, devices to split over."""

    restore: Callable | None
    start_step: int
    on_chunk: Callable | None
    devices: Sequence[jax.Device] | None  # vmap mode: the local devices; serial mode: None.


def _train_resumable(program, spec, params, groups, data, make_bar, options, fresh_states=None):
    restore, start_step, on_chunk, devices = options
    states = fresh_states if restore is None else restore(jax.eval_shape(program.init, params, groups))
    return train(program, spec, params, groups, data, states=states, start_step=start_step, progress=make_bar(),
                 on_chunk=on_chunk, devices=devices)


def _run_grouped(config, dataset, data, spec, coords, make_bar, options, *, max_groups):
    plan = plan_groups(coords["width"], cost=lambda w: _member_cost(config, spec, w),
                                target_efficiency=0.85 if max_groups > 1 else 0.0, max_groups=max_groups)
    params, groups = zip(*(stack_members(coords, index, dataset, config, spec, width)
                           for index, width in zip(plan.indices, plan.max_widths)))
    program = build_program(spec)
    outcome = _train_resumable(program, spec, params, groups, data, make_bar, options)
    inverse = np.argsort(np.concatenate(plan.indices))
    curves = {k: np.concatenate([np.asarray(s.curves[k]) for s in outcome.states])[inverse] for k in CURVES}
    diverged = np.concatenate([np.asarray(s.diverged_step) for s in outcome.states])[inverse]
    return dict(curves=curves, diverged_step=diverged, group_widths=plan.max_widths, n_compiles=program.trace_count(),
                padding_efficiency=plan.efficiency, **_timing(outcome))


def _run_serial(config, dataset, data, spec, coords, make_bar, options):
    """Members one after another; the state checkpointed after each holds every member's curves (NaN until
    trained) and divergence step, so a resumed run skips the members already done."""
    restore, n_done, on_chunk, _ = options
    n_members, n_evals = len(coords["width"]), len(spec.eval_steps)
    record = {"curves": {k: np.full((n_members, n_evals), np.nan, np.float32) for k in CURVES},
              "diverged_step": np.full(n_members, -1, np.int32)}
    if restore is not None:
        template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), record)
        restored = restore(template)  # Its dicts come back with sorted keys: rebuilt in CURVES order.
        record = {"curves": {k: np.array(restored["curves"][k]) for k in CURVES},
                  "diverged_step": np.array(restored["diverged_step"])}
    bar = make_bar()
    programs, compile_s, run_s = {}, 0.0, 0.0
    for i in range(n_done, n_members):
        width = int(coords["width"][i])
        program = programs.setdefault(width, build_program(spec, batched=False))
        params, members = _unstack(stack_members(coords, np.array([i]), dataset, config, spec, width), 0)
        outcome = train(program, spec, (params,), (members,), data, progress=bar)
        for k in CURVES:
            record["curves"][k][i] = np.asarray(outcome.states[0].curves[k])
        record["diverged_step"][i] = int(outcome.states[0].diverged_step)
        compile_s, run_s = compile_s + outcome.compile_seconds, run_s + outcome.run_seconds
        if on_chunk is not None:
            on_chunk(i + 1, record)
    return dict(curves=record["curves"], diverged_step=record["diverged_step"],
                group_widths=tuple(sorted(set(coords["width"].tolist()))),
                n_compiles=sum(p.trace_count() for p in programs.values()), compile_seconds=compile_s,
                run_seconds=run_s)


def _run_packed(config, dataset, data, spec, coords, make_bar, options):
    n_parts = parts_per_stream(len(set(batch_stream_keys(coords))), len(options.devices or ()))
    setup = packed_setup(config, dataset, spec, coords, n_parts)
    program = packed_program(setup)
    outcome = _train_resumable(program, spec, (setup.params,), (setup.streams,), packed_data(data), make_bar,
                               options, (initial_states(setup.model, setup.params, setup.streams),))
    state = outcome.states[0]
    curves = {k: np.asarray(state.curves)[setup.stream_of, setup.slot_of, i] for i, k in enumerate(CURVES)}
    diverged = np.asarray(state.diverged_step)[setup.stream_of, setup.slot_of]
    return dict(curves=curves, diverged_step=diverged, group_widths=(setup.model.layout.n_units,),
                n_compiles=program.trace_count(), padding_efficiency=setup.model.efficiency, **_timing(outcome))


def _timing(outcome) -> dict[str, Any]:
    """The SweepResult fields of one trained program's timings and device count."""
    return dict(compile_seconds=outcome.compile_seconds, run_seconds=outcome.run_seconds,
                n_devices=outcome.n_devices)


def _member_cost(config: Config, spec: TrainSpec, width: int) -> float:
    shape = spec.image.shape if spec.image is not None else (spec.input_dim,)
    return float(forward_macs(config.model, int(width), spec.input_dim, spec.n_classes, config.depth,
                              input_shape=shape))


def _progress_bar(enabled: bool, total: int, description: str, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit="step", dynamic_ncols=True)
