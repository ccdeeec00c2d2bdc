"""One runner for every layout: trains a plan's programs one after another, resumably, with a progress bar and
checkpoints, and gathers every member's curves.

One program (not serial) is checkpointed at its chunk boundaries: the state `on_chunk` receives is the program's
states, and a resumed run continues at that loop step. Several programs, or serial mode, are checkpointed after
each program: the state holds every member's curves (NaN until trained) and divergence step, and a resumed run
skips the programs done (it resumes correctly on the same devices and budget, which make the same plan).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np

from ddjax.training.layouts.base import Plan
from ddjax.training.spec import TrainSpec, curve_names, stored_dtype
from ddjax.training.trainer import train


def run_plan(plan: Plan, spec: TrainSpec, n_members: int, *, devices: Sequence[jax.Device] | None = None,
             restore: Callable[[Any], Any] | None = None, start_step: int = 0,
             on_chunk: Callable[[int, Any], None] | None = None, progress: bool = False,
             description: str = "") -> dict[str, Any]:
    """Trains every program of `plan`; returns the `ddjax.result.SweepResult` fields of the training.

    Args:
      devices: split each program's member axis over these (None: serial mode, one device).
      restore: resumes at `start_step` from restore(template), where template is the `jax.eval_shape` of the state
        `on_chunk` receives: a loop step of the one program, or the number of programs done.
      on_chunk: called as on_chunk(next step, state) after every chunk of one program, or after every program.
    """
    by_program = plan.n_programs > 1 or plan.serial
    record = _empty_record(n_members, len(spec.eval_steps), stored_dtype(spec.precision), curve_names(spec))
    first_inputs = None
    if by_program:
        if restore is not None:
            record = _restored_record(restore, record)
        states = None
    else:
        first_inputs = plan.inputs(0)
        states = first_inputs.states
        if restore is not None:
            states = restore(jax.eval_shape(first_inputs.program.init, first_inputs.initial, first_inputs.groups))
    # Made after restoring, so a refused checkpoint prints its one-line error and nothing else.
    done = start_step * spec.steps if by_program else start_step
    bar = _progress_bar(progress, spec.steps * plan.n_programs, description, min(done, spec.steps * plan.n_programs))
    compile_s = run_s = 0.0
    n_devices = 1
    try:
        for j in range(start_step if by_program else 0, plan.n_programs):
            inputs = first_inputs if j == 0 and first_inputs is not None else plan.inputs(j)
            outcome = train(inputs.program, spec, inputs.initial, inputs.groups, inputs.data,
                            states=states if not by_program else inputs.states,
                            start_step=0 if by_program else start_step, progress=bar,
                            on_chunk=None if by_program else on_chunk, devices=devices)
            members, curves, diverged = plan.member_curves(j, outcome.states)
            for k in curves:
                record["curves"][k][members] = curves[k]
            record["diverged_step"][members] = diverged
            compile_s, run_s = compile_s + outcome.compile_seconds, run_s + outcome.run_seconds
            n_devices = outcome.n_devices
            if by_program and on_chunk is not None:
                on_chunk(j + 1, record)
    finally:
        if bar is not None:
            bar.close()
    return dict(curves=record["curves"], diverged_step=record["diverged_step"], group_widths=plan.group_widths,
                n_compiles=plan.n_compiles(), padding_efficiency=plan.padding_efficiency, compile_seconds=compile_s,
                run_seconds=run_s, n_devices=n_devices, n_programs=1 if plan.serial else plan.n_programs)


def _empty_record(n_members: int, n_evals: int, dtype: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {"curves": {k: np.full((n_members, n_evals), np.nan, dtype) for k in names},
            "diverged_step": np.full(n_members, -1, np.int32)}


def _restored_record(restore, record) -> dict[str, Any]:
    template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), record)
    restored = restore(template)  # Its dicts come back with sorted keys: rebuilt in the record's order.
    return {"curves": {k: np.array(restored["curves"][k]) for k in record["curves"]},
            "diverged_step": np.array(restored["diverged_step"])}


def _progress_bar(enabled: bool, total: int, description: str, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit="step", dynamic_ncols=True)
