"""MLP (any depth) and random ReLU/Fourier features, written for ONE member on ONE example and lifted over the
batch by `ddjax.models.family.stateless_family` (the padding rule is that module's).

Initial values are drawn on the host at the member's true width from its seed and then zero-padded, so a padded
member starts exactly where the same member built alone starts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.models.family import Family, stateless_family, unit_mask
from ddjax.models.feature_draws import feature_params


def padded_normal(rng: np.random.Generator, shape: tuple[int, int], padded_shape: tuple[int, int],
                  std: float) -> np.ndarray:
    """A `shape` block of N(0, std^2) draws in the top-left corner of zeros of `padded_shape`."""
    out = np.zeros(padded_shape, np.float32)
    out[: shape[0], : shape[1]] = rng.standard_normal(shape) * std
    return out


def _layer(rng, fan_in, shape, padded_shape, gain):
    return {"w": padded_normal(rng, shape, padded_shape, np.sqrt(gain / fan_in)),
            "b": np.zeros(padded_shape[1], np.float32)}


def mlp(depth: int) -> Family:
    """ReLU MLP with `depth` hidden layers of the member's width (He init, LeCun init for the output layer).

    Fan-in of every layer after the first is the member's true width, never the padded width.
    """

    def init_params(seed, width, max_width, input_dim, n_classes):
        rng = np.random.default_rng([seed, depth])
        hidden = [_layer(rng, input_dim, (input_dim, width), (input_dim, max_width), 2.0)]
        hidden += [_layer(rng, width, (width, width), (max_width, max_width), 2.0) for _ in range(depth - 1)]
        out = _layer(rng, width, (width, n_classes), (max_width, n_classes), 1.0)
        return {"hidden": hidden, "out": out}

    def apply_one(params, width, x):
        mask = unit_mask(width, params["out"]["w"].shape[0], x.dtype)
        h = x
        for layer in params["hidden"]:
            # Mask after the activation so padded units get exactly zero gradient, whatever their weights.
            h = jax.nn.relu(h @ layer["w"] + layer["b"]) * mask
        return h @ params["out"]["w"] + params["out"]["b"]

    return stateless_family(init_params, apply_one)


def cosine_features(z: jax.Array) -> jax.Array:
    """Random Fourier features' activation, sqrt(2) cos(z): unit mean square over uniform phases."""
    return jnp.sqrt(2.0) * jnp.cos(z)


def random_features(feature_map: str, draw: str = "common") -> Family:
    """Fixed random first layer (not trained), trained linear read-out initialised at zero.

    `feature_map` is "relu" (ReLU of Gaussian projections) or "fourier" (sqrt(2) cos of Gaussian projections plus
    uniform phases), drawn by `draw` (`ddjax.models.feature_draws`: "common", every width's features the first
    of one sequence, or "independent"). Features are scaled by 1/sqrt(width) so the read-out's scale does not grow
    with width; from a zero init, gradient descent on squared loss converges to the minimum-norm least-squares
    read-out.
    """

    def init_params(seed, width, max_width, input_dim, n_classes):
        return feature_params(feature_map, draw, seed, width, max_width, input_dim, n_classes)

    def features_one(params, width, x):
        max_width = params["out"]["w"].shape[0]
        first = jax.lax.stop_gradient(params["features"])  # The first layer is fixed.
        z = x @ first["w"] + first["b"]
        h = jax.nn.relu(z) if feature_map == "relu" else cosine_features(z)
        return h * unit_mask(width, max_width, h.dtype) / jnp.sqrt(jnp.maximum(width, 1).astype(h.dtype))

    def apply_one(params, width, x):
        return features_one(params, width, x) @ params["out"]["w"] + params["out"]["b"]

    return stateless_family(init_params, apply_one, features_one)
