"""The optimizer table: each optimizer's direction (an optax transformation without its learning rate) and how
many values of state it keeps per parameter value.

Every layout applies an optimizer the same way (`ddjax.training.engine`): the base transformation turns gradients
into a direction, and each member's own learning rate (times the schedule's factor) scales it, so members with
different rates train side by side in one program. `ddjax.config` validates names against this table and
`ddjax.training.memory` counts the state from it.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import optax


class Optimizer(NamedTuple):
    """An optimizer without its learning rate: `direction(momentum)` and the state values per parameter value."""

    direction: Callable[[Any], optax.GradientTransformation]
    state_copies: int


def trace(decay: Any) -> optax.GradientTransformation:
    """optax's `trace` (heavy-ball momentum: t <- g + decay * t, the direction is t) whose `decay` may be a scalar or
    a tree like the parameters (each entry's own decay, as members of one packed stream have)."""
    def init(params):
        return optax.TraceState(trace=jax.tree.map(jax.numpy.zeros_like, params))

    def update(updates, state, params=None):
        decays = decay
        if jax.tree.structure(decay) != jax.tree.structure(updates):  # One decay for every entry.
            decays = jax.tree.map(lambda _: decay, updates)
        new = jax.tree.map(lambda g, t, d: g + d * t, updates, state.trace, decays)
        return new, optax.TraceState(trace=new)

    return optax.GradientTransformation(init, update)


OPTIMIZERS = {
    "sgd": Optimizer(lambda momentum: optax.identity(), 0),
    "momentum": Optimizer(trace, 1),
    "adam": Optimizer(lambda momentum: optax.scale_by_adam(), 2),
}


def base_optimizer(name: str, momentum: Any = None) -> optax.GradientTransformation:
    """The transformation of optimizer `name` up to its learning rate: optax's sgd, sgd with momentum or adam is
    this followed by a scale of minus the learning rate. `momentum`: the decay of "momentum" (a scalar, or a tree
    like the parameters); the others ignore it."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name].direction(momentum)
