"""A sweep: named axes -> members -> width groups -> one trainer program -> stacked curves."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from ddjax.config import Config, ConfigError, validate
from ddjax.data.registry import load_dataset
from ddjax.members import expand_members, shared_data, stack_members, train_spec
from ddjax.models.registry import forward_macs, model_info, packed_form
from ddjax.result import SweepResult
from ddjax.solvers.closed_form import solve_sweep
from ddjax.solvers.gradient_descent import descend_sweep
from ddjax.training import blockpacked
from ddjax.training.memory import (Budget, Needs, chunk_indices, chunks_needed, device_budget, member_capacity,
                                   refuse_oversize, sweep_needs)
from ddjax.training.packed.layout import balanced_parts, choose_slot_size, parts_per_stream, slot_keys
from ddjax.training.packed.setup import batch_stream_keys, packed_program, packed_setup
from ddjax.training.packed.streams import initial_states, packed_data
from ddjax.training.trainer import CURVES, TrainSpec, build_program, curve_names, stored_dtype, train
from ddjax.training.width_groups import plan_groups


def _unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


SCHEMES = ("auto", "packed", "blockpacked", "grouped", "padded")


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
      scheme: how vmap mode lays members out: "packed" (one-hidden-layer families: every member's units in one
        wide layer, see `ddjax.training.packed`), "grouped" (members padded to the widest of a few width groups),
        "padded" (every member padded to the widest one, the naive reference), "blockpacked" (MLPs of any depth:
        width buckets of block-diagonal hidden layers, see `ddjax.training.blockpacked`). "auto" takes "packed"
        where the model allows it, "blockpacked" where it allows that (deeper MLPs), else "grouped": the benchmark
        measured them.
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
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if config.validation_fraction > 0 and scheme in ("packed", "blockpacked"):
        raise ConfigError(f"validation_fraction={config.validation_fraction} is not allowed with scheme {scheme!r}: "
                          f"held-out rows are recorded by the grouped, padded and serial layouts only")
    if scheme == "auto":
        model = model_info(config.model)
        scheme = ("grouped" if config.validation_fraction > 0 else  # The packed layouts record no held-out rows.
                  "packed" if packed_form(config.model, config.depth) else
                  "blockpacked" if model.block_packed else "grouped")
    if scheme == "blockpacked" and not model_info(config.model).block_packed:
        raise ValueError(f"scheme 'blockpacked' needs an MLP, not {config.model}")
    if scheme == "packed" and not packed_form(config.model, config.depth):
        raise ValueError(f"scheme 'packed' needs a one-hidden-layer model, not {config.model} of depth {config.depth}")
    dataset = load_dataset(config)
    spec = train_spec(config, dataset)
    devices = _devices(config, mode)
    memory = _memory(config, dataset, spec, devices)  # Refuses a member that cannot fit before allocating it.
    setup = (config, dataset, shared_data(dataset, config), spec, expand_members(config))
    n_members = len(setup[4]["width"])
    bars = []

    def make_bar():
        # Made after restoring, so a refused checkpoint prints its one-line error and nothing else.
        total, done = config.steps, start_step  # vmap: loop steps; serial: members times their steps.
        if mode == "serial":
            total, done = config.steps * n_members, start_step * config.steps
        bars.append(_progress_bar(progress, total, f"{mode} {n_members} members", min(done, total)))
        return bars[-1]

    # vmap mode splits the member axis over every device, every host's in a multi-host job (a no-op with one).
    options = _RunOptions(restore, start_step, on_chunk, devices if mode == "vmap" else None)
    try:
        if mode == "serial":
            outcome = _run_serial(*setup, make_bar, options)
        elif scheme == "packed":
            outcome = _run_packed(*setup, make_bar, options, memory)
        elif scheme == "blockpacked":  # Not split by memory planning: it trains as one program.
            outcome = _run_blockpacked(*setup, make_bar, options)
        else:
            outcome = _run_grouped(*setup, make_bar, options, memory, max_groups=1 if scheme == "padded" else 8)
    finally:
        for bar in bars:
            if bar is not None:
                bar.close()
    return SweepResult(coords=setup[4], eval_steps=np.asarray(setup[3].eval_steps),
                       scheme=scheme if mode == "vmap" else "serial", **outcome)


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


class _RunOptions(NamedTuple):
    """How a sweep runner starts and reports: resume source and step, per-chunk callback, devices to split over."""

    restore: Callable | None
    start_step: int
    on_chunk: Callable | None
    devices: Sequence[jax.Device] | None  # vmap mode: every host's devices; serial mode: None.


def _train_resumable(program, spec, initial, groups, data, make_bar, options, fresh_states=None):
    restore, start_step, on_chunk, devices = options
    states = fresh_states if restore is None else restore(jax.eval_shape(program.init, initial, groups))
    return train(program, spec, initial, groups, data, states=states, start_step=start_step, progress=make_bar(),
                 on_chunk=on_chunk, devices=devices)


def _run_grouped(config, dataset, data, spec, coords, make_bar, options, memory, *, max_groups):
    target, paddable = (0.85 if max_groups > 1 else 0.0), model_info(config.model).paddable
    if not paddable:  # A user's module: every width in a group of its own, none padded.
        if max_groups == 1:
            raise ValueError(f"scheme 'padded' needs a family that can be padded, not {config.model}")
        target, max_groups = np.inf, len(np.unique(coords["width"]))  # A target never met: one group a width.
    plan = plan_groups(coords["width"], cost=lambda w: _member_cost(config, spec, w), target_efficiency=target,
                       max_groups=max_groups)
    program = build_program(spec)
    programs = _grouped_programs(plan, memory, config.max_members_per_program)
    if not paddable:  # One program a width: XLA's compile time grew faster than the widths one program held.
        programs = [(group,) for groups in programs for group in groups]
    if len(programs) > 1:
        return _run_consecutive(programs, lambda chunks: _train_grouped_chunk(program, config, dataset, data, spec,
                                                                              coords, chunks, options.devices),
                                coords, spec, make_bar, options, program, plan.efficiency, plan.max_widths)
    initial, groups = zip(*(stack_members(coords, index, dataset, config, spec, width)
                            for index, width in zip(plan.indices, plan.max_widths)))
    outcome = _train_resumable(program, spec, initial, groups, data, make_bar, options)
    inverse = np.argsort(np.concatenate(plan.indices))
    curves = {k: np.concatenate([np.asarray(s.curves[k]) for s in outcome.states])[inverse]
              for k in curve_names(spec)}
    diverged = np.concatenate([np.asarray(s.diverged_step) for s in outcome.states])[inverse]
    return dict(curves=curves, diverged_step=diverged, group_widths=plan.max_widths, n_compiles=program.trace_count(),
                padding_efficiency=plan.efficiency, **_timing(outcome))


def _grouped_programs(plan, memory, max_members: int) -> list[tuple[tuple[np.ndarray, int], ...]]:
    """The consecutive programs of a grouped sweep: each a tuple of (member indices, padded width) per group.

    One program when everything fits. Else every group is cut into the same number of equal chunks (the last
    padded with copies), and program j trains chunk j of every group, so all programs share one set of shapes
    and compile once; if even one member of each group side by side does not fit, each group runs on its own.
    """
    needs, budget = memory
    capacity, counts = member_capacity(needs, budget), [len(index) for index in plan.indices]
    sizes = [needs.member_bytes(width) for width in plan.max_widths]
    n_programs = chunks_needed(counts, sizes, capacity, max_members)
    if n_programs is not None:
        cuts = [[index[chunk] for chunk in chunk_indices(len(index), n_programs)] for index in plan.indices]
        return [tuple(zip((cut[j] for cut in cuts), plan.max_widths)) for j in range(n_programs)]
    programs = []
    for index, width, size in zip(plan.indices, plan.max_widths, sizes):
        n_alone = chunks_needed([len(index)], [size], capacity, max_members) or len(index)
        programs += [((index[chunk], width),) for chunk in chunk_indices(len(index), n_alone)]
    return programs


def _train_grouped_chunk(program, config, dataset, data, spec, coords, chunks, devices):
    """Trains one program of `_grouped_programs`; returns its members' indices, curves and divergence steps."""
    initial, groups = zip(*(stack_members(coords, index, dataset, config, spec, width) for index, width in chunks))
    outcome = train(program, spec, initial, groups, data, devices=devices)
    curves = {k: np.concatenate([np.asarray(s.curves[k]) for s in outcome.states]) for k in curve_names(spec)}
    diverged = np.concatenate([np.asarray(s.diverged_step) for s in outcome.states])
    return np.concatenate([index for index, _ in chunks]), curves, diverged, outcome


def _run_consecutive(programs, train_one, coords, spec, make_bar, options, program, efficiency, group_widths):
    """Trains `programs` one after another with `train_one(program)` and gathers every member's curves.

    The state checkpointed after each program (`on_chunk(programs done, record)`) holds every member's curves
    (NaN until trained) and divergence step, as in serial mode, so a resumed run skips the programs done; it
    resumes correctly on the same devices and budget (the same split).
    """
    restore, n_done, on_chunk, _ = options
    record = _empty_record(len(coords["width"]), len(spec.eval_steps), stored_dtype(spec.precision),
                           curve_names(spec))
    if restore is not None:
        record = _restored_record(restore, record)
    bar = make_bar()
    compile_s = run_s = 0.0
    n_devices = 1
    for j in range(n_done, len(programs)):
        members, curves, diverged, outcome = train_one(programs[j])
        for k in curves:
            record["curves"][k][members] = curves[k]
        record["diverged_step"][members] = diverged
        compile_s, run_s, n_devices = (compile_s + outcome.compile_seconds, run_s + outcome.run_seconds,
                                       outcome.n_devices)
        if bar is not None:  # The bar counts steps; each program advances it by its share.
            bar.update(spec.steps * (j + 1) // len(programs) - spec.steps * j // len(programs))
        if on_chunk is not None:
            on_chunk(j + 1, record)
    return dict(curves=record["curves"], diverged_step=record["diverged_step"],
                group_widths=group_widths, n_compiles=program.trace_count(), padding_efficiency=efficiency, compile_seconds=compile_s,
                run_seconds=run_s, n_devices=n_devices, n_programs=len(programs))


def _empty_record(n_members: int, n_evals: int, dtype: Any, names: tuple[str, ...] = CURVES) -> dict[str, Any]:
    return {"curves": {k: np.full((n_members, n_evals), np.nan, dtype) for k in names},
            "diverged_step": np.full(n_members, -1, np.int32)}


def _restored_record(restore, record) -> dict[str, Any]:
    template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), record)
    restored = restore(template)  # Its dicts come back with sorted keys: rebuilt in the record's order.
    return {"curves": {k: np.array(restored["curves"][k]) for k in record["curves"]},
            "diverged_step": np.array(restored["diverged_step"])}


def _run_serial(config, dataset, data, spec, coords, make_bar, options):
    """Members one after another; the state checkpointed after each holds every member's curves (NaN until
    trained) and divergence step, so a resumed run skips the members already done."""
    restore, n_done, on_chunk, _ = options
    n_members = len(coords["width"])
    record = _empty_record(n_members, len(spec.eval_steps), stored_dtype(spec.precision), curve_names(spec))
    if restore is not None:
        record = _restored_record(restore, record)
    bar = make_bar()
    programs, compile_s, run_s = {}, 0.0, 0.0
    for i in range(n_done, n_members):
        width = int(coords["width"][i])
        program = programs.setdefault(width, build_program(spec, batched=False))
        initial, members = _unstack(stack_members(coords, np.array([i]), dataset, config, spec, width), 0)
        outcome = train(program, spec, (initial,), (members,), data, progress=bar)
        for k in record["curves"]:
            record["curves"][k][i] = np.asarray(outcome.states[0].curves[k])
        record["diverged_step"][i] = int(outcome.states[0].diverged_step)
        compile_s, run_s = compile_s + outcome.compile_seconds, run_s + outcome.run_seconds
        if on_chunk is not None:
            on_chunk(i + 1, record)
    return dict(curves=record["curves"], diverged_step=record["diverged_step"],
                group_widths=tuple(sorted(set(coords["width"].tolist()))),
                n_compiles=sum(p.trace_count() for p in programs.values()), compile_seconds=compile_s,
                run_seconds=run_s)


def _run_packed(config, dataset, data, spec, coords, make_bar, options, memory):
    n_parts, n_programs = _packed_plan(config, spec, coords, len(options.devices or ()), memory)
    setup = packed_setup(config, dataset, spec, coords, n_parts)
    program = packed_program(setup)
    if n_programs > 1:
        chunks = chunk_indices(len(setup.params), n_programs)
        return _run_consecutive(chunks, lambda chunk: _train_packed_chunk(program, setup, data, spec, chunk,
                                                                          options.devices),
                                coords, spec, make_bar, options, program, setup.model.efficiency,
                                (setup.model.layout.n_units,))
    outcome = _train_resumable(program, spec, (setup.params,), (setup.streams,), packed_data(data), make_bar,
                               options, (initial_states(setup.model, setup.params, setup.streams),))
    state = outcome.states[0]
    curves = {k: np.asarray(state.curves)[setup.stream_of, setup.slot_of, i] for i, k in enumerate(CURVES)}
    diverged = np.asarray(state.diverged_step)[setup.stream_of, setup.slot_of]
    return dict(curves=curves, diverged_step=diverged, group_widths=(setup.model.layout.n_units,),
                n_compiles=program.trace_count(), padding_efficiency=setup.model.efficiency, **_timing(outcome))


def _run_blockpacked(config, dataset, data, spec, coords, make_bar, options):
    n_parts = parts_per_stream(len(set(batch_stream_keys(coords))), len(options.devices or ()))
    n_parts = blockpacked.useful_parts(config, spec, coords, n_parts)
    setup = blockpacked.block_setup(config, dataset, spec, coords, n_parts)
    program = blockpacked.block_program(setup)
    outcome = _train_resumable(program, spec, (setup.params,), (setup.streams,), packed_data(data), make_bar,
                               options, (blockpacked.initial_states(setup.model, setup.params, setup.streams),))
    state = outcome.states[0]
    curves = {k: np.asarray(state.curves)[setup.stream_of, setup.slot_of, i] for i, k in enumerate(CURVES)}
    diverged = np.asarray(state.diverged_step)[setup.stream_of, setup.slot_of]
    return dict(curves=curves, diverged_step=diverged, group_widths=tuple(b.size for b in setup.model.layout.buckets),
                n_compiles=program.trace_count(), padding_efficiency=setup.model.efficiency, **_timing(outcome))


def _packed_plan(config, spec, coords, n_devices, memory) -> tuple[int, int]:
    """Parts per batch stream and consecutive programs of a packed sweep.

    The fewest parts the devices need when the whole sweep fits in one program (the layout without memory
    planning). Else, among the part counts whose programs fit, the one with the least estimated time: programs x
    ceil(streams a program / devices) x units a stream (about 1 / parts), so that a split sweep keeps every device
    busy (a program of one whole stream would leave the others idle).
    """
    needs, budget = memory
    capacity, max_members = member_capacity(needs, budget), config.max_members_per_program
    n_batch_streams = len(set(batch_stream_keys(coords)))
    slots = list(dict.fromkeys(slot_keys(coords)))
    widths = np.array([key[0] for key in slots])
    slot_size = choose_slot_size(widths, spec.input_dim, spec.n_classes)
    first = min(parts_per_stream(n_batch_streams, n_devices), len(slots))
    best = None
    for n_parts in range(first, len(slots) + 1):
        parts = balanced_parts(widths, slot_size, n_parts)
        part_bytes = max(sum(needs.member_bytes(-(-int(w) // slot_size) * slot_size) for w in widths[part])
                         for part in parts)
        per_part = max(len(part) for part in parts)
        max_streams = max_members // per_part if max_members > 0 else 0
        if max_members > 0 and max_streams == 0:
            continue
        n_streams = n_batch_streams * n_parts
        n_programs = chunks_needed([n_streams], [part_bytes], capacity, max_streams)
        if n_programs == 1 and n_parts == first:
            return n_parts, 1
        if n_programs is not None:
            cost = n_programs * -(-(-(-n_streams // n_programs)) // max(n_devices, 1)) / n_parts
            if best is None or cost < best[0]:
                best = (cost, n_parts, n_programs)
    if best is None:  # One member a program: it fits (`refuse_oversize`).
        return len(slots), n_batch_streams * len(slots)
    return best[1], best[2]


def _train_packed_chunk(program, setup, data, spec, streams, devices):
    """Trains the packed streams at `streams` as one program; returns their members' indices, curves and
    divergence steps."""
    params = setup.params[streams]
    stream_data = jax.tree.map(lambda a: a[streams], setup.streams)
    outcome = train(program, spec, (params,), (stream_data,), packed_data(data), devices=devices,
                    states=(initial_states(setup.model, params, stream_data),))
    state = outcome.states[0]
    position = {int(stream): i for i, stream in enumerate(streams)}  # A padding copy maps to its original.
    members = np.flatnonzero(np.isin(setup.stream_of, streams))
    rows = np.array([position[int(s)] for s in setup.stream_of[members]])
    curves = {k: np.asarray(state.curves)[rows, setup.slot_of[members], i] for i, k in enumerate(CURVES)}
    return members, curves, np.asarray(state.diverged_step)[rows, setup.slot_of[members]], outcome


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
