"""The solvers' layouts: closed-form sweeps planned as programs of the one runner (`ddjax.training.runner`), so they
are checkpointed and resumed like trained ones. Registered with the trained layouts (`ddjax.training.layouts`),
ahead of them in "auto": each holds only its own method.

- `closed_form` (`method="min_norm"`): random features in stages over one draw, one program per stage
  (`ddjax.solvers.feature_stages`, with its memory plan); Gaussian regression's linear model in one program per
  group of members padded to one shape (`ddjax.solvers.closed_form`). Members that differ only in their ridge
  strength share one solve.
- `gradient_descent` (`method="gradient_descent"`): every member in one program, its risk over time beside the
  closed form (`ddjax.solvers.gradient_descent`).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ddjax.solvers import closed_form, feature_stages, gradient_descent
from ddjax.training import layouts
from ddjax.training.layouts.base import Context, Layout, MemberCurves, Plan, Record, SolvedProgram, method_refusal
from ddjax.training.members import expand_members


def _float64_program(function, inputs, steps: int = 1) -> SolvedProgram:
    """The program computing `function(inputs)` in float64 (JAX's 64-bit mode), compiled apart from its run; it
    passes the carry on untouched."""
    def prepare():
        with jax.enable_x64(True):
            executable = jax.jit(function).lower(inputs).compile()

        def solve(carry):
            with jax.enable_x64(True):
                return jax.tree.map(np.asarray, executable(inputs)), carry

        return solve

    return SolvedProgram(prepare, steps)


def plan_closed_form(context: Context) -> Plan:
    """Random features' read-outs: one program per stage (`feature_stages.plan_feature_stages`); Gaussian
    regression: one program per group, its members' estimates at every ridge strength."""
    config = context.config
    if feature_stages.solves_in_stages(config):
        return feature_stages.plan_feature_stages(context)
    base = expand_members(dataclasses.replace(config, ridge=(0.0,)))  # ridge is the last axis: it varies fastest.
    with jax.enable_x64(True):
        groups = closed_form.linear_groups(config, base)
    programs = [(g.solve, inputs, index) for g in groups for inputs, index in zip(g.groups, g.indices)]
    n_strengths = len(config.ridge)

    def inputs(j):
        solve, group, _ = programs[j]
        return _float64_program(solve, group)

    def member_curves(j, outputs):
        index = programs[j][2]
        # [base member, strength] -> [member]: member b * len(ridge) + l is base member b at strength l.
        members = (index[:, None] * n_strengths + np.arange(n_strengths)).reshape(-1)
        return MemberCurves(members, {k: np.asarray(v, np.float64).reshape(-1, 1) for k, v in outputs.items()},
                            np.full(len(members), -1, np.int32))

    with jax.enable_x64(True):  # The curves the solver returns, in its order.
        names = tuple(jax.eval_shape(programs[0][0], programs[0][1]))
    return Plan(len(programs), inputs, member_curves, tuple(w for g in groups for w in g.group_widths), 1.0,
                lambda: len(programs), Record(names, (0,), np.float64, 1))


def plan_gradient_descent(context: Context) -> Plan:
    """Every member in one program: full-batch gradient descent and its risk over time in closed form."""
    config, coords = context.config, context.coords
    spec = gradient_descent.descent_spec(config)
    members = gradient_descent.Member(width=coords["width"].astype(np.int32),
                                      n_train=coords["n_train"].astype(np.int32), seed=coords["seed"].astype(np.uint32))
    rates = coords["learning_rate"].astype(np.float64)
    curves = jax.vmap(gradient_descent.member_curves(config, max(config.n_train), max(config.width), spec))

    def member_curves(j, outputs):
        outputs = dict(outputs)
        diverged = outputs.pop("diverged_step").astype(np.int32)
        return MemberCurves(np.arange(len(rates)), {k: np.asarray(v, np.float64) for k, v in outputs.items()},
                            diverged)

    program = _float64_program(lambda args: curves(*args), (members, rates), config.steps)
    return Plan(1, lambda j: program, member_curves, (max(config.width),), 1.0, lambda: 1,
                Record(gradient_descent.GD_CURVES, spec.eval_steps, np.float64, config.steps))


def closed_form_memory(context: Context):
    """The staged solve's memory plan (`feature_stages.memory_plan`), None for Gaussian regression."""
    if not feature_stages.solves_in_stages(context.config):
        return None
    return feature_stages.memory_plan(context.config, context.dataset)


CLOSED_FORM = Layout("closed_form", lambda config: method_refusal(config, "closed_form", "min_norm"),
                     plan_closed_form, splits_members=lambda config: False, memory_plan=closed_form_memory)
GRADIENT_DESCENT = Layout("gradient_descent",
                          lambda config: method_refusal(config, "gradient_descent", "gradient_descent"),
                          plan_gradient_descent, splits_members=lambda config: False)
for _layout in (GRADIENT_DESCENT, CLOSED_FORM):
    layouts.register(_layout)
