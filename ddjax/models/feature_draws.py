"""Draws of random features' first layer: projections [N, d] ~ N(0, 1/d) and phases ~ U(0, 2 pi) (the ReLU map
reads the projections only; its phases are zero).

Two draws (config `feature_draw`), both exact draws of N features for every N (float32 values, as
`ddjax.models.families.random_features` stores them):

- `"common"` (common random numbers): one sequence of features for every N of a sweep; the draw of N features is
  the first N of it. The sequence is cut into chunks of `CHUNK` features, chunk k drawn from its own generator
  `default_rng([seed, 0, k])` (its `CHUNK` projection rows, row by row, then its `CHUNK` phases), so any range of
  features is drawn without drawing the features before it, and a prefix of the largest draw is the smaller draw.
  Members of one seed and different N share their first features: their curves are coupled (their differences
  are less noisy than independent draws', and an error in one is not averaged out by the others). Seeds stay
  independent of each other.
- `"independent"`: each N drawn on its own from `default_rng([seed, 0])` (the projection [d, N] row-major, then
  the phases), so no two widths share a feature.
"""

from __future__ import annotations

import numpy as np

DRAWS = ("common", "independent")
FEATURE_MAPS = ("fourier", "relu")
CHUNK = 1024  # features a generator of the common draw holds; part of the draw's definition (changing it redraws).


def feature_block(draw: str, seed: int, width: int, start: int, stop: int,
                  input_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Features [start, stop) of the draw of `width` features: projections [stop - start, input_dim] and phases
    [stop - start], float32.

    For the common draw the result does not depend on `width` (every width is a prefix of one sequence).
    """
    if not 0 <= start <= stop <= width:
        raise ValueError(f"features [{start}, {stop}) are not within a draw of {width}")
    if draw == "independent":
        projection, phase = _independent(seed, width, input_dim)
        return projection[start:stop], phase[start:stop]
    if draw != "common":
        raise ValueError(f"draw {draw!r} is not one of {DRAWS}")
    chunks = [_common_chunk(seed, k, input_dim) for k in range(start // CHUNK, -(-stop // CHUNK))]
    offset = (start // CHUNK) * CHUNK
    projection = np.concatenate([p for p, _ in chunks])[start - offset: stop - offset]
    phase = np.concatenate([b for _, b in chunks])[start - offset: stop - offset]
    return projection, phase


def feature_params(feature_map: str, draw: str, seed: int, width: int, max_width: int, input_dim: int,
                   n_classes: int) -> dict:
    """`random_features(feature_map)`'s parameters holding the draw of `width` features: projection
    [input_dim, max_width] and phases [max_width] (zero for "relu"), zero-padded; read-out at zero."""
    if feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature map {feature_map!r} is not one of {FEATURE_MAPS}")
    projection, phase = feature_block(draw, seed, width, 0, width, input_dim)
    w = np.zeros((input_dim, max_width), np.float32)
    w[:, :width] = projection.T
    b = np.zeros(max_width, np.float32)
    if feature_map == "fourier":
        b[:width] = phase
    return {"features": {"w": w, "b": b},
            "out": {"w": np.zeros((max_width, n_classes), np.float32), "b": np.zeros(n_classes, np.float32)}}


def _common_chunk(seed: int, k: int, input_dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0, k])
    projection = (rng.standard_normal((CHUNK, input_dim)) * (1 / np.sqrt(input_dim))).astype(np.float32)
    return projection, rng.uniform(0, 2 * np.pi, CHUNK).astype(np.float32)


def _independent(seed: int, width: int, input_dim: int) -> tuple[np.ndarray, np.ndarray]:
    # The arithmetic of `ddjax.models.families.padded_normal` (float64 draws scaled, then stored as float32).
    rng = np.random.default_rng([seed, 0])
    projection = np.zeros((input_dim, width), np.float32)
    projection[:] = rng.standard_normal((input_dim, width)) * (1 / np.sqrt(input_dim))
    return projection.T, rng.uniform(0, 2 * np.pi, width).astype(np.float32)
