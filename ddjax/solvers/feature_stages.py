"""Random-features read-outs as programs of the one runner: one program per stage of `ddjax.solvers.feature_blocks`.

A sweep's base members (its members at ridge 0: a member's strengths share its solve) are grouped into problems:
members that differ only in their width (one seed, n_train and label noise) fit the same rows with features of
one draw (`Config.feature_draw`). A problem's distinct widths are its stages, ascending, and run as consecutive
programs; the carry the runner threads from program to program is that problem's accumulated products (its
first stage starts from an empty carry), so the runner's checkpoint after each program lets a run resume after
its last finished stage. Every program solves one base member at every ridge strength; the memory plan
(`ddjax.solvers.feature_memory`) is made once, by `ddjax.sweep.prepare`, and sets the block of features.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ddjax.config import AXES, Config, validation_size
from ddjax.data.augment import ImageSpec, standardize_on_host
from ddjax.data.datasets import Dataset, member_labels
from ddjax.models.registry import model_info
from ddjax.solvers import feature_blocks
from ddjax.solvers.feature_blocks import Problem, Stage, initial_carry, make_problem, plan_stages, run_stage
from ddjax.solvers.feature_memory import MemoryPlan, plan_block
from ddjax.training.layouts.base import Context, MemberCurves, Plan, Record, SolvedProgram
from ddjax.training.members import expand_members
from ddjax.training.spec import curve_names

# Coordinates that make a problem: every axis but the ones a problem's programs sweep.
_SWEPT = ("width", "ridge")


def solves_in_stages(config: Config) -> bool:
    """Whether the closed form of `config` is solved in stages: its model is a random-features family."""
    return model_info(config.model).feature_map is not None


def problem_members(coords: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The base members (indices into `coords`, a grid at one ridge strength) of each problem, in order of first
    appearance, each ascending in width."""
    keys = list(zip(*(coords[axis.name] for axis in AXES if axis.name not in _SWEPT)))
    problems: dict[tuple, list[int]] = {}
    for member, key in enumerate(keys):
        problems.setdefault(key, []).append(member)
    return [np.array(sorted(members, key=lambda m: coords["width"][m])) for members in problems.values()]


def memory_plan(config: Config, dataset: Dataset) -> MemoryPlan:
    """The memory plan of every problem's stages (the smallest block, the largest peak) within
    `config.memory_budget_bytes` (0: half the host's RAM); ConfigError (one line) if a stage cannot fit."""
    plans = []
    for n_train in config.n_train:
        n_fit = _n_fit(config, n_train)
        stages = plan_stages(config.width, n_fit, draw=config.feature_draw)
        plans.append(plan_block(stages, n_fit=n_fit, n_eval=n_train - n_fit + len(dataset.x_test),
                                input_dim=int(np.prod(dataset.x_train.shape[1:])), n_classes=dataset.n_classes,
                                budget=config.memory_budget_bytes))
    largest = max(plans, key=lambda plan: plan.peak_bytes)
    return largest._replace(block=min(plan.block for plan in plans))


def build_problem(config: Config, dataset: Dataset, image: ImageSpec | None, coords: dict[str, np.ndarray],
                  member: int) -> Problem:
    """The problem of base member `member`: its n_train rows (images standardized by `image` and flattened, as the
    family reads them), labels with its label noise, the test rows, the sweep's strengths and draw, and its
    family's feature map."""
    n_train, seed = int(coords["n_train"][member]), int(coords["seed"][member])
    x_train, x_test = (np.asarray(x) if image is None else standardize_on_host(np.asarray(x), image)
                       for x in (dataset.x_train[:n_train], dataset.x_test))
    labels = member_labels(dataset, n_train, float(coords["label_noise"][member]), seed, config.data_seed)
    return make_problem(x_train, labels[:n_train], x_test, np.asarray(dataset.y_test), n_train=n_train,
                        validation_fraction=config.validation_fraction, n_classes=dataset.n_classes, seed=seed,
                        strengths=config.ridge, draw=config.feature_draw,
                        feature_map=model_info(config.model).feature_map)


def plan_feature_stages(context: Context) -> Plan:
    """One program per stage of every problem, the carry threaded through a problem's stages (see the module's
    docstring); `context.memory` is `memory_plan`'s."""
    config, dataset = context.config, context.dataset
    block = context.memory.block
    base = expand_members(dataclasses.replace(config, ridge=(0.0,)))  # ridge is the last axis: it varies fastest.
    problems = problem_members(base)
    stages = [plan_stages(base["width"][members], _n_fit(config, int(base["n_train"][members[0]])),
                          draw=config.feature_draw) for members in problems]
    programs = [(p, stage) for p, problem_stages in enumerate(stages) for stage in problem_stages]
    held: dict[int, Problem] = {}  # One problem's data at a time.

    def problem(p: int) -> Problem:
        if p not in held:
            held.clear()
            held[p] = build_problem(config, dataset, context.spec.image, base, int(problems[p][0]))
        return held[p]

    def inputs(j: int) -> SolvedProgram:
        p, stage = programs[j]
        return SolvedProgram(lambda: lambda carry: _solve(carry, stage, problem(p), block))

    n_strengths = len(config.ridge)

    def member_curves(j: int, outputs: dict[str, np.ndarray]) -> MemberCurves:
        p, stage = programs[j]
        # Base member b at strength l is member b * len(ridge) + l.
        members = problems[p][stage.index] * n_strengths + np.arange(n_strengths)
        return MemberCurves(members, {k: np.asarray(v, np.float64).reshape(-1, 1) for k, v in outputs.items()},
                            np.full(n_strengths, -1, np.int32))

    def carry_template(j: int) -> Any:
        """The carry program j receives: the one program j - 1 returned (none before the first)."""
        if j == 0:
            return None
        p, stage = programs[j - 1]
        return feature_blocks.carry_template(stages[p], stage.index + 1, problem(p))

    names = tuple(sorted((*curve_names(context.spec), "weight_norm")))  # The order of every closed form's curves.
    return Plan(len(programs), inputs, member_curves, tuple(stage.width for _, stage in programs), 1.0, lambda: 0,
                Record(names, (0,), np.float64, 1), carry_template=carry_template)


def _solve(carry: Any, stage: Stage, problem: Problem, block: int) -> tuple[dict[str, np.ndarray], Any]:
    """A stage's curves [strength] and the carry for the next; a problem's first stage starts afresh."""
    if stage.start == 0:
        carry = initial_carry(problem)
    carry, curves, _ = run_stage(carry, stage, problem, block=block)
    return curves, carry


def _n_fit(config: Config, n_train: int) -> int:
    return n_train - validation_size(n_train, config.validation_fraction)
