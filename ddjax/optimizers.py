"""The optimizer table: each optimizer's direction (an optax transformation without its learning rate) and how
many values of state it keeps per parameter value.

Every layout applies an optimizer the same way (`ddjax.training.rules`): the base transformation turns gradients
into a direction, and each member's own learning rate (times the schedule's factor) scales it, so members with
different rates train side by side in one program. `ddjax.config` validates names against this table and
`ddjax.training.memory` counts the state from it.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import optax


class Optimizer(NamedTuple):
    """An optimizer without its learning rate: `direction(momentum)` and the state values per parameter value."""

    direction: Callable[[float], optax.GradientTransformation]
    state_copies: int


OPTIMIZERS = {
    "sgd": Optimizer(lambda momentum: optax.identity(), 0),
    "momentum": Optimizer(lambda momentum: optax.trace(decay=momentum), 1),
    "adam": Optimizer(lambda momentum: optax.scale_by_adam(), 2),
}


def base_optimizer(name: str, momentum: float) -> optax.GradientTransformation:
    """The transformation of optimizer `name` up to its learning rate: optax's sgd, sgd with momentum or adam is
    this followed by a scale of minus the learning rate."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name].direction(momentum)
