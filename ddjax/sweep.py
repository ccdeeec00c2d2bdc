"""A sweep: named axes -> members -> width groups -> one trainer program -> stacked curves."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ddjax import grouping, sharding
from ddjax.config import AXES, Config, ConfigError, validate
from ddjax.data import Dataset, load_dataset, member_labels
from ddjax.models import Params, forward_macs, get_model
from ddjax.layout import balanced_parts, choose_slot_size, pack_params, part_layouts
from ddjax.packed import (PACKABLE_MODELS, PackedModel, Stream, initial_states, packed_data, stream_init, stream_record,
                          stream_step)
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
    group_widths: tuple[int, ...]  # Padded width of each group (packed: total units of a stream).
    compile_seconds: float
    run_seconds: float
    n_compiles: int
    scheme: str = "closed_form"  # "packed", "grouped", "padded", "serial" or "closed_form".
    padding_efficiency: float = 1.0  # Real hidden units / executed hidden units.
    n_devices: int = 1  # Devices the member axis was split over.

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


SCHEMES = ("auto", "packed", "blockpacked", "grouped", "padded")


def run_sweep(config: Config, *, mode: str | None = None, scheme: str = "auto", progress: bool = False,
              on_chunk: Callable[[int, Any], None] | None = None, restore: Callable[[Any], Any] | None = None,
              start_step: int = 0) -> SweepResult:
    """Trains every member of `config`'s grid and returns the stacked curves.

    With `config.method == "min_norm"` nothing is trained: `ddjax.closed_form` solves every read-out instead.

    Args:
      mode: "vmap" (all members in one compiled program, the member axis split over the local devices, see
        `ddjax.sharding`) or "serial" (one member at a time, each at its own width, sharing the member code);
        defaults to `config.mode`.
      scheme: how vmap mode lays members out: "packed" (one-hidden-layer families: every member's units in one
        wide layer, see `ddjax.packed`), "grouped" (members padded to the widest of a few width groups),
        "padded" (every member padded to the widest one, the naive reference), "blockpacked" (MLPs of any depth:
        width buckets of block-diagonal hidden layers, see `ddjax.blockpacked`). "auto" takes "packed" where the
        model allows it, "blockpacked" for deeper MLPs, else "grouped": the benchmark measured them.
      progress: show a progress bar with ETA over chunks of steps.
      on_chunk: called as on_chunk(next_step, state) after every chunk (vmap mode) or every member (serial mode,
        where the "step" counts finished members and the state holds every member's curves), e.g. to checkpoint.
      restore: resumes at `start_step` from restore(template), where template is the `jax.eval_shape` of the
        state on_chunk receives: vmap mode continues at that loop step, serial mode after that many members.
    """
    validate(config)  # A Config built directly, not via `replace`, has not been validated yet.
    if config.method == "min_norm":  # No training: the read-out is solved in closed form.
        from ddjax.closed_form import solve_sweep

        return solve_sweep(config)
    mode = mode or config.mode
    if start_step and restore is None:
        raise ConfigError(f"start_step={start_step} is not allowed without restore: a run starts at 0 unless it "
                          f"resumes a checkpoint")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if scheme == "auto":
        scheme = "packed" if config.model in PACKABLE_MODELS and config.depth == 1 else "grouped"
        scheme = "blockpacked" if scheme == "grouped" and config.model == "mlp" else scheme
    if scheme == "blockpacked" and config.model != "mlp":
        raise ValueError(f"scheme 'blockpacked' needs an MLP, not {config.model}")
    if scheme == "packed" and not (config.model in PACKABLE_MODELS and config.depth == 1):
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
        elif scheme == "blockpacked":
            outcome = _run_blockpacked(*setup, make_bar, options)
        else:
            outcome = _run_grouped(*setup, make_bar, options, max_groups=1 if scheme == "padded" else 8)
    finally:
        for bar in bars:
            if bar is not None:
                bar.close()
    return SweepResult(setup[4], np.asarray(setup[3].eval_steps), scheme=scheme if mode == "vmap" else "serial",
                       **outcome)


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
    plan = grouping.plan_groups(coords["width"], cost=lambda w: _member_cost(config, spec, w),
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


class PackedSetup(NamedTuple):
    """A sweep laid out as streams (seed, n_train, part) x slots (width, label noise, learning rate)."""

    model: PackedModel
    params: Any  # Packed parameters stacked over streams.
    streams: Stream
    stream_of: np.ndarray  # [member] stream index.
    slot_of: np.ndarray  # [member] member index within its stream.


def packed_setup(config: Config, dataset: Dataset, spec: TrainSpec, coords: dict[str, np.ndarray],
                 n_parts: int = 1) -> PackedSetup:
    """Lays out a cartesian sweep for `ddjax.packed`: every batch stream holds the same slots, cut into `n_parts`
    parts of nearly equal units (`ddjax.layout.balanced_parts`), one stream per batch stream and part."""
    stream_keys = _batch_stream_keys(coords)
    slot_keys = list(zip(coords["width"].tolist(), coords["label_noise"].tolist(), coords["learning_rate"].tolist()))
    batch_streams, slots = list(dict.fromkeys(stream_keys)), list(dict.fromkeys(slot_keys))
    widths, rates = np.array([w for w, _, _ in slots]), np.array([r for _, _, r in slots])
    slot_size = choose_slot_size(widths, spec.input_dim, spec.n_classes)
    parts = balanced_parts(widths, slot_size, min(n_parts, len(slots)))
    layouts = part_layouts(widths, slot_size, parts)
    part_of, index_in_part = np.zeros(len(slots), np.int64), np.zeros(len(slots), np.int64)
    for p, part in enumerate(parts):
        part_of[part], index_in_part[part] = p, np.arange(len(part))
    slot_index = np.array([slots.index(key) for key in slot_keys])  # [member] its slot key's index.
    stream_of = np.array([batch_streams.index(key) for key in stream_keys]) * len(parts) + part_of[slot_index]
    slot_of = index_in_part[slot_index]
    feature_key = "hidden" if config.model == "mlp" else "features"
    params, labels, row_rates = [], [], []
    for seed, n_train in batch_streams:
        for part, layout in zip(parts, layouts):
            members = [spec.model.init(seed, w, w, spec.input_dim, spec.n_classes) for w in widths[part]]
            params.append(pack_params(members, layout, feature_key))
            train_labels = [member_labels(dataset, n_train, slots[k][1], seed, config.data_seed)[:max(config.n_train)]
                            for k in part]
            part_labels = [np.concatenate([member, dataset.y_test]) for member in train_labels]
            labels.append(part_labels + part_labels[:1] * (len(layout.widths) - len(part)))
            member_rates = np.zeros(len(layout.widths))  # Extra members (no units) never update.
            member_rates[:len(part)] = rates[part]
            row_rates.append(member_rates[layout.row_member])
    n_streams = len(batch_streams) * len(parts)
    stream_data = Stream(seed=jnp.asarray(np.repeat([s for s, _ in batch_streams], len(parts)), jnp.uint32),
                         n_train=jnp.asarray(np.repeat([n for _, n in batch_streams], len(parts)), jnp.int32),
                         labels=jnp.asarray(np.array(labels), jnp.int32),
                         row_learning_rate=jnp.asarray(np.array(row_rates), jnp.float32),
                         part=jnp.asarray(np.arange(n_streams) % len(parts), jnp.int32))
    return PackedSetup(PackedModel(config.model, layouts, spec), np.stack(params), stream_data, stream_of, slot_of)


def _batch_stream_keys(coords: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """Each member's batch stream: (seed, n_train), the pair that fixes its minibatches."""
    return list(zip(coords["seed"].tolist(), coords["n_train"].tolist()))


def packed_program(setup: PackedSetup):
    """The one-program trainer over the streams of `setup`."""
    functions = tuple(functools.partial(f, setup.model) for f in (stream_init, stream_step, stream_record))
    return build_program(setup.model.spec, functions=functions)


def _run_packed(config, dataset, data, spec, coords, make_bar, options):
    n_parts = sharding.parts_per_stream(len(set(_batch_stream_keys(coords))), len(options.devices or ()))
    setup = packed_setup(config, dataset, spec, coords, n_parts)
    program = packed_program(setup)
    outcome = _train_resumable(program, spec, (setup.params,), (setup.streams,), packed_data(data), make_bar,
                               options, (initial_states(setup.model, setup.params, setup.streams),))
    state = outcome.states[0]
    curves = {k: np.asarray(state.curves)[setup.stream_of, setup.slot_of, i] for i, k in enumerate(CURVES)}
    diverged = np.asarray(state.diverged_step)[setup.stream_of, setup.slot_of]
    return dict(curves=curves, diverged_step=diverged, group_widths=(setup.model.layout.n_units,),
                n_compiles=program.trace_count(), padding_efficiency=setup.model.efficiency, **_timing(outcome))


# --- block-packed layout (deeper MLPs, ddjax.blockpacked) ---
def _run_blockpacked(config, dataset, data, spec, coords, make_bar, options):
    from ddjax import blockpacked

    n_parts = sharding.parts_per_stream(len(set(_batch_stream_keys(coords))), len(options.devices or ()))
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
# --- end block-packed ---


def _timing(outcome) -> dict[str, Any]:
    """The SweepResult fields of one trained program's timings and device count."""
    return dict(compile_seconds=outcome.compile_seconds, run_seconds=outcome.run_seconds,
                n_devices=outcome.n_devices)


def _member_cost(config: Config, spec: TrainSpec, width: int) -> float:
    return float(forward_macs(config.model, int(width), spec.input_dim, spec.n_classes, config.depth))


def _progress_bar(enabled: bool, total: int, description: str, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit="step", dynamic_ncols=True)
