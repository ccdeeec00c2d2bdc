"""The mapped layout: the grouped layout's width groups and vmapped steps, with evaluations one member after
another (`lax.map`) on XLA's convolution instead of patch matmuls.

Why: evaluation is forward-only, where XLA:CPU's convolution of one member (unbatched) is faster than the patch
matmuls (which copy every input patch before the matmul); under vmap the same convolution becomes a grouped one,
slower than the patches, hence one member at a time. Training steps stay vmapped patch matmuls (their gradients
on XLA's convolution ran 10x slower). Measured on the 2-core Intel Xeon for `cnn1d` (the notebook's 29 widths,
7 groups, under load from other jobs, see docs/convolutional.md): one evaluation of all members on the 16000
signals 1.16 s against 1.51 s (quiet stretch), 1.95 s against 2.52 s (loaded); the steps are unchanged. A family
takes it where its registry row gives `mapped_evaluation` (measured faster there), on a CPU.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from ddjax.models.registry import model_info
from ddjax.training.layouts.base import Context, Layout, Plan, method_refusal
from ddjax.training.layouts.grouped import plan_grouped
from ddjax.training.member import member_init, member_record, member_step
from ddjax.training.members import model_input_shape
from ddjax.training.spec import SharedData, TrainSpec
from ddjax.training.trainer import build_program, map_members


# What more width groups cost and save, measured for `cnn1d` on the 2-core Intel Xeon (the notebook's 29 widths,
# 600 steps, 7, 14 and 20 groups, alternating runs): compile time grows about 0.95 s a group, and steps and
# evaluations run at about 1e11 executed FLOP/s whatever the grouping (24.0 ms a step in 20 groups at padding
# efficiency 0.99 against 28.7 ms in 7 at 0.86, two evaluations included), so long sweeps pay for more groups.
COMPILE_SECONDS_PER_GROUP = 0.95
FLOP_PER_SECOND = 1e11


def group_cost(spec: TrainSpec, data: SharedData) -> float:
    """One more group's compile time in units of `member_macs` (one forward pass of one example at the padded
    width), priced by what such a unit costs over the whole run: 6 FLOP an example a training step (forward and
    backward), 2 a row an evaluation of the training and test rows."""
    batch = spec.batch_size or data.x_train.shape[0]
    flop_per_unit = 6 * batch * spec.steps + 2 * len(spec.eval_steps) * (data.x_train.shape[0] + data.x_test.shape[0])
    return COMPILE_SECONDS_PER_GROUP * FLOP_PER_SECOND / flop_per_unit


def _refusal(config) -> str | None:
    backend = jax.default_backend()
    if model_info(config.model).mapped_evaluation is None or backend != "cpu" or config.precision == "bfloat16":
        return (f"scheme 'mapped' needs a family measured faster there (registry `mapped_evaluation`) in float32 or "
                f"float64 on a CPU, not {config.model} in {config.precision} on {backend}")
    return method_refusal(config, "mapped")


def plan_mapped(context: Context) -> Plan:
    """The grouped plan, whose program records each group's evaluations with `map_members` on the family's
    `mapped_evaluation` form (the same parameters: only the convolution's form differs). More groups than the
    grouped layout's target where the run is long enough to pay their compile (`group_cost`)."""
    spec, config = context.spec, context.config
    evaluated = model_info(config.model).mapped_evaluation(config.depth, model_input_shape(context.dataset),
                                                            spec.n_classes, config.width, config.loss)
    functions = (functools.partial(member_init, spec), functools.partial(member_step, spec),
                 functools.partial(member_record, spec._replace(model=evaluated)))
    return plan_grouped(context, max_groups=len(np.unique(context.coords["width"])),
                        group_cost=group_cost(spec, context.data),
                        program=build_program(spec, functions=functions, record_lift=map_members))


MAPPED = Layout("mapped", _refusal, plan_mapped)
