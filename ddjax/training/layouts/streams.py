"""What the two stream layouts (packed, block-packed) share: cutting streams into parts and consecutive programs
that fit the devices and the memory budget, and training a `ddjax.training.streams.StreamSetup` as a plan."""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from ddjax.training.layouts.base import Context, MemberCurves, Plan, TrainedProgram, trained_record
from ddjax.training.memory import chunk_indices, chunks_needed, member_capacity
from ddjax.training.packed.layout import parts_per_stream
from ddjax.training.streams import StreamSetup, batch_stream_keys, initial_states, packed_data, stream_program


def first_parts(context: Context, n_slots: int) -> int:
    """The parts per batch stream that fill the devices (`ddjax.training.packed.layout.parts_per_stream`)."""
    n_batch_streams = len(set(batch_stream_keys(context.coords)))
    return min(parts_per_stream(n_batch_streams, len(context.devices or ())), n_slots)


def plan_parts(context: Context, n_slots: int, first: int,
               part_load: Callable[[int], tuple[int, int]]) -> tuple[int, int]:
    """Parts per batch stream and consecutive programs of a stream sweep.

    `first` parts (`first_parts`, or fewer where parts waste much) when the whole sweep fits in one program.
    Else, among the part counts whose programs fit, the one with the least estimated time: programs x ceil(streams a program / devices) x
    units a stream (about 1 / parts), so that a split sweep keeps every device busy (a program of one whole
    stream would leave the others idle). `part_load(n_parts)` gives the bytes and the members of the largest part.
    """
    needs, budget = context.memory
    capacity, max_members = member_capacity(needs, budget), context.config.max_members_per_program
    n_batch_streams = len(set(batch_stream_keys(context.coords)))
    n_devices = len(context.devices or ())
    best = None
    for n_parts in range(first, n_slots + 1):
        part_bytes, per_part = part_load(n_parts)
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
        return n_slots, n_batch_streams * n_slots
    return best[1], best[2]


def stream_plan(context: Context, setup: StreamSetup, n_programs: int, group_widths: tuple[int, ...]) -> Plan:
    """The plan training `setup`'s streams as `n_programs` consecutive programs of equal shapes."""
    program = stream_program(setup.model)
    data = packed_data(context.data)
    n_streams = len(setup.streams.seed)
    chunks = [np.arange(n_streams)] if n_programs == 1 else chunk_indices(n_streams, n_programs)

    def inputs(j):
        if n_programs == 1:
            params, streams = setup.params, setup.streams
        else:
            params, streams = (jax.tree.map(lambda a: a[chunks[j]], tree) for tree in (setup.params, setup.streams))
        return TrainedProgram(program, context.spec, (params,), (streams,), data,
                              (initial_states(setup.model, params, streams),))

    def member_curves(j, states):
        (state,) = states
        position = {int(stream): i for i, stream in enumerate(chunks[j])}  # A padding copy maps to its original.
        members = np.flatnonzero(np.isin(setup.stream_of, chunks[j]))
        rows, slots = np.array([position[int(s)] for s in setup.stream_of[members]]), setup.slot_of[members]
        return MemberCurves(members, {k: np.asarray(v)[rows, slots] for k, v in state.curves.items()},
                            np.asarray(state.diverged_step)[rows, slots])

    return Plan(n_programs, inputs, member_curves, group_widths, setup.model.efficiency, program.trace_count,
                trained_record(context.spec), context.devices)
