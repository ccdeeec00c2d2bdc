"""The Layout interface: how a sweep's members are placed in programs, and how their curves come back.

A layout says whether it can hold a config (`refusal`), and plans a sweep (`plan`): the consecutive programs it
runs (one when everything fits), each program's inputs, and how a program's outcome maps back to member curves.
A program is trained (`TrainedProgram`: steps of the engine, resumable at chunk boundaries) or solved
(`SolvedProgram`: a closed form, or a whole computation in one call); a plan may thread a carry from one program
to the next (the accumulated Gram matrices of a closed form swept over its features). `ddjax.training.runner`
runs any plan; `ddjax.sweep` picks the layout.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from ddjax.config import Config
from ddjax.data.datasets import Dataset
from ddjax.training.costs import MemberCost
from ddjax.training.memory import Budget, Needs
from ddjax.training.spec import SharedData, TrainSpec, curve_names, stored_dtype
from ddjax.training.trainer import Program, TrainOutcome, train


class Context(NamedTuple):
    """What a layout plans from: the config, its data and training spec, its members, devices and memory."""

    config: Config
    dataset: Dataset | None  # None: the data are drawn per member inside the program.
    data: SharedData | None
    spec: TrainSpec | None  # None where nothing is trained from shared data.
    coords: dict[str, np.ndarray]  # The members' coordinates (`ddjax.training.members.expand_members`).
    devices: Sequence[jax.Device] | None  # Split each program's member axis over these; None: one device, unsplit.
    # The memory plan: the trainer's needs and budget (method="train"), or the layout's own (`Layout.memory_plan`).
    memory: tuple[Needs, Budget] | Any
    cost: MemberCost | None = None  # The family's cost model (`ddjax.training.costs`); None without shared data.


class TrainedProgram(NamedTuple):
    """A program of the engine and what it starts from: `program.init(initial, groups)`, or `states` built on the
    host. `run` trains it (`ddjax.training.trainer.train`)."""

    program: Program
    spec: TrainSpec
    initial: tuple[Any, ...]
    groups: tuple[Any, ...]
    data: Any
    states: tuple[Any, ...] | None = None
    resumable_within: bool = True  # Checkpointed at its chunk boundaries.

    def template(self) -> Any:
        """The shapes of the states `run` starts from (what a checkpoint of this program restores)."""
        return jax.eval_shape(self.program.init, self.initial, self.groups)

    def run(self, *, states=None, start_step: int = 0, progress=None, on_chunk=None, devices=None,
            carry=None) -> tuple[TrainOutcome, Any]:
        outcome = train(self.program, self.spec, self.initial, self.groups, self.data,
                        states=self.states if states is None else states, start_step=start_step, progress=progress,
                        on_chunk=on_chunk, devices=devices)
        return outcome, carry


class SolvedProgram(NamedTuple):
    """A program computed in one call: `prepare()` compiles it and returns `solve(carry) -> (outputs, carry)`, where
    `outputs` is what the plan's `member_curves` reads; `steps` is how far it advances a progress bar."""

    prepare: Callable[[], Callable[[Any], tuple[Any, Any]]]
    steps: int = 1
    resumable_within: bool = False  # Checkpointed only once it is done.

    def run(self, *, states=None, start_step: int = 0, progress=None, on_chunk=None, devices=None,
            carry=None) -> tuple[TrainOutcome, Any]:
        t0 = time.perf_counter()
        solve = self.prepare()
        t1 = time.perf_counter()
        outputs, carry = solve(carry)
        outputs = jax.block_until_ready(outputs)
        if progress is not None:
            progress.update(self.steps)
        return TrainOutcome(outputs, t1 - t0, time.perf_counter() - t1), carry


class MemberCurves(NamedTuple):
    """The curves of the members a program ran: indices into the sweep's members (a padding copy repeats its
    original), curves[name] [len(members), n_evals] and divergence steps."""

    members: np.ndarray
    curves: dict[str, np.ndarray]
    diverged_step: np.ndarray


class Record(NamedTuple):
    """What a plan records of each member: curve names, the steps they are evaluated after, their dtype, and the
    steps each program advances the progress bar by."""

    names: tuple[str, ...]
    eval_steps: tuple[int, ...]
    dtype: Any
    steps_per_program: int


def trained_record(spec: TrainSpec) -> Record:
    """The record of members trained by the engine: `curve_names(spec)` at the spec's eval steps."""
    return Record(curve_names(spec), spec.eval_steps, stored_dtype(spec.precision), spec.steps)


class Plan(NamedTuple):
    """A layout's programs for one sweep, run one after another by `ddjax.training.runner.run_plan`."""

    n_programs: int
    inputs: Callable[[int], TrainedProgram | SolvedProgram]  # Built when program j starts: one held at a time.
    member_curves: Callable[[int, Any], MemberCurves]  # Program j's final states (or outputs) -> curves.
    group_widths: tuple[int, ...]  # What each group is padded to (see `ddjax.result.SweepResult`).
    padding_efficiency: float  # Useful multiply-accumulates / executed ones.
    n_compiles: Callable[[], int]
    record: Record
    devices: Sequence[jax.Device] | None = None  # Each program's member axis is split over these (None: unsplit).
    carry: Any = None  # What the first program receives (and each passes on to the next).
    # j -> the shapes of the carry program j receives, which a run resumed before program j restores (None: those of
    # `carry` for every j).
    carry_template: Callable[[int], Any] | None = None


def method_refusal(config: Config, layout: str, method: str = "train") -> str | None:
    """Why layout `layout`, which runs `method`, cannot hold `config` (None: the methods match)."""
    if config.method != method:
        return f"scheme {layout!r} runs method={method}, not method={config.method}"
    return None


class Layout(NamedTuple):
    """A way to lay members out: `refusal(config)` says why it cannot hold a config (None: it can)."""

    name: str
    refusal: Callable[[Config], str | None]
    plan: Callable[[Context], Plan]
    # config -> whether its programs split the member axis over every device (False: one device, e.g. serial).
    splits_members: Callable[[Config], bool] = lambda config: True
    # context -> the layout's own memory plan (`Context.memory` for `plan`), made by `ddjax.sweep.prepare` before
    # anything runs, which it refuses (ConfigError, one line) if it cannot fit. None: the trainer's plan.
    memory_plan: Callable[[Context], Any] | None = None
