"""The Layout interface: how a sweep's members are placed in programs, and how their curves come back.

A layout says whether it can hold a config (`refusal`), and plans a sweep (`plan`): the consecutive programs it
trains (one when everything fits), each program's inputs, and how a program's final states map back to member
curves. `ddjax.training.runner` trains any plan; `ddjax.sweep` picks the layout.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from ddjax.config import Config
from ddjax.data.datasets import Dataset
from ddjax.training.memory import Budget, Needs
from ddjax.training.spec import SharedData, TrainSpec
from ddjax.training.trainer import Program


class Context(NamedTuple):
    """What a layout plans from: the config, its data and training spec, its members, devices and memory."""

    config: Config
    dataset: Dataset
    data: SharedData
    spec: TrainSpec
    coords: dict[str, np.ndarray]  # The members' coordinates (`ddjax.training.members.expand_members`).
    devices: Sequence[jax.Device] | None  # Split each program's member axis over these; None: serial mode.
    memory: tuple[Needs, Budget]


class ProgramInputs(NamedTuple):
    """One program and what it starts from: `program.init(initial, groups)`, or `states` built on the host."""

    program: Program
    initial: tuple[Any, ...]
    groups: tuple[Any, ...]
    data: Any
    states: tuple[Any, ...] | None = None


class MemberCurves(NamedTuple):
    """The curves of the members a program trained: indices into the sweep's members (a padding copy repeats its
    original), curves[name] [len(members), n_evals] and divergence steps."""

    members: np.ndarray
    curves: dict[str, np.ndarray]
    diverged_step: np.ndarray


class Plan(NamedTuple):
    """A layout's programs for one sweep, trained one after another by `ddjax.training.runner.run_plan`."""

    n_programs: int
    inputs: Callable[[int], ProgramInputs]  # Built when program j starts, so only one is held at a time.
    member_curves: Callable[[int, tuple[Any, ...]], MemberCurves]  # Program j's final states -> curves.
    group_widths: tuple[int, ...]  # What each group is padded to (see `ddjax.result.SweepResult`).
    padding_efficiency: float  # Useful multiply-accumulates / executed ones.
    n_compiles: Callable[[], int]
    serial: bool = False  # One member a program: checkpointed after each, not counted as consecutive programs.


class Layout(NamedTuple):
    """A way to lay members out: `refusal(config)` says why it cannot hold a config (None: it can)."""

    name: str
    refusal: Callable[[Config], str | None]
    plan: Callable[[Context], Plan]
