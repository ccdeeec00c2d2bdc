"""The grouped layout: members padded to the widest of a few width groups, every group vmapped in one program.

"padded" is the grouped layout with one group (every member padded to the widest), the naive reference. A
family that cannot be padded (a user's module) trains one group, and one program, per width. A sweep over the
memory budget is cut into consecutive programs of equal shapes (`grouped_programs`).
"""

from __future__ import annotations

import numpy as np

from ddjax.training.layouts.base import (Context, Layout, MemberCurves, Plan, TrainedProgram, method_refusal,
                                        trained_record)
from ddjax.training.members import stack_groups
from ddjax.training.memory import chunk_indices, chunks_needed, member_capacity
from ddjax.training.spec import curve_names
from ddjax.training.trainer import Program, build_program
from ddjax.training.width_groups import GroupPlan, plan_groups

TARGET_EFFICIENCY = 0.85
MAX_GROUPS = 8


def plan_grouped(context: Context, *, max_groups: int = MAX_GROUPS, group_cost: float | None = None,
                 program: Program | None = None) -> Plan:
    """The grouped layout's programs: the fewest width groups reaching `TARGET_EFFICIENCY` (one with
    `max_groups=1`; more with `group_cost`, see `plan_groups`), cut by memory."""
    config, spec, coords = context.config, context.spec, context.coords
    target = TARGET_EFFICIENCY if max_groups > 1 else 0.0
    paddable = spec.model.padding is None or spec.model.padding.exact
    if not paddable:  # A module whose padding is not exact: every width in a group of its own, none padded.
        target, max_groups = np.inf, len(np.unique(coords["width"]))  # A target never met: one group a width.
    groups = plan_groups(coords["width"], cost=context.cost.macs, target_efficiency=target,
                         max_groups=max_groups, group_cost=group_cost)
    program = program or build_program(spec)
    programs = grouped_programs(groups, context.memory, config.max_members_per_program)
    if not paddable:  # One program a width: XLA's compile time grew faster than the widths one program held.
        programs = [(group,) for chunks in programs for group in chunks]

    def inputs(j):
        initial, members = zip(*stack_groups(coords, list(programs[j]), context.dataset, config, spec))
        return TrainedProgram(program, spec, initial, members, context.data)

    def member_curves(j, states):
        return MemberCurves(np.concatenate([index for index, _ in programs[j]]),
                            {k: np.concatenate([np.asarray(s.curves[k]) for s in states]) for k in curve_names(spec)},
                            np.concatenate([np.asarray(s.diverged_step) for s in states]))

    return Plan(len(programs), inputs, member_curves, groups.max_widths, groups.efficiency, program.trace_count,
                trained_record(spec), context.devices)


def grouped_programs(groups: GroupPlan, memory, max_members: int) -> list[tuple[tuple[np.ndarray, int], ...]]:
    """The consecutive programs of a grouped sweep: each a tuple of (member indices, padded width) per group.

    One program when everything fits. Else every group is cut into the same number of equal chunks (the last
    padded with copies), and program j trains chunk j of every group, so all programs share one set of shapes
    and compile once; if even one member of each group side by side does not fit, each group runs on its own.
    """
    needs, budget = memory
    capacity, counts = member_capacity(needs, budget), [len(index) for index in groups.indices]
    sizes = [needs.member_bytes(width) for width in groups.max_widths]
    n_programs = chunks_needed(counts, sizes, capacity, max_members)
    if n_programs is not None:
        cuts = [[index[chunk] for chunk in chunk_indices(len(index), n_programs)] for index in groups.indices]
        return [tuple(zip((cut[j] for cut in cuts), groups.max_widths)) for j in range(n_programs)]
    programs = []
    for index, width, size in zip(groups.indices, groups.max_widths, sizes):
        n_alone = chunks_needed([len(index)], [size], capacity, max_members) or len(index)
        programs += [((index[chunk], width),) for chunk in chunk_indices(len(index), n_alone)]
    return programs


GROUPED = Layout("grouped", lambda config: method_refusal(config, "grouped"), plan_grouped)
# A family whose padding is not exact trains one program a width here too.
PADDED = Layout("padded", lambda config: method_refusal(config, "padded"),
                lambda context: plan_grouped(context, max_groups=1))
