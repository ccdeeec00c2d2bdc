"""What every layout of the trainer shares: the static spec of a sweep's training, the per-member inputs and state,
the recorded curves, and the dtypes a precision stores and computes in."""

from __future__ import annotations

import collections
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config.axes import AXES
from ddjax.data.augment import ImageSpec
from ddjax.models.family import Family, ModelState, Params

CURVES = ("train_error", "test_error", "train_loss", "test_loss")
# Recorded when members hold out validation examples (`TrainSpec.validation`, config `validation_fraction`).
VALIDATION_CURVES = ("val_error", "val_loss")


def _members_type():
    """`Members`: the trainer's per-member inputs, one field per axis of `ddjax.config.axes.AXES` that has a dtype,
    then the fields every bundle carries."""
    fields = [axis.name for axis in AXES if axis.dtype is not None] + ["labels", "n_val", "part"]
    members = collections.namedtuple("Members", fields, defaults=[None] * len(fields))
    members.__doc__ = """What distinguishes the members of a bundle (`ddjax.training.engine`).

    For the vmapped layouts every field has a leading member axis when stacked, and one member's fields are
    scalars; a packed stream holds per-member values [K] and shares `seed`, `n_train`, `n_val` and `part`.
    Axis fields (`width`, `seed`, `n_train`, `learning_rate`, `momentum`, `weight_decay`; dtypes from their
    `Axis.dtype`) are None where the config does not need them (`Axis.needed`), so that a program without them
    is exactly what it was before they existed. `n_train` counts the rows a member trains on (its n_train less
    its held-out rows); `labels` are its (noisy) training labels [.., N]; `n_val` the rows after the trained ones
    held out for validation (with `TrainSpec.validation`); `part` which part of the members a packed stream holds.
    """
    members.__module__ = __name__
    return members


Members = _members_type()


class SharedData(NamedTuple):
    """Device-resident data shared by all members: batches are index gathers into it.

    Inputs are float32 [n, features], or stored images (uint8 [n, H, W, C]) that `model_inputs` and
    `training_batch` standardize and flatten on the fly.
    """

    x_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


class TrainSpec(NamedTuple):
    """The static description of how every member trains."""

    model: Family
    optimizer: str
    loss: str
    batch_size: int  # 0 means full batch.
    steps: int
    eval_steps: tuple[int, ...]  # Ascending; 0 is the initial evaluation.
    chunk_steps: int
    input_dim: int  # Features a flat model reads (H * W * C for images).
    n_classes: int
    sampling: str = "replacement"  # See `ddjax.data.sampling.sample_batch`.
    image: ImageSpec | None = None  # Image inputs (kept as stored, standardized on the fly); None: flat float data.
    # "bfloat16": the model computes on bfloat16 copies (`compute_cast`); "float64": everything is stored and
    # computed in double precision (`stored_dtype`), the reference for equivalence checks.
    precision: str = "float32"
    eval_batch: int = 0  # > 0: evaluate in chunks of this many rows (`lax.map`); 0: all rows as one batch.
    lr_schedule: str = "constant"  # See `ddjax.training.schedules`.
    lr_schedule_steps: int = 512
    validation: bool = False  # Members hold out `Members.n_val` rows: record VALIDATION_CURVES too.
    layer_group: str = "hidden/0/*"  # The parameters `Members.layer_rate` scales (a glob on a member's paths).
    init: str = "standard"  # "paired": one-hidden-layer members start with every output 0 (`members.initial_params`).
    # The axes the trainer receives per member (`ddjax.config.axes.member_input_axes`): fields of `Members`.
    member_axes: tuple[str, ...] = ("width", "seed", "n_train", "learning_rate")

    @property
    def weight_decay(self) -> bool:
        """Some member has weight decay > 0: the step adds lambda * params."""
        return "weight_decay" in self.member_axes


def curve_names(spec: TrainSpec) -> tuple[str, ...]:
    """The curves every member records: CURVES, then VALIDATION_CURVES when members hold out validation rows."""
    return CURVES + VALIDATION_CURVES if spec.validation else CURVES


def log_spaced_steps(steps: int, n_evals: int) -> tuple[int, ...]:
    """Step 0 plus up to `n_evals` distinct log-spaced steps in [1, steps], always including `steps`."""
    spaced = np.unique(np.round(np.geomspace(1, steps, n_evals)).astype(int))
    return (0, *sorted(set(spaced.tolist()) | {steps}))


def stored_dtype(precision: str) -> jnp.dtype:
    """The dtype of stored parameters, optimizer state, inputs and losses: float64 for `precision="float64"`
    (JAX's 64-bit mode must be on), else float32 (bfloat16 is a compute dtype only)."""
    return jnp.dtype(jnp.float64 if precision == "float64" else jnp.float32)


def to_stored_dtype(precision: str, tree: Any) -> Any:
    """`tree` with its float32 leaves (host or device) in `stored_dtype(precision)`; a no-op unless float64.

    Double precision is the reference for equivalence checks: float reassociation (another CPU's vector width,
    another layout's sum order) is ~1e-16 relative there, which stays far below any tolerance even after training
    amplifies it, where in float32 (~1e-7) it need not.
    """
    if precision != "float64":
        return tree
    return jax.tree.map(lambda a: a.astype(jnp.float64) if getattr(a, "dtype", None) == jnp.float32 else a, tree)


def compute_cast(precision: str, tree: Any) -> Any:
    """`tree` with its floating leaves in the compute dtype of `precision`; float32 and float64 leave it untouched.

    Mixed precision as on TPUs: the stored parameters, the optimizer state and the loss stay float32; the model
    reads bfloat16 copies, so its matmuls (and convolutions) take bfloat16 operands. The cast is differentiable,
    so gradients arrive in float32.
    """
    if precision in ("float32", "float64"):
        return tree
    dtype = jnp.dtype(precision)
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)
