"""The sweep axes, declared once.

Each row of `AXES` says what an axis is: its name, element type and default, which values are allowed, where it
enters a member, whether it defines the member's batch stream, when it applies and how outputs record it. From
the rows come the config's axis fields (`ddjax.config.fields.Config`), their validation, the member grid
(`ddjax.training.members.expand_members`), the trainer's per-member inputs (`ddjax.training.spec.Members`), the
coordinates in curves.npz and the report's slices. A new axis is one row here plus its use in the rule it changes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple


class Axis(NamedTuple):
    """One sweep axis (a config field holding a tuple of values; the sweep trains the grid of every axis)."""

    name: str
    element: type  # int or float
    default: tuple
    allowed: str  # The allowed values in words, for one-line errors ("integers >= 1").
    check: Callable[[Any], bool]  # Whether one value is allowed.
    enters: str  # Where a member reads it: "model", "data", "optimizer", "loss" or "solver" (documentation).
    # The trainer's per-member input dtype ("int32", "float32", "uint32"); None: not a per-member input.
    dtype: str | None = None
    # Members that share the values of every such axis draw the same minibatches (a batch stream).
    batch_stream: bool = False
    # config -> None where the axis applies, else the words after "only <default> with ..." of the refusal of a
    # non-default value (e.g. "optimizer=adam (momentum applies to optimizer=momentum)").
    applies: Callable[[Any], str | None] = lambda config: None
    # config -> whether the trainer receives it per member (None where it does not, so a program without it is
    # exactly what it was before the axis existed).
    needed: Callable[[Any], bool] = lambda config: True
    # False: curves.npz and the report leave it out while every member holds its default.
    recorded_at_default: bool = True
    strength: bool = False  # A regularization strength: the report draws the optimally regularized curve over it.


def _finite_at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and v >= low


def _only_with(key: str, value: str, axis: str) -> Callable[[Any], str | None]:
    """`applies` of an axis that means something only where config `key` equals `value`."""
    return lambda c: None if getattr(c, key) == value else f"{key}={getattr(c, key)} ({axis} applies to {key}={value})"


AXES: tuple[Axis, ...] = (
    Axis("width", int, (1, 2, 4, 8, 16, 32, 64), "integers >= 1", lambda v: v >= 1, "model", "int32"),
    Axis("seed", int, (0,), "integers >= 0", lambda v: v >= 0, "data", "uint32", batch_stream=True),
    Axis("label_noise", float, (0.0,), "fractions in [0, 1)", lambda v: 0 <= v < 1, "data"),
    Axis("n_train", int, (1000,), "integers >= 1", lambda v: v >= 1, "data", "int32", batch_stream=True),
    Axis("learning_rate", float, (1e-3,), "finite numbers > 0", lambda v: math.isfinite(v) and v > 0, "optimizer",
         "float32"),
    Axis("momentum", float, (0.9,), "numbers in [0, 1)", lambda v: 0 <= v < 1, "optimizer", "float32",
         applies=_only_with("optimizer", "momentum", "momentum"), needed=lambda c: c.optimizer == "momentum",
         recorded_at_default=False),
    # The step of the parameters matched by `layer_group` relative to the others' (0: that group is frozen).
    Axis("layer_rate", float, (1.0,), "finite numbers >= 0", _finite_at_least(0), "optimizer", "float32",
         applies=_only_with("method", "train", "layer_rate"), needed=lambda c: c.layer_rate != (1.0,),
         recorded_at_default=False),
    # A factor of the initial values of the parameters matched by `layer_group`.
    Axis("layer_init_scale", float, (1.0,), "finite numbers >= 0", _finite_at_least(0), "model",
         applies=_only_with("method", "train", "layer_init_scale"), recorded_at_default=False),
    # The standard deviation of Gaussian noise added to a regression data set's training targets.
    Axis("target_noise", float, (0.0,), "finite numbers >= 0", _finite_at_least(0), "data",
         recorded_at_default=False),
    Axis("weight_decay", float, (0.0,), "finite numbers >= 0", _finite_at_least(0), "loss", "float32",
         applies=_only_with("method", "train", "weight_decay"), needed=lambda c: any(v > 0 for v in c.weight_decay),
         recorded_at_default=False, strength=True),
    # Last: members that differ only in their ridge strength share one solve, so it varies fastest.
    Axis("ridge", float, (0.0,), "finite numbers >= 0", _finite_at_least(0), "solver",
         applies=_only_with("method", "min_norm", "ridge"), recorded_at_default=False, strength=True),
)
AXIS = {axis.name: axis for axis in AXES}
BATCH_STREAM_AXES = tuple(axis.name for axis in AXES if axis.batch_stream)
STRENGTH_AXES = tuple(axis.name for axis in AXES if axis.strength)


def recorded_axes(config: Any) -> tuple[str, ...]:
    """The axes outputs record for `config`: each axis recorded at its default, and every other one it sweeps
    away from its default."""
    return tuple(a.name for a in AXES if a.recorded_at_default or getattr(config, a.name) != a.default)


def recorded_coordinates(coords: dict[str, Any]) -> tuple[str, ...]:
    """The axes outputs record of a sweep's member coordinates (name -> [member]): each axis recorded at its
    default, and every other one some member holds away from its default (`recorded_axes` of the coordinates)."""
    return tuple(a.name for a in AXES if a.name in coords and (
        a.recorded_at_default or any(v not in a.default for v in list(coords[a.name]))))


def member_input_axes(config: Any) -> tuple[str, ...]:
    """The axes the trainer receives per member for `config` (`Axis.dtype` and `Axis.needed`)."""
    return tuple(a.name for a in AXES if a.dtype is not None and a.needed(config))
