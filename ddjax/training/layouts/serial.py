"""The serial layout: one member a program, each at its own width (one compile per distinct width), on one device,
sharing the grouped layout's member code unbatched. The reference every fast layout is tested against;
`mode="serial"` (`--mode serial`) is shorthand for it."""

from __future__ import annotations

import jax
import numpy as np

from ddjax.training.layouts.base import (Context, Layout, MemberCurves, Plan, TrainedProgram, method_refusal,
                                        trained_record)
from ddjax.training.members import stack_members
from ddjax.training.trainer import build_program


def plan_serial(context: Context) -> Plan:
    """Member i is program i; programs of one width share one compiled program."""
    config, spec, coords = context.config, context.spec, context.coords
    programs = {}

    def inputs(i):
        width = int(coords["width"][i])
        program = programs.setdefault(width, build_program(spec, batched=False))
        initial, member = jax.tree.map(lambda a: a[0], stack_members(coords, np.array([i]), context.dataset, config,
                                                                      spec, width))
        return TrainedProgram(program, spec, (initial,), (member,), context.data)

    def member_curves(i, states):
        (state,) = states
        return MemberCurves(np.array([i]), {k: np.asarray(v)[None] for k, v in state.curves.items()},
                            np.array([int(state.diverged_step)], np.int32))

    return Plan(len(coords["width"]), inputs, member_curves, tuple(sorted(set(coords["width"].tolist()))), 1.0,
                lambda: sum(p.trace_count() for p in programs.values()), trained_record(spec))


SERIAL = Layout("serial", lambda config: method_refusal(config, "serial"), plan_serial,
                splits_members=lambda config: False)
