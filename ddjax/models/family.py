"""The one model-family interface: every family (MLP, random features, cnn1d, cnn5, resnet18) is a `Family`,
written for ONE member applied to a batch of flat inputs.

- `init(seed, width, max_width, input_dim, n_classes) -> {"params", "model_state"}`: the member's variables as
  host (numpy float32) arrays. `model_state` is what the member updates outside the optimizer (BatchNorm's
  running statistics) and `{}` for a stateless family.
- `apply(params, model_state, width, x [B, input_dim], train, example_mask [B] | None) -> (logits [B, n_classes],
  model_state)`: `width` may be a traced integer; `train` switches BatchNorm between batch and running statistics
  (the state comes back unchanged in evaluation); `example_mask` marks the rows that count (BatchNorm's statistics
  ignore the others).
- `features(params, width, x [B, input_dim]) -> [B, max_width]`, only for families whose trained part is a linear
  read-out, so that `logits = features @ params["out"]["w"] + params["out"]["b"]` (the closed-form solver).

The member axis is added on top by the trainer's `jax.vmap` (serial mode runs the same function without it), so a
family never sees another member and BatchNorm's batch statistics are per member by construction. Families with
no layer that needs the batch (MLP, random features) are written for one example and lifted over the batch by
`stateless_family`; the packed and block-packed layouts, their fast paths, read the same `init(...)["params"]`.

Padding rule: a member has a true `width` and is stored padded to `max_width` (the widest member it shares a
program with). Its variables are drawn on the host at the true width (so fan-ins are the true width's; no
random-number kernel to compile), then zero-padded at the end of every width axis; padded units are masked after
their activation, so they are exactly 0 and receive exactly zero gradient: a member's outputs do not depend on
`max_width` (up to the order of float sums), and a padded member starts exactly where the same member built
alone starts.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Params = Any  # A pytree of arrays.
ModelState = Any  # A pytree of arrays (flax's "batch_stats" collection), or {} for a stateless family.
Variables = dict[str, Any]  # {"params": Params, "model_state": ModelState}, as `Family.init` gives them.


def unit_mask(width: Any, max_width: int, dtype: Any = jnp.float32) -> jax.Array:
    """1.0 for the member's `width` real units (or channels), 0.0 for padding, in `dtype` (the activations' own, so
    that a bfloat16 model stays in bfloat16); it broadcasts over a units-last (channels-last) array."""
    return (jnp.arange(max_width) < width).astype(dtype)


class Padding(NamedTuple):
    """Whether a family's members padded to a wider member's shapes are exact (`ddjax.models.exactness`)."""

    exact: bool
    reason: str | None  # Where padding changes a member, when not exact; None when exact.
    check_seconds: float  # How long the check took.


class Family(NamedTuple):
    """A model family written for one member on a batch (see the module docstring for the signatures)."""

    init: Callable[..., Variables]
    apply: Callable[..., tuple[jax.Array, ModelState]]
    features: Callable[[Params, Any, jax.Array], jax.Array] | None = None
    # (params, width) -> 1.0 on a member's true entries, 0.0 on its padding (a tree like params): the engine
    # multiplies each entry's update by it. None: padded entries get zero gradient by construction.
    entry_mask: Callable[[Params, Any], Any] | None = None
    # (seeds, widths, max_width) -> the stacked variables of a group's members, in one call. None: `init` each.
    init_group: Callable[..., Variables] | None = None
    padding: Padding | None = None  # None: padding is exact by construction (the family masks its padded units).


def stateless_family(init_params: Callable[..., Params], apply_one: Callable[[Params, Any, jax.Array], jax.Array],
                     features_one: Callable[[Params, Any, jax.Array], jax.Array] | None = None) -> Family:
    """A `Family` from functions written for ONE example, each lifted over the batch with `jax.vmap`.

    Args:
      init_params: (seed, width, max_width, input_dim, n_classes) -> params (host arrays padded to `max_width`).
      apply_one: (params, width, x [input_dim]) -> logits [n_classes].
      features_one: (params, width, x [input_dim]) -> features [max_width], or None.

    Returns:
      A `Family` whose model state is `{}`; `train` and `example_mask` change nothing (no layer sees more than one
      example, and the loss weights rows on its own).
    """

    def init(seed, width, max_width, input_dim, n_classes):
        return {"params": init_params(seed, width, max_width, input_dim, n_classes), "model_state": {}}

    def apply(params, model_state, width, x, train, example_mask=None):
        return jax.vmap(apply_one, in_axes=(None, None, 0))(params, width, x), model_state

    features = None if features_one is None else jax.vmap(features_one, in_axes=(None, None, 0))
    return Family(init, apply, features)
