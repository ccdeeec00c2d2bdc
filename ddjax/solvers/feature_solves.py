"""One width's read-outs from the products a stage of `ddjax.solvers.feature_blocks` has accumulated, and their
curves as `ddjax.solvers.closed_form.readout_member` defines them.

Both sides use unscaled features c = act(x P^T + b) of the draw (`activate`: cos for random Fourier features,
ReLU for random ReLU features): a member of width N reads sqrt(g / N) c, with the map's gain g (`GAINS`), and a
constant 1 for its bias, so its Gram matrices are the accumulated products times g / N (and the bias's terms).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ddjax.solvers import symmetric

# A member of width N reads sqrt(GAINS[map] / N) act(z): `ddjax.models.families.random_features`' sqrt(2) cos(z)
# / sqrt(N) and relu(z) / sqrt(N).
GAINS = {"fourier": 2.0, "relu": 1.0}


def activate(feature_map: str, z: np.ndarray) -> np.ndarray:
    """The unscaled features act(z) of `feature_map`, in place of the pre-activations `z`."""
    if feature_map == "fourier":
        return np.cos(z, out=z)
    return np.maximum(z, 0.0, out=z)


def solve_features(fit: np.ndarray, evaluated: np.ndarray, problem: Any, shifts: Sequence[float | None], *,
                   factorization: str = "auto") -> tuple[dict[str, np.ndarray], symmetric.Solves]:
    """Curves [shift] of the width-N member from its unscaled features of the fitted rows `fit` [N, n_fit] and of the
    evaluated rows `evaluated` [N, n_eval]: W = (A^T A + shift I)^-1 A^T Y on the (N + 1) x (N + 1) side."""
    width, n_fit = fit.shape
    scale = np.sqrt(GAINS[problem.feature_map] / width)
    gram = np.zeros((width, width))
    symmetric.add_gram(gram, fit.T)
    sums = fit.sum(axis=1)

    def fill(out, shift):
        np.multiply(gram, scale**2, out=out[:width, :width])
        out[width, :width] = scale * sums
        out[width, width] = n_fit
        out.reshape(-1)[:: width + 2] += shift

    targets = one_hot(problem.y_fit, problem.n_classes)
    rhs = np.concatenate([scale * (fit @ targets), targets.sum(axis=0, keepdims=True)])
    solves = symmetric.solve_shifted(fill, width + 1, rhs, shifts, factorization=factorization)
    values = []
    for weights in solves.solutions:
        def logits(features):
            return scale * (features.T @ weights[:width]) + weights[width]

        values.append(readout_values(problem, logits(fit), logits(evaluated), np.sqrt(np.sum(weights**2))))
    return stack(values), solves


def solve_samples(gram: np.ndarray, cross: np.ndarray, width: int, problem: Any, shifts: Sequence[float | None], *,
                  factorization: str = "auto") -> tuple[dict[str, np.ndarray], symmetric.Solves]:
    """Curves [shift] of the width-N member from the products of its unscaled features over all N of them: `gram`
    [n_fit, n_fit] (lower triangle) of the fitted rows and `cross` [n_eval, n_fit] of the evaluated rows with
    them. W = A^T alpha with alpha = (K + shift I)^-1 Y and K = A A^T = (g / N) gram + 1 1^T."""
    scale = GAINS[problem.feature_map] / width

    def fill(out, shift):
        np.multiply(gram, scale, out=out)
        out += 1.0
        out.reshape(-1)[:: len(out) + 1] += shift

    solves = symmetric.solve_shifted(fill, len(gram), one_hot(problem.y_fit, problem.n_classes), shifts,
                                     factorization=factorization)
    values = []
    for alpha in solves.solutions:
        bias = alpha.sum(axis=0)
        fitted = scale * symmetric.symmetric_product(gram, alpha) + bias  # K alpha
        values.append(readout_values(problem, fitted, scale * (cross @ alpha) + bias,
                                     np.sqrt(np.sum(alpha * fitted))))
    return stack(values), solves


def readout_values(problem: Any, fitted: np.ndarray, evaluated: np.ndarray, weight_norm: float) -> dict:
    """`readout_member`'s curves of one solution from its logits on the fitted rows and on the evaluated rows
    (the `problem.n_val` validation rows first): error = argmax != label, loss = half the squared distance to
    one-hot, means over rows."""
    n_val = problem.n_val
    values = {"train_error": _error(fitted, problem.y_fit), "train_loss": _loss(fitted, problem.y_fit),
              "test_error": _error(evaluated[n_val:], problem.y_eval[n_val:]),
              "test_loss": _loss(evaluated[n_val:], problem.y_eval[n_val:]), "weight_norm": weight_norm}
    if problem.validation:
        values.update(val_error=_error(evaluated[:n_val], problem.y_eval[:n_val]),
                      val_loss=_loss(evaluated[:n_val], problem.y_eval[:n_val]))
    return values


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return (np.asarray(labels)[:, None] == np.arange(n_classes)).astype(np.float64)


def stack(values: list[dict]) -> dict[str, np.ndarray]:
    """[{name: value}] per strength -> {name: [strength]}."""
    return {k: np.array([float(v[k]) for v in values]) for k in values[0]}


def _error(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) != labels))


def _loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """`ddjax.training.metrics.example_losses` for the squared loss, averaged."""
    return float(np.mean(0.5 * np.sum((logits - one_hot(labels, logits.shape[-1])) ** 2, axis=-1)))
