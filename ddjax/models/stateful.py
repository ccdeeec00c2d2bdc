"""Model families that carry state (BatchNorm running statistics), written for ONE member applied to a BATCH.

A `StatefulFamily` is the interface for layers that need the whole batch (BatchNorm) or a spatial input
(convolutions). `init` returns the member's variables `{"params": ..., "model_state": ...}` at its true width,
zero-padded to `max_width`; `apply(params, model_state, width, x, train, example_mask)` maps a batch of flat
inputs to logits and the new model state (unchanged in evaluation). The member axis is added on top by the
trainer's `jax.vmap`, exactly as for `ModelFamily`: member_step / member_eval stay written for one member, serial
mode runs the same function without vmap, and BatchNorm's batch statistics are then per member by construction
(each vmapped call sees only its own batch). Why `jax.vmap` over flax variables and not flax's `nn.vmap`:
`nn.vmap` would put the member axis inside the module (a module of M members), so serial mode would need a second
module and the trainer could no longer lift one per-member function; `nn.vmap` is itself built on `jax.vmap`, so
no speed is expected from it (an argument, not a measurement).

Padding rule (the same as `ModelFamily`'s): variables are drawn on the host in the shapes of the module at the
member's true width (so fan-ins are the true width's), then every array is zero-padded at the end of each axis to
the shapes of the module at `max_width` (true channels first). Modules mask every channel after BatchNorm + ReLU,
so padded channels are 0 whatever their (zero) parameters and get exactly zero gradient; a padded channel's
BatchNorm sees a constant 0 (mean 0, variance 0, output 0 for its zero scale and bias), never a NaN.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddjax.models.families import Params

ModelState = Any  # A pytree of arrays (flax's "batch_stats" collection), or {} for a stateless family.


class StatefulFamily(NamedTuple):
    """`init(seed, width, max_width, input_dim, n_classes) -> {"params", "model_state"}` (host arrays);
    `apply(params, model_state, width, x [B, input_dim], train, example_mask [B] | None) -> (logits [B, C],
    model_state)`. `example_mask` marks the rows that count (BatchNorm's statistics ignore the others)."""

    init: Callable[..., dict[str, Any]]
    apply: Callable[..., tuple[jax.Array, ModelState]]


def channel_mask(width: Any, max_width: int) -> jax.Array:
    """1.0 for the member's `width` real channels, 0.0 for padding (broadcasts over a channels-last array)."""
    return (jnp.arange(max_width) < width).astype(jnp.float32)


def pad_to(tree: Any, shapes: Any) -> Any:
    """Every array of `tree` zero-padded at the end of each axis to the matching shape in `shapes`."""
    def pad(leaf, target):
        leaf = np.asarray(leaf, np.float32)
        return np.pad(leaf, [(0, t - s) for s, t in zip(leaf.shape, target.shape)])

    return jax.tree.map(pad, tree, shapes)


def flax_family(make_module: Callable[[int], nn.Module], input_shape: tuple[int, ...]) -> StatefulFamily:
    """A `StatefulFamily` from `make_module(max_width)`, a flax module called as
    `module(x [B, *input_shape], width, train, example_mask)` with state collection "batch_stats", whose first
    layer is named "stem" and has `max_width` output channels, and whose output layer is named "head".

    Variables are drawn on the host (numpy, seeded by the member's seed; no random-number kernel to compile) in
    the shapes of the module at the member's true width, then padded to the module at `max_width`: kernels
    N(0, gain / fan_in) with fan_in the product of all but the last axis (gain 2 before a ReLU, 1 for "head"),
    biases and BatchNorm offsets and means 0, BatchNorm scales and variances 1.
    """

    def shapes_at(width):
        module = make_module(width)
        x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        return jax.eval_shape(lambda x: module.init(jax.random.PRNGKey(0), x, width, False, None), x)

    def init(seed, width, max_width, input_dim, n_classes):
        rng = np.random.default_rng([seed, 15])
        true = _draw(rng, shapes_at(width))
        padded = pad_to(true, shapes_at(max_width))
        return {"params": padded["params"], "model_state": padded.get("batch_stats", {})}

    def apply(params, model_state, width, x, train, example_mask=None):
        module = make_module(params["stem"]["kernel"].shape[-1])
        x = x.reshape(x.shape[0], *input_shape)
        variables = {"params": params, "batch_stats": model_state} if model_state else {"params": params}
        if train and model_state:
            logits, updates = module.apply(variables, x, width, True, example_mask, mutable=["batch_stats"])
            return logits, updates["batch_stats"]
        return module.apply(variables, x, width, train, example_mask), model_state

    return StatefulFamily(init, apply)


def _draw(rng: np.random.Generator, shapes: Any) -> Any:
    """Host initial values for flax variable shapes (see `flax_family`), in a fixed (sorted path) order."""
    def value(path, leaf):
        name = path[-1].key
        if name == "kernel":
            gain = 1.0 if any(getattr(p, "key", None) == "head" for p in path) else 2.0
            fan_in = int(np.prod(leaf.shape[:-1]))
            return (rng.standard_normal(leaf.shape) * np.sqrt(gain / fan_in)).astype(np.float32)
        return (np.ones if name in ("scale", "var") else np.zeros)(leaf.shape, np.float32)

    return jax.tree_util.tree_map_with_path(value, shapes)


def split_initial(model, initial: Params) -> tuple[Params, ModelState]:
    """(parameters, model state) of a member's initial values as `init` gave them ({} state for stateless ones)."""
    if isinstance(model, StatefulFamily):
        return initial["params"], initial["model_state"]
    return initial, {}


def batch_logits(model, params: Params, model_state: ModelState, width, x: jax.Array, *, train: bool,
                 example_mask: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
    """Logits [B, C] of one member on a batch of flat inputs, and its new model state."""
    if isinstance(model, StatefulFamily):
        return model.apply(params, model_state, width, x, train, example_mask)
    return jax.vmap(model.apply, in_axes=(None, None, 0))(params, width, x), model_state
