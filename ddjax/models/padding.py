"""Padding derived from a module of any width: a member of width w held exactly as a member of width W whose extra
entries are zero and stay zero.

`width_layout` reads, from `jax.eval_shape` of the module's variables at every width of a sweep, which axes of
each variable grow with the width (structure that changes with the width, a shrinking axis or a tree that differs
between widths is a reason to fall back), and the true size of the feature axis of every normalization layer
(LayerNorm, RMSNorm, GroupNorm) at each width, from the shapes of their inputs. From the layout:
- `pad_variables` embeds a member's variables, drawn by the module's own initializers at its true width, in the
  shapes of width W (zeros after the true entries on every axis), so a padded member starts where a serial one
  does;
- `entry_mask` gives 1.0 on a member's true entries and 0.0 on its padding, for a traced width: the engine
  multiplies each entry's update by it, so no optimizer, weight decay or momentum moves a padded entry;
- `masked_norms` is a flax interceptor that passes each normalization layer the `mask=` of its true features and
  zeroes its padded outputs, so that statistics over the feature axis see the true features only.

Whether that makes a module's padded members exact is not assumed: `ddjax.models.exactness` checks it.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Layers whose statistics run over the feature axis; each takes flax's `mask=`.
NORMS = (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm)


class WidthLayout(NamedTuple):
    """How a module's parameters (and normalized features) grow with its width: every size along a growing axis
    is affine in the width, size(w) = slope * w + intercept."""

    widths: tuple[int, ...]  # Ascending distinct widths the layout was read at (at least two).
    treedef: Any  # Of the parameters, the same at every width.
    # Per parameter: ([ndim] slopes, [ndim] intercepts) of its shape; slope 0 on an axis that does not grow.
    sizes: tuple[tuple[np.ndarray, np.ndarray], ...]
    # Per normalization layer's path: (slope, intercept) of its true feature count.
    norm_sizes: dict[tuple[str, ...], tuple[int, int]]

    def width_of(self, params: Any) -> int:
        """The width whose shapes `params` has (the width members are held at), from a growing axis."""
        for (slopes, intercepts), leaf in zip(self.sizes, jax.tree.leaves(params)):
            for axis in np.flatnonzero(slopes):
                return int((np.shape(leaf)[axis] - intercepts[axis]) // slopes[axis])
        raise ValueError("no parameter grows with the width")


def _affine(path: str, widths: tuple[int, ...], sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
    """(slopes, intercepts) with sizes[i] == slopes * widths[i] + intercepts, or why not."""
    w = np.asarray(widths)
    slopes = (sizes[1] - sizes[0]) // (w[1] - w[0])
    intercepts = sizes[0] - slopes * w[0]
    if not np.array_equal(np.outer(w, slopes) + intercepts, sizes):
        return f"`{path}` does not grow linearly with the width"
    if np.any(slopes < 0):
        return f"`{path}` shrinks as the width grows"
    return slopes, intercepts


def width_layout(variables_at: Callable[[int], Any], norm_inputs_at: Callable[[int], dict],
                 widths: tuple[int, ...]) -> WidthLayout | str:
    """The layout of a module from its parameter shapes (`variables_at(width)`: a tree of shapes) and its
    normalization layers' input shapes (`norm_inputs_at(width)`: path -> shape) at each of `widths` (at least
    two); or, where it cannot be padded, why (one phrase)."""
    widths = tuple(sorted(set(int(w) for w in widths)))
    trees = [variables_at(w) for w in widths]
    treedef = jax.tree.structure(trees[0])
    for w, tree in zip(widths, trees):
        if jax.tree.structure(tree) != treedef:
            return f"its variables differ in structure between widths {widths[0]} and {w}"
    leaves = [jax.tree.leaves(tree) for tree in trees]
    sizes = []
    for i, path in enumerate(leaf_paths(trees[0])):
        if len({np.ndim(leaf[i]) for leaf in leaves}) != 1:
            return f"`{path}` changes its number of axes with the width"
        fit = _affine(path, widths, np.array([np.shape(leaf[i]) for leaf in leaves], np.int64).reshape(len(widths),
                                                                                                           -1))
        if isinstance(fit, str):
            return fit
        sizes.append(fit)
    norms = [norm_inputs_at(w) for w in widths]
    norm_sizes = {}
    for path in norms[0]:
        if any(path not in n for n in norms):
            return f"the normalization layer `{'/'.join(path)}` is not called at every width"
        fit = _affine("/".join(path), widths, np.array([[n[path][-1]] for n in norms], np.int64))
        if isinstance(fit, str):
            return fit
        norm_sizes[path] = (int(fit[0][0]), int(fit[1][0]))
    return WidthLayout(widths, treedef, tuple(sizes), norm_sizes)


def pad_variables(variables: Any, shapes: Any) -> Any:
    """Every array of `variables` (host) zero-padded at the end of each axis to the matching shape in `shapes`."""
    def pad(leaf, target):
        leaf = np.asarray(leaf, np.float32)
        return np.pad(leaf, [(0, t - s) for s, t in zip(leaf.shape, target.shape)])

    return jax.tree.map(pad, variables, shapes)


def entry_mask(layout: WidthLayout, variables: Any, width) -> Any:
    """1.0 on the true entries of a member of `width` held in `variables` (any padded width), 0.0 on its padding:
    a tree like `variables`, each leaf the product over its axes that grow with the width of `iota < true size`."""
    def mask(sizes, leaf):
        slopes, intercepts = sizes
        out = jnp.ones((), leaf.dtype)
        for axis in np.flatnonzero(slopes):
            true_size = int(slopes[axis]) * width + int(intercepts[axis])
            shape = [1] * leaf.ndim
            shape[axis] = leaf.shape[axis]
            out = out * (jnp.arange(leaf.shape[axis]) < true_size).astype(leaf.dtype).reshape(shape)
        return jnp.broadcast_to(out, leaf.shape)

    return jax.tree.unflatten(jax.tree.structure(variables),
                              [mask(s, leaf) for s, leaf in zip(layout.sizes, jax.tree.leaves(variables))])


def masked_norms(layout: WidthLayout, width) -> Callable:
    """A flax interceptor (`nn.intercept_methods`) that gives each normalization layer of a member of `width` the
    mask of its true features (last axis) and zeroes its padded outputs."""
    def interceptor(next_fun, args, kwargs, context):
        path = tuple(context.module.scope.path)
        if not isinstance(context.module, NORMS) or context.method_name != "__call__" or path not in layout.norm_sizes:
            return next_fun(*args, **kwargs)
        x = args[0]
        slope, intercept = layout.norm_sizes[path]
        true = jnp.arange(x.shape[-1]) < slope * width + intercept
        mask = jnp.broadcast_to(true, x.shape)
        if kwargs.get("mask") is not None:
            mask = mask & kwargs["mask"]
        return next_fun(*args, **{**kwargs, "mask": mask}) * true.astype(x.dtype)

    return interceptor


def recorded_norm_inputs(apply: Callable[[], Any]) -> dict[tuple[str, ...], tuple[int, ...]]:
    """The input shape of every normalization layer called while `apply()` runs (traced, e.g. under
    `jax.eval_shape`), by the layer's path."""
    seen = {}

    def interceptor(next_fun, args, kwargs, context):
        if isinstance(context.module, NORMS) and context.method_name == "__call__":
            seen[tuple(context.module.scope.path)] = tuple(args[0].shape)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        apply()
    return seen


def _path(key_path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in key_path)


def leaf_paths(tree: Any) -> list[str]:
    """The path of every leaf of `tree`, "a/b/c" (dict keys, sequence indices)."""
    return [_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
