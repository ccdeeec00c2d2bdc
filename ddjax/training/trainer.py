"""The one-program trainer's engine: members stacked with vmap, steps in `lax.scan`, evaluation at log-spaced steps.

A layout's per-member (or per-stream) functions (`ddjax.training.member`, `ddjax.training.streams`) are lifted
over a stacked member axis with `jax.vmap` (or left alone in serial mode) by `build_program`, which runs any number
of groups of members, each padded to its own width, inside a single jitted chunk of steps. The Python loop in
`train` only walks chunks, so training can be checkpointed and resumed at chunk boundaries; given several
devices, `train` splits every group's member axis over them (`ddjax.training.sharding`).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from ddjax.training import hosts, sharding
from ddjax.training.member import member_init, member_record, member_step
from ddjax.training.engine import State
from ddjax.training.spec import Members, SharedData, TrainSpec, to_stored_dtype


class Program(NamedTuple):
    """Jitted init and chunk functions for a tuple of member groups; `trace_count()` counts chunk traces."""

    init: Callable[[tuple[Any, ...], tuple[Members, ...]], tuple[State, ...]]
    run_chunk: Callable[[tuple[State, ...], tuple[Members, ...], SharedData, Any], tuple[State, ...]]
    trace_count: Callable[[], int]
    executables: dict  # Compiled `run_chunk`, keyed by the shapes and dtypes of its arguments.

    def compiled_chunk(self, *args):
        """The compiled `run_chunk` for these arguments' shapes, compiling (and tracing) only on first use."""
        signature = str(jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a), getattr(a, "sharding", None)),
                                     args))
        if signature not in self.executables:
            self.executables[signature] = self.run_chunk.lower(*args).compile()
        return self.executables[signature]


def build_program(spec: TrainSpec, *, batched: bool = True, functions: tuple[Callable, ...] | None = None,
                  record_lift: Callable | None = None) -> Program:
    """Compile-once functions that train a tuple of member groups side by side.

    With `batched=True` each group's fields carry a leading member axis and the member functions are vmapped;
    with `batched=False` (serial mode) each group is a single member without that axis. `functions` replaces the
    per-member (init, step, record) functions, e.g. by the per-stream ones of the packed layout. A chunk runs steps
    `start .. start + chunk_steps - 1`; step t first records the evaluation "after t steps" if t is an eval step,
    then (if t < steps) applies update t, so `steps + 1` loop steps complete a run. `record_lift` (batched only)
    lifts the record function instead of `jax.vmap`, e.g. `map_members`.
    """
    lift = jax.vmap if batched else (lambda f, **_: f)
    eval_steps = jnp.asarray(spec.eval_steps)
    traces = [0]
    init_one, step_one, record_one = functions or (functools.partial(f, spec) for f in (member_init, member_step,
                                                                                         member_record))

    def init(initial, groups):
        return tuple(lift(init_one)(v, m) for v, m in zip(initial, groups))

    def run_chunk(states, groups, data, start):
        traces[0] += 1
        step_fn = lift(step_one, in_axes=(0, 0, None, None))
        record_fn = (record_lift if batched and record_lift else lift)(record_one, in_axes=(0, 0, None, None))

        def record_all(states, index):
            return tuple(record_fn(s, m, data, index) for s, m in zip(states, groups))

        def step_all(states, step):
            return tuple(step_fn(s, m, data, step) for s, m in zip(states, groups))

        def body(states, step):
            index = jnp.sum(eval_steps < step)  # A vector compare: compiles smaller than searchsorted's loop.
            is_eval = jnp.any(eval_steps == step)
            # One cond per phase for all groups: the predicates are shared by every member, so they stay real
            # branches under vmap, and a single branch per phase keeps compile time flat in the group count.
            states = jax.lax.cond(is_eval, lambda s: record_all(s, index), lambda s: s, states)
            states = jax.lax.cond(step < spec.steps, lambda s: step_all(s, step), lambda s: s, states)
            return states, None

        states, _ = jax.lax.scan(body, states, start + jnp.arange(spec.chunk_steps))
        return states

    # CPU buffers cannot be donated; asking would only print a warning.
    donate = () if jax.default_backend() == "cpu" else (0,)
    return Program(jax.jit(init), jax.jit(run_chunk, donate_argnums=donate), lambda: traces[0], {})


def map_members(f: Callable, in_axes: tuple) -> Callable:
    """`f` lifted over a leading member axis like `jax.vmap(f, in_axes)`, but one member after another
    (`lax.map`): each member's operations keep their unbatched shapes. `in_axes` holds 0 or None per argument."""
    def mapped(*args):
        def one(members):
            it = iter(members)
            return f(*(next(it) if axis == 0 else a for a, axis in zip(args, in_axes)))

        return jax.lax.map(one, [a for a, axis in zip(args, in_axes) if axis == 0])

    return mapped


class TrainOutcome(NamedTuple):
    """Final states of every group, timings, and the number of devices the member axis was split over."""

    states: tuple[State, ...]
    compile_seconds: float
    run_seconds: float
    n_devices: int = 1


def train(program: Program, spec: TrainSpec, initial: tuple[Any, ...] | None, groups: tuple[Members, ...],
          data: SharedData, *, states: tuple[State, ...] | None = None, start_step: int = 0,
          on_chunk: Callable[[int, tuple[State, ...]], None] | None = None,
          progress: Any = None, devices: Sequence[jax.Device] | None = None) -> TrainOutcome:
    """Runs `program` from `start_step` to the end, chunk by chunk, from `states` or from `initial` values.

    Args:
      initial: per group, the stacked initial values its init function takes: the family's variables
        (`member_init`), or a layout's packed parameters.
      on_chunk: called as on_chunk(next_step, states) after every chunk, e.g. to checkpoint.
      progress: a tqdm-like bar to advance by the steps of each chunk, or None.
      devices: batched programs only: split every group's member axis over (up to) these devices.
    """
    t0 = time.perf_counter()
    initial, groups, data, states = to_stored_dtype(spec.precision, (initial, groups, data, states))
    sizes = [sharding.leading_size(group) for group in groups] if devices else []
    mesh = sharding.member_mesh(devices, max(sizes)) if devices else None
    if mesh is not None:  # Each group's member axis is padded and split on its own; the data is replicated.
        groups, data = sharding.spread_each(groups, mesh), sharding.replicate(data, mesh)
        if states is None:  # Only what init reads is placed: given states, the initial values are not used.
            initial = sharding.spread_each(initial, mesh)
        else:
            states = sharding.spread_each(states, mesh)

    def unpadded(states):
        # A multi-host job first gathers every host's members (on every host: it is a collective).
        states = hosts.gather(states)
        return states if mesh is None else tuple(sharding.unpad(s, n) for s, n in zip(states, sizes))

    if states is None:
        states = program.init(initial, groups)
    if mesh is not None:  # Pins every state leaf (the chunk's input and output) to the member split.
        states = sharding.split(states, mesh)
    start = jnp.int32(start_step)
    run_chunk = program.compiled_chunk(states, groups, data, start)
    jax.block_until_ready(states)
    compile_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    for chunk_start in range(start_step, spec.steps + 1, spec.chunk_steps):
        states = run_chunk(states, groups, data, jnp.int32(chunk_start))
        if mesh is not None:
            states = sharding.split(states, mesh)
        next_step = min(chunk_start + spec.chunk_steps, spec.steps + 1)
        if progress is not None:
            jax.block_until_ready(states)
            progress.update(min(next_step, spec.steps) - min(chunk_start, spec.steps))
        if on_chunk is not None:
            on_chunk(next_step, unpadded(states))
    jax.block_until_ready(states)
    return TrainOutcome(unpadded(states), compile_seconds, time.perf_counter() - t1, mesh.size if mesh else 1)
