"""One home for the per-member training rules every layout applies: the optimizer's direction scaled by each
member's learning rate under the schedule, L2 weight decay, and the divergence freeze."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ddjax.optimizers import base_optimizer
from ddjax.training.schedules import learning_rate_factor
from ddjax.training.spec import TrainSpec

__all__ = ["add_weight_decay", "apply_rates", "base_optimizer", "diverged_steps", "freeze", "scheduled_rates"]


def scheduled_rates(spec: TrainSpec, rates: jax.Array, step) -> jax.Array:
    """Learning rates at `step` under the spec's schedule (`ddjax.training.schedules`); "constant" leaves them
    untouched."""
    factor = learning_rate_factor(spec.lr_schedule, spec.lr_schedule_steps, step)
    return rates if factor is None else rates * factor


def apply_rates(params: Any, direction: Any, rate: jax.Array) -> Any:
    """`params - rate * direction`, leaf by leaf: the update of one member of scalar `rate` (exactly optax's
    `apply_updates` after a scale of -rate)."""
    return jax.tree.map(lambda p, d: p - rate * d, params, direction)


def add_weight_decay(grads: Any, params: Any, strength: Any) -> Any:
    """The gradient of loss + (strength / 2) |params|^2: `grads + strength * params`, leaf by leaf.

    L2 in the loss, not decoupled decay (AdamW): the regularized objective, and so its minimizer, is the same
    whatever the optimizer and learning rate, it is the ridge objective of the closed form (`method=min_norm`,
    same lambda), and for SGD the two forms coincide. Every layout adds it to the loss gradient before its
    optimizer, with `strength` broadcast to the parameters of each member. Padded units stay zero (zero weights,
    zero gradient).
    """
    return jax.tree.map(lambda g, p: g + jnp.asarray(strength, g.dtype) * p, grads, params)

def freeze(keep: jax.Array, new: Any, old: Any) -> Any:
    """`new` where `keep`, else `old`, leaf by leaf: a member whose update went non-finite keeps its last finite
    state and never updates again."""
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def diverged_steps(alive: jax.Array, keep: jax.Array, step, previous: jax.Array) -> jax.Array:
    """int32 per member: the step whose update first went non-finite (a live member not kept), else `previous`
    (-1 while finite)."""
    return jnp.where(alive & ~keep, step, previous).astype(jnp.int32)
