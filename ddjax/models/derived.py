"""What memory planning and width grouping ask of a family, derived from the family itself: parameter values
(`jax.eval_shape` of its variables), multiply-accumulates (XLA's cost analysis of one example's forward pass,
flops / 2, without compiling) and activation values (every intermediate of that forward pass, an upper bound of
what the backward pass keeps).

Each count is `(width, input_shape, n_classes, depth) -> int`, the registry's signature for families built for the
shape of one example, and is remembered per argument tuple: a sweep asks it once per distinct width.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

# (width, input_shape, n_classes) -> (shapes of the member's variables, forward(variables, x [1, *input_shape])).
Probe = Callable[[int, tuple[int, ...], int], tuple[Any, Callable[[Any, jax.Array], jax.Array]]]
Count = Callable[[int, tuple[int, ...], int, int], int]


class Counts(NamedTuple):
    """A family's counts per member of a width, each `(width, input_shape, n_classes, depth) -> int`."""

    parameters: Count
    macs: Count
    activations: Count


def derived_counts(probe: Probe) -> Counts:
    """The three counts of the family that `probe` describes (see `Probe`)."""

    @functools.lru_cache(maxsize=256)
    def traced(width: int, input_shape: tuple[int, ...], n_classes: int):
        shapes, forward = probe(width, tuple(input_shape), n_classes)
        x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        parameters = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
        flops = jax.jit(forward).lower(shapes, x).cost_analysis().get("flops", 0.0)
        jaxpr = jax.make_jaxpr(forward)(shapes, x)
        return parameters, max(int(flops // 2), 1), max(_intermediate_values(jaxpr.jaxpr), 1)

    def count(index: int) -> Count:
        return lambda width, input_shape, n_classes, depth=1: traced(int(width), tuple(input_shape), n_classes)[index]

    return Counts(count(0), count(1), count(2))


def _intermediate_values(jaxpr: Any) -> int:
    """Values of every equation's outputs, inner jaxprs (jit, custom derivatives) included."""
    total = 0
    for equation in jaxpr.eqns:
        total += sum(math.prod(getattr(v.aval, "shape", ())) for v in equation.outvars)
        for param in equation.params.values():
            for inner in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(inner, "jaxpr", inner)
                if hasattr(inner, "eqns"):
                    total += _intermediate_values(inner)
    return total


def counted(given: Count | Callable[[int, tuple[int, ...], int], int] | None, derived: Count) -> Count:
    """`given` (a user's `(width, input_shape, n_classes) -> int`) where there is one, else `derived`."""
    if given is None:
        return derived
    return lambda width, input_shape, n_classes, depth=1: int(given(int(width), tuple(input_shape), n_classes))
