"""Regression on the circle (dataset "circle"): a target that a one-hidden-layer ReLU network can learn only through
its first layer's biases, for epoch-wise double descent (`experiments/two_layer_epochwise.py`).

Inputs are points x = (cos phi, sin phi) of the unit circle: the training split max(n_train) angles equally spaced
from an offset phi_0 drawn from `data_seed` (a member with fewer takes the first n_train of them), the test split
`n_samples` equally spaced angles (its mean is the average over the circle to high accuracy). The C = `n_classes`
outputs are

    f*_c(phi) = sqrt(2) [1.5 cos(phi - psi_c) + cos(3 (phi - psi_c))],   psi_c = 2 pi c / C.

ReLU features relu(w.x + b) with b = 0 at initialization, and the first layer's weight gradients, reach only the
constant, the linear and the even harmonics; cos 3 phi, odd and nonlinear, is reached by the first layer's bias
gradients 1[w.x > 0] alone (docs/epochwise.md). Members add Gaussian noise of standard deviation `target_noise` to
their training targets (`ddjax.data.datasets.member_labels`); test targets are clean, so the test error is the
test risk.
"""

from __future__ import annotations

import functools

import numpy as np

from ddjax.data.datasets import Dataset

LINEAR, THIRD = 1.5, 1.0  # The amplitudes of the first and third harmonic.


def targets(phi: np.ndarray, n_outputs: int) -> np.ndarray:
    """f* at angles `phi`: float32 [len(phi), n_outputs]."""
    shifted = phi[:, None] - 2 * np.pi * np.arange(n_outputs)[None, :] / n_outputs
    return (np.sqrt(2) * (LINEAR * np.cos(shifted) + THIRD * np.cos(3 * shifted))).astype(np.float32)


@functools.lru_cache(maxsize=4)
def make_circle(n_train: int, n_test: int, n_outputs: int, seed: int) -> Dataset:
    """The circle data set of `n_train` training and `n_test` test angles (module docstring)."""
    offset = np.random.default_rng([seed, 3]).uniform(0, 2 * np.pi)
    train = offset + 2 * np.pi * np.arange(n_train) / n_train
    test = 2 * np.pi * np.arange(n_test) / n_test

    def points(phi):
        return np.stack([np.cos(phi), np.sin(phi)], axis=1).astype(np.float32)

    return Dataset(points(train), targets(train, n_outputs), points(test), targets(test, n_outputs), n_outputs)
