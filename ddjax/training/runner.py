"""One runner for every layout: runs a plan's programs one after another, resumably, with a progress bar and
checkpoints, and gathers every member's curves.

One trained program is checkpointed at its chunk boundaries: the state `on_chunk` receives is the program's
states, and a resumed run continues at that loop step. Several programs (a memory split, the serial layout's one
member a program, a closed form's stages) are checkpointed after each program: the state holds every member's
curves (NaN until run), divergence steps and the plan's carry, and a resumed run skips the programs done (it
resumes correctly on the same devices and budget, which make the same plan).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from ddjax.training.layouts.base import Plan, Record


def run_plan(plan: Plan, n_members: int, *, restore: Callable[[Any], Any] | None = None, start_step: int = 0,
             on_chunk: Callable[[int, Any], None] | None = None, progress: bool = False,
             description: str = "") -> dict[str, Any]:
    """Runs every program of `plan`; returns the `ddjax.result.SweepResult` fields of the run.

    Args:
      restore: resumes at `start_step` from restore(template), where template is the `jax.eval_shape` of the state
        `on_chunk` receives: a loop step of the one program, or the number of programs done.
      on_chunk: called as on_chunk(next step, state) after every chunk of one trained program, or after every
        program.
    """
    first = plan.inputs(0) if plan.n_programs == 1 else None
    by_program = first is None or not first.resumable_within
    record, carry = _empty_record(n_members, plan.record), plan.carry
    states = None
    if by_program and restore is not None:
        template = _shapes(plan.carry) if plan.carry_template is None else plan.carry_template(start_step)
        record, carry = _restored(restore, record, template)
    elif restore is not None:
        states = restore(first.template())
    # Made after restoring, so a refused checkpoint prints its one-line error and nothing else.
    per_program = plan.record.steps_per_program
    total = per_program * plan.n_programs
    bar = _progress_bar(progress, total, description, min(start_step * (per_program if by_program else 1), total))
    compile_s = run_s = 0.0
    n_devices = 1
    try:
        for j in range(start_step if by_program else 0, plan.n_programs):
            inputs = first if first is not None else plan.inputs(j)
            outcome, carry = inputs.run(states=states, start_step=0 if by_program else start_step, progress=bar,
                                        on_chunk=None if by_program else on_chunk, devices=plan.devices, carry=carry)
            members, curves, diverged = plan.member_curves(j, outcome.states)
            for k in curves:
                record["curves"][k][members] = curves[k]
            record["diverged_step"][members] = diverged
            compile_s, run_s = compile_s + outcome.compile_seconds, run_s + outcome.run_seconds
            n_devices = outcome.n_devices
            if by_program and on_chunk is not None:
                on_chunk(j + 1, {**record, "carry": carry})
    finally:
        if bar is not None:
            bar.close()
    return dict(curves=record["curves"], diverged_step=record["diverged_step"],
                eval_steps=np.asarray(plan.record.eval_steps), group_widths=plan.group_widths,
                n_compiles=plan.n_compiles(), padding_efficiency=plan.padding_efficiency, compile_seconds=compile_s,
                run_seconds=run_s, n_devices=n_devices, n_programs=plan.n_programs)


def _empty_record(n_members: int, record: Record) -> dict[str, Any]:
    return {"curves": {k: np.full((n_members, len(record.eval_steps)), np.nan, record.dtype) for k in record.names},
            "diverged_step": np.full(n_members, -1, np.int32)}


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)


def _restored(restore, record: dict[str, Any], carry_template: Any) -> tuple[dict[str, Any], Any]:
    """The record and the carry of a checkpoint taken after some programs, as writable host arrays of the dtypes
    they were saved in (float64 curves and carries included, whatever JAX's default)."""
    with jax.enable_x64(True):
        restored = restore({**_shapes(record), "carry": carry_template})
        # Its dicts come back with sorted keys: rebuilt in the record's order.
        return ({"curves": {k: np.array(restored["curves"][k]) for k in record["curves"]},
                 "diverged_step": np.array(restored["diverged_step"])}, jax.tree.map(np.array, restored["carry"]))


def _progress_bar(enabled: bool, total: int, description: str, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit="step", dynamic_ncols=True)
