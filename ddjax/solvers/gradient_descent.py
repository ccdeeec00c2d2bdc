"""`method="gradient_descent"`: full-batch gradient descent on least squares, and its risk over time in closed form.

Each member (`ddjax.data.multiscale_regression`) starts from w_0 = 0 and takes `steps` steps of

    w_{t+1} = w_t - eta X^T (X w_t - y) / n

at its learning rate eta, in float64, all members in one jitted program (vmapped, padded to the largest n and p:
padded rows and columns are zero and stay out of every sum). At each eval step it records the training mean
squared error and the exact test risk R(w_t) = |a * (w_t - b)|^2 + s^2.

The closed form (Heckel & Yilmaz 2020; Pezeshki et al. 2022): with the design's covariance
X^T X / n = V diag(lambda) V^T, w_t - b = -A_t b + (I - A_t) pinv(X^T X) X^T e with A_t = V diag((1 - eta
lambda)^t) V^T, so the risk averaged over the label noise e, given the design and the teacher, is

    E_e R(w_t) = (g_t * c)^T G (g_t * c) + (s^2 / n) sum_{lambda_i > 0} (1 - g_{t,i})^2 / lambda_i G_ii + s^2,

with g_{t,i} = (1 - eta lambda_i)^t, c = V^T b and G = V^T diag(a^2) V. It is recorded as the curve
`theory_risk` beside the trained `test_error`: bias falls and variance grows at each eigenvalue's own speed, so
blocks of different scales give one U each, and their sum can fall, rise and fall again.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import Config
from ddjax.data import multiscale_regression
from ddjax.data.gaussian_regression import Member
from ddjax.result import SweepResult
from ddjax.solvers.closed_form import EIGENVALUE_RTOL
from ddjax.training.members import expand_members
from ddjax.training.spec import log_spaced_steps

GD_CURVES = ("train_error", "test_error", "train_loss", "test_loss", "excess_risk", "theory_risk")


def expected_risk(x: jax.Array, b: jax.Array, a: jax.Array, n: jax.Array, eta: jax.Array, noise_var: float,
                  steps: jax.Array) -> jax.Array:
    """E_e R(w_t) at each of `steps` (module docstring) for one member's design x [n_max, p_max] (zero padded),
    teacher b, feature scales a, sample count n and learning rate eta."""
    eigenvalues, vectors = jnp.linalg.eigh(x.T @ x / n)
    positive = eigenvalues > EIGENVALUE_RTOL * eigenvalues[-1]
    c = vectors.T @ b
    gram = vectors.T @ (a[:, None] ** 2 * vectors)
    # Zero eigenvalues (padding, or p > n) keep g = 1: GD never moves along them.
    base = jnp.where(positive, 1 - eta * eigenvalues, 1.0)
    t = steps[:, None]
    # base^t with the sign of an integer power (a base in (-1, 0) when eta lambda is in (1, 2)).
    g = jnp.where((base < 0) & (t % 2 == 1), -1.0, 1.0) * jnp.abs(base) ** t.astype(jnp.float64)  # [T, p]
    bias = jnp.einsum("ti,ij,tj->t", g * c, gram, g * c)
    per_direction = jnp.where(positive, jnp.diag(gram) / jnp.where(positive, eigenvalues, 1.0), 0.0)
    variance = noise_var / n * jnp.sum((1 - g) ** 2 * per_direction, axis=1)
    return bias + variance + noise_var


def member_curves(config: Config, n_max: int, p_max: int, eval_steps: tuple[int, ...]):
    """A function of one member and its learning rate: its trained curves at `eval_steps` and the closed form."""
    steps = jnp.asarray(eval_steps)
    gaps = jnp.diff(jnp.concatenate([jnp.zeros(1, steps.dtype), steps]))

    def curves(member: Member, eta: jax.Array) -> dict[str, jax.Array]:
        x, y, b, a = multiscale_regression.member_problem(member, n_max, p_max, config.feature_scales,
                                                          config.signal_norm_sq, config.noise_var, config.data_seed)
        n = member.n_train.astype(jnp.float64)

        def descend(w, gap):
            w = jax.lax.fori_loop(0, gap, lambda _, w: w - eta * x.T @ (x @ w - y) / n, w)
            train_mse = jnp.sum((x @ w - y) ** 2) / n  # Padded rows are zero on both sides.
            excess = jnp.sum((a * (w - b)) ** 2)
            return w, (train_mse, excess)

        _, (train_mse, excess) = jax.lax.scan(descend, jnp.zeros(p_max), gaps)
        risk = excess + config.noise_var
        return {"train_error": train_mse, "test_error": risk, "train_loss": train_mse / 2, "test_loss": risk / 2,
                "excess_risk": excess, "theory_risk": expected_risk(x, b, a, n, eta, config.noise_var, steps)}

    return curves


def descend_sweep(config: Config) -> SweepResult:
    """Every member of `config`'s grid trained by full-batch gradient descent; curves at log-spaced eval steps."""
    coords = expand_members(config)
    eval_steps = log_spaced_steps(config.steps, config.n_evals)
    with jax.enable_x64(True):
        t0 = time.perf_counter()
        members = Member(width=jnp.asarray(coords["width"], jnp.int32),
                         n_train=jnp.asarray(coords["n_train"], jnp.int32),
                         seed=jnp.asarray(coords["seed"], jnp.uint32))
        rates = jnp.asarray(coords["learning_rate"], jnp.float64)
        solve = jax.jit(jax.vmap(member_curves(config, max(config.n_train), max(config.width), eval_steps)))
        compiled = solve.lower(members, rates).compile()
        t1 = time.perf_counter()
        outputs = jax.block_until_ready(compiled(members, rates))
        t2 = time.perf_counter()
    curves = {k: np.asarray(outputs[k], np.float64) for k in GD_CURVES}
    broken = ~np.isfinite(curves["test_error"]) | ~np.isfinite(curves["train_error"])
    # A rate above 2 / lambda_max diverges: its curves are NaN from the first non-finite evaluation on.
    first = np.where(broken.any(axis=1), broken.argmax(axis=1), -1)
    after = np.arange(len(eval_steps))[None, :] >= np.where(first < 0, len(eval_steps), first)[:, None]
    curves = {k: np.where(after, np.nan, v) for k, v in curves.items()}
    diverged = np.where(first < 0, -1, np.asarray(eval_steps)[np.maximum(first, 0)])
    return SweepResult(coords=coords, eval_steps=np.asarray(eval_steps), curves=curves, diverged_step=diverged,
                       group_widths=(max(config.width),), compile_seconds=t1 - t0, run_seconds=t2 - t1,
                       n_compiles=1, scheme="gradient_descent")
