"""Families from flax linen modules written for ONE member applied to a BATCH: `flax_family` makes such a module
a `ddjax.models.family.Family`, the one interface of every family (the convolutional ones in `ddjax.models.conv`
are built so). Their model state is flax's "batch_stats" collection: BatchNorm's running statistics, `{}` for a
module without BatchNorm (cnn1d).

Why the trainer's `jax.vmap` over flax variables and not flax's `nn.vmap`: `nn.vmap` would put the member axis
inside the module (a module of M members), so serial mode would need a second module and the trainer could no
longer lift one per-member function; `nn.vmap` is itself built on `jax.vmap`, so no speed is expected from it (an
argument, not a measurement).

Padding (the rule of `ddjax.models.family`): variables are drawn on the host in the shapes of the module at the
member's true width, then every array is zero-padded at the end of each axis to the shapes of the module at
`max_width` (true channels first). Modules mask every channel after BatchNorm + ReLU, so padded channels are 0
whatever their (zero) parameters and get exactly zero gradient; a padded channel's BatchNorm sees a constant 0
(mean 0, variance 0, output 0 for its zero scale and bias), never a NaN.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddjax.models.family import Family


def pad_to(tree: Any, shapes: Any) -> Any:
    """Every array of `tree` zero-padded at the end of each axis to the matching shape in `shapes`."""
    def pad(leaf, target):
        leaf = np.asarray(leaf, np.float32)
        return np.pad(leaf, [(0, t - s) for s, t in zip(leaf.shape, target.shape)])

    return jax.tree.map(pad, tree, shapes)


def flax_family(make_module: Callable[[int], nn.Module], input_shape: tuple[int, ...]) -> Family:
    """A `Family` from `make_module(max_width)`, a flax module called as
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

    return Family(init, apply)


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
