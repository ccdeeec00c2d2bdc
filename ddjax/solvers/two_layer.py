"""The two-layer ReLU network linearized at its initialization: per-layer kernels and the test risk over training
in closed form, for gradient descent with one step size per layer (Heckel & Yilmaz 2021, Sec. 4).

The network is ddjax's depth-1 MLP for ONE member, f(x) = relu(x W1 + b1) W2 + b2 with C outputs (params
{"hidden": [{"w": W1 [d, m], "b": b1 [m]}], "out": {"w": W2 [m, C], "b": b2 [C]}}). Full-batch gradient descent on

    L = (1/n) sum_i 0.5 |f(x_i) - y_i|^2          (sum over outputs, mean over examples)

moves the first layer (W1, b1) with step eta1 and the second (W2, b2) with step eta2. Linearized at the
initialization theta_0, f_t(x) = f_0(x) + J(x)(theta_t - theta_0), one step moves the training outputs by
-(1/n) K (f_t(X) - y) with the tangent kernel of the step sizes

    K = eta1 K1 + eta2 K2,   K_l(x, x') = J_l(x) J_l(x')^T  (layer l's parameters only),

which for this network are, with h = x W1 + b1 and D_k(x) = 1[h_k(x) > 0],

    K1[(x,c), (x',c')] = (x.x' + 1) sum_k D_k(x) D_k(x') W2[k,c] W2[k,c']       (W1 and b1)
    K2[(x,c), (x',c')] = delta_cc' (sum_k relu(h_k(x)) relu(h_k(x')) + 1)        (W2 and b2).

Rows and columns run over (example, output) pairs, example-major (index i C + c). The training residual after t
steps is (I - K/n)^t (f_0(X) - y), and the predictions anywhere are

    f_t(X*) = f_0(X*) + K(X*, X) K^+ [I - (I - K/n)^t] (y - f_0(X)).

With K = U diag(lambda) U^T this is f_0(X*) + B diag(phi_t) U^T (y - f_0(X)), B = K(X*, X) U and
phi_t(lambda) = (1 - (1 - lambda/n)^t) / lambda: direction u_i is fitted at its own speed lambda_i / n, a
falling bias and a growing variance each, and the risk over time is their sum over the eigenvectors of K itself
(K1 and K2 do not commute, so the two layers' tradeoffs cannot be added separately). A zero eigenvalue is a
direction gradient descent never moves (its row of K(X*, X) U vanishes too, K being a Gram matrix of the same
features), so phi = 0 there. The initial output f_0 is kept: the network starts from it, not from zero. If W2 = 0
at initialization, K1 vanishes and only the second layer learns at first.

Everything here is written for one member and works in the dtype it is given: call it under
`jax.enable_x64(True)` with float64 arrays for the closed form's exactness. Zero-padded units (ddjax's width
padding: zero columns of W1, zero b1) have h = 0, hence no feature and no activation, and drop out of both kernels.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.data.datasets import member_labels

Params = dict[str, Any]  # ddjax's depth-1 MLP params of one member (module docstring)
# Eigenvalues below this fraction of the largest are treated as zero: directions gradient descent never moves.
EIGENVALUE_RTOL = 1e-12


class LayerKernels(NamedTuple):
    """The two layers' tangent kernels between rows x_rows and columns x_cols, each [n_rows C, n_cols C]."""

    first: jax.Array   # K1: W1 and b1
    second: jax.Array  # K2: W2 and b2


class Spectrum(NamedTuple):
    """What the closed form needs of one combined kernel K = eta1 K1 + eta2 K2 and its training set.

    eigenvalues [N] and test_basis = K(X*, X) U [N*, N] from K = U diag(eigenvalues) U^T on the N = n C training
    pairs; residual = U^T (y - f_0(X)) [N] (noisy targets), clean_residual = U^T (f*(X) - f_0(X)) with the clean
    targets when known (else the same); f0_test [N*]; n the number of training examples.
    """

    eigenvalues: jax.Array
    test_basis: jax.Array
    residual: jax.Array
    clean_residual: jax.Array
    f0_test: jax.Array
    n: int


def first_layer(params: Params) -> tuple[jax.Array, jax.Array]:
    """(W1 [d, m], b1 [m]) of ddjax's depth-1 MLP params."""
    (layer,) = params["hidden"]
    return layer["w"], layer["b"]


def second_layer(params: Params) -> tuple[jax.Array, jax.Array]:
    """(W2 [m, C], b2 [C]) of ddjax's depth-1 MLP params."""
    return params["out"]["w"], params["out"]["b"]


def outputs(params: Params, x: jax.Array) -> jax.Array:
    """f(x) [n, C] = relu(x W1 + b1) W2 + b2."""
    w1, b1 = first_layer(params)
    w2, b2 = second_layer(params)
    return jax.nn.relu(x @ w1 + b1) @ w2 + b2


def layer_kernels(params: Params, x_rows: jax.Array, x_cols: jax.Array) -> LayerKernels:
    """K1 and K2 (module docstring) between x_rows [n_r, d] and x_cols [n_c, d], flattened example-major."""
    w1, b1 = first_layer(params)
    w2, _ = second_layer(params)
    h_rows, h_cols = x_rows @ w1 + b1, x_cols @ w1 + b1
    c = w2.shape[1]

    def active(h):  # [n, m] -> rows (example, output): D_k(x) W2[k, c], [n C, m]
        return ((h > 0).astype(w2.dtype)[:, None, :] * w2.T[None]).reshape(-1, w2.shape[0])

    inputs = jnp.repeat(jnp.repeat(x_rows @ x_cols.T + 1, c, axis=0), c, axis=1)
    first = inputs * (active(h_rows) @ active(h_cols).T)
    features = jax.nn.relu(h_rows) @ jax.nn.relu(h_cols).T + 1
    second = jnp.kron(features, jnp.eye(c, dtype=features.dtype))
    return LayerKernels(first, second)


def matched_ratio(train: LayerKernels) -> jax.Array:
    """The first-to-second step ratio eta1 / eta2 = lambda_max(K2) / lambda_max(K1) that gives both layers' kernels
    the same largest eigenvalue of step x kernel, so that each layer's fastest direction is fitted at the same speed
    (the operational form of Heckel & Yilmaz's prescription: scale the step sizes so the layers' bias-variance
    tradeoffs happen at the same time instead of one after the other)."""
    return jnp.linalg.eigvalsh(train.second)[-1] / jnp.linalg.eigvalsh(train.first)[-1]


def combined(kernels: LayerKernels, eta1: float | jax.Array, eta2: float | jax.Array) -> jax.Array:
    """K = eta1 K1 + eta2 K2: the tangent kernel of gradient descent with step eta1 on the first layer and eta2 on
    the second."""
    return eta1 * kernels.first + eta2 * kernels.second


def stable_steps(train: LayerKernels, ratio: float | jax.Array, n: int, *, fraction: float = 0.9
                 ) -> tuple[jax.Array, jax.Array]:
    """(eta1, eta2) with eta1 / eta2 = `ratio` and lambda_max(eta1 K1 + eta2 K2) / n = `fraction`: the fastest
    direction is fitted at rate `fraction` per step (gradient descent on the linearized model diverges above 2)."""
    top = jnp.linalg.eigvalsh(combined(train, ratio, 1.0))[-1]
    eta2 = fraction * n / top
    return ratio * eta2, eta2


def spectrum(kernel_train: jax.Array, kernel_test_train: jax.Array, f0_train: jax.Array, f0_test: jax.Array,
             y: jax.Array, clean_y: jax.Array | None = None) -> Spectrum:
    """The eigendecomposition of the combined kernel and the projections the closed form needs.

    Args:
      kernel_train: K(X, X) [n C, n C] (`combined`).
      kernel_test_train: K(X*, X) [n* C, n C].
      f0_train, f0_test: initial outputs [n, C] and [n*, C].
      y: training targets [n, C] (with their noise).
      clean_y: the same targets without noise, for `expected_risk`; None: y.
    """
    n = f0_train.shape[0]
    eigenvalues, vectors = jnp.linalg.eigh(kernel_train)
    residual = vectors.T @ (y - f0_train).reshape(-1)
    clean = residual if clean_y is None else vectors.T @ (clean_y - f0_train).reshape(-1)
    return Spectrum(eigenvalues, kernel_test_train @ vectors, residual, clean, f0_test.reshape(-1), n)


def fitted_fraction(spec: Spectrum, steps: jax.Array) -> jax.Array:
    """phi_t(lambda) = (1 - (1 - lambda/n)^t) / lambda for each step t [T] and eigenvalue [N]: [T, N].

    Zero eigenvalues (below EIGENVALUE_RTOL of the largest) give 0: gradient descent never moves along them.
    """
    lam = spec.eigenvalues
    positive = lam > EIGENVALUE_RTOL * lam[-1]
    base = jnp.where(positive, 1 - lam / spec.n, 1.0)
    t = jnp.asarray(steps)[:, None]
    tf = t.astype(lam.dtype)
    # 1 - base^t: expm1 keeps the slow directions (base just below 1) exact; a base in (-1, 0) (a rate in (1, 2))
    # takes the sign of an integer power.
    power = jnp.where((base < 0) & (t % 2 == 1), -1.0, 1.0) * jnp.abs(base) ** tf
    one_minus = jnp.where(base > 0, -jnp.expm1(tf * jnp.log(jnp.where(base > 0, base, 1.0))), 1 - power)
    return jnp.where(positive, one_minus / jnp.where(positive, lam, 1.0), 0.0)


def predictions(spec: Spectrum, steps: jax.Array) -> jax.Array:
    """f_t(X*) flattened [T, n* C] after each of `steps` gradient-descent steps on the linearized network."""
    return spec.f0_test[None] + (fitted_fraction(spec, steps) * spec.residual) @ spec.test_basis.T


def risk(spec: Spectrum, steps: jax.Array, test_targets: jax.Array) -> jax.Array:
    """Mean squared error over test examples and outputs [T] of the linearized network's predictions against
    `test_targets` [n*, C] (clean targets: the excess risk)."""
    return jnp.mean((predictions(spec, steps) - test_targets.reshape(-1)) ** 2, axis=1)


def expected_risk(spec: Spectrum, steps: jax.Array, test_targets: jax.Array, noise_var: float | jax.Array
                  ) -> jax.Array:
    """`risk` averaged over the training targets' noise, y = clean_y + e with e ~ N(0, noise_var) independent over
    examples and outputs, given the design and the initialization:

        E_e risk_t = mean (f_0(X*) + B (phi_t * U^T (clean_y - f_0(X))) - y*)^2
                     + noise_var sum_i phi_t,i^2 |B_i|^2 / N*.
    """
    phi = fitted_fraction(spec, steps)
    mean = spec.f0_test[None] + (phi * spec.clean_residual) @ spec.test_basis.T
    bias = jnp.mean((mean - test_targets.reshape(-1)) ** 2, axis=1)
    variance = noise_var * (phi**2) @ jnp.sum(spec.test_basis**2, axis=0) / spec.test_basis.shape[0]
    return bias + variance


def linearized_risk(params: Params, x: jax.Array, y: jax.Array, x_test: jax.Array, test_targets: jax.Array,
                    eta1: float | jax.Array, eta2: float | jax.Array, steps: jax.Array, *,
                    clean_y: jax.Array | None = None, noise_var: float | None = None) -> jax.Array:
    """The test risk [T] of the network `params` linearized at itself, after each of `steps` full-batch gradient
    steps with eta1 on the first layer and eta2 on the second: `risk` on the targets y as drawn, or, with clean_y
    and noise_var, `expected_risk` averaged over the targets' noise."""
    train = layer_kernels(params, x, x)
    test = layer_kernels(params, x_test, x)
    spec = spectrum(combined(train, eta1, eta2), combined(test, eta1, eta2), outputs(params, x),
                    outputs(params, x_test), y, clean_y)
    steps = jnp.asarray(steps)
    if noise_var is None:
        return risk(spec, steps, test_targets)
    return expected_risk(spec, steps, test_targets, noise_var)


def theory_curves(config, dataset, spec, coords, eval_steps) -> dict[str, np.ndarray]:
    """`theory_risk` [member, eval step]: each trained member's test risk over training in closed form, its network
    linearized at its own initialization (`config.theory == "linearized"`: a one-hidden-layer MLP trained by
    full-batch gradient descent on a regression data set), on its training targets as drawn; the member's steps
    are its learning rate times its layer_rate on `config.layer_group` (the first layer, or the read-out)."""
    from ddjax.training.members import member_variables  # The members' own initial values.

    first_group = config.layer_group == "hidden/0/*"
    risks = []
    with jax.enable_x64(True):
        for i in range(len(coords["width"])):
            width, n = int(coords["width"][i]), int(coords["n_train"][i])
            params = member_variables(spec, int(coords["seed"][i]), width, width,
                                      float(coords["layer_init_scale"][i]))["params"]
            params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
            targets = member_labels(dataset, n, 0.0, int(coords["seed"][i]), config.data_seed,
                                    float(coords["target_noise"][i]))[:, :n].T
            rate, layer = float(coords["learning_rate"][i]), float(coords["layer_rate"][i])
            eta1, eta2 = (rate * layer, rate) if first_group else (rate, rate * layer)
            risks.append(np.asarray(linearized_risk(
                params, jnp.asarray(dataset.x_train[:n], jnp.float64), jnp.asarray(targets, jnp.float64),
                jnp.asarray(dataset.x_test, jnp.float64), jnp.asarray(dataset.y_test, jnp.float64), eta1, eta2,
                jnp.asarray(eval_steps))))
    return {"theory_risk": np.stack(risks)}
