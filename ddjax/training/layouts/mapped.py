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

from ddjax.models.registry import model_info
from ddjax.training.layouts.base import Context, Layout, Plan
from ddjax.training.layouts.grouped import plan_grouped
from ddjax.training.member import member_init, member_record, member_step
from ddjax.training.members import model_input_shape
from ddjax.training.trainer import build_program, map_members


def _refusal(config) -> str | None:
    backend = jax.default_backend()
    if model_info(config.model).mapped_evaluation is None or backend != "cpu" or config.precision == "bfloat16":
        return (f"scheme 'mapped' needs a family measured faster there (registry `mapped_evaluation`) in float32 or "
                f"float64 on a CPU, not {config.model} in {config.precision} on {backend}")
    return None


def plan_mapped(context: Context) -> Plan:
    """The grouped plan, whose program records each group's evaluations with `map_members` on the family's
    `mapped_evaluation` form (the same parameters: only the convolution's form differs)."""
    spec, config = context.spec, context.config
    evaluated = model_info(config.model).mapped_evaluation(config.depth, model_input_shape(context.dataset),
                                                            spec.n_classes)
    functions = (functools.partial(member_init, spec), functools.partial(member_step, spec),
                 functools.partial(member_record, spec._replace(model=evaluated)))
    return plan_grouped(context, program=build_program(spec, functions=functions, record_lift=map_members))


MAPPED = Layout("mapped", _refusal, plan_mapped)
