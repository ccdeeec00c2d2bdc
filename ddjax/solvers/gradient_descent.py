"""`method="gradient_descent"`: full-batch gradient descent on least squares, and its risk over time in closed form.

Each member (`ddjax.data.multiscale_regression`) starts from w_0 = 0 and takes `steps` steps of

    w_{t+1} = w_t - eta X^T (X w_t - y) / n

at its learning rate eta, in float64, all members in one jitted program (vmapped, padded to the largest n and p:
padded rows and columns are zero and stay out of every sum), by the engine's update chain: a member whose
update goes non-finite stops there and records NaN. At each eval step it records the training mean squared error
and the exact test risk R(w_t) = |a * (w_t - b)|^2 + s^2.

The closed form (Heckel & Yilmaz 2020; Pezeshki et al. 2022): with the design's covariance
X^T X / n = V diag(lambda) V^T, w_t - b = -A_t b + (I - A_t) pinv(X^T X) X^T e with A_t = V diag((1 - eta
lambda)^t) V^T, so the risk averaged over the label noise e, given the design and the teacher, is

    E_e R(w_t) = (g_t * c)^T G (g_t * c) + (s^2 / n) sum_{lambda_i > 0} (1 - g_{t,i})^2 / lambda_i G_ii + s^2,

with g_{t,i} = (1 - eta lambda_i)^t, c = V^T b and G = V^T diag(a^2) V. It is recorded as the curve
`theory_risk` beside the trained `test_error`: bias falls and variance grows at each eigenvalue's own speed, so
blocks of different scales give one U each, and their sum can fall, rise and fall again.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ddjax.config import Config, chunk_steps_of
from ddjax.data import multiscale_regression
from ddjax.data.gaussian_regression import Member
from ddjax.solvers.closed_form import EIGENVALUE_RTOL
from ddjax.training import engine
from ddjax.training.member import OneMember
from ddjax.training.spec import Members, TrainSpec, log_spaced_steps

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


def descent_spec(config: Config) -> TrainSpec:
    """The training spec of full-batch gradient descent on least squares: plain SGD on the squared loss, no batches
    (the data are drawn per member, so there is no model to share)."""
    return TrainSpec(model=None, optimizer="sgd", loss="squared", batch_size=0, steps=config.steps,
                     eval_steps=log_spaced_steps(config.steps, config.n_evals),
                     chunk_steps=chunk_steps_of(config.steps, config.n_chunks), input_dim=max(config.width),
                     n_classes=1, precision="float64", lr_schedule=config.lr_schedule,
                     lr_schedule_steps=config.lr_schedule_steps, member_axes=("learning_rate",))


def member_curves(config: Config, n_max: int, p_max: int, spec: TrainSpec):
    """A function of one member and its learning rate: its trained curves at the spec's eval steps (NaN once it
    diverged, and the step it diverged at) and the closed form.

    Each step is the engine's update chain (`ddjax.training.engine.update`) on the least-squares gradient
    X^T (X w - y) / n, so a member diverges, and stops, as a trained one does."""
    steps = jnp.asarray(spec.eval_steps)
    gaps = jnp.diff(jnp.concatenate([jnp.zeros(1, steps.dtype), steps]))

    def curves(member: Member, eta: jax.Array) -> dict[str, jax.Array]:
        x, y, b, a = multiscale_regression.member_problem(member, n_max, p_max, config.feature_scales,
                                                          config.signal_norm_sq, config.noise_var, config.data_seed)
        n = member.n_train.astype(jnp.float64)
        view, rates = OneMember(spec, member.width), Members(learning_rate=eta)
        w = jnp.zeros(p_max)
        state = engine.State(w, optax.EmptyState(), jnp.int32(-1), {})

        def descend_one(t, state):
            residual = x @ state.params - y
            grads = x.T @ residual / n
            return engine.update(view, state, grads, jnp.sum(residual**2) / (2 * n), {}, rates, t)

        def descend(carry, gap):
            state, start = carry
            state = jax.lax.fori_loop(start, start + gap, descend_one, state)
            w, diverged = state.params, state.diverged_step >= 0
            train_mse = jnp.sum((x @ w - y) ** 2) / n  # Padded rows are zero on both sides.
            excess = jnp.sum((a * (w - b)) ** 2)
            values = jnp.where(diverged, jnp.nan, jnp.stack([train_mse, excess]))
            return (state, start + gap), values

        (state, _), values = jax.lax.scan(descend, (state, jnp.int32(0)), gaps)
        train_mse, excess = values[:, 0], values[:, 1]
        risk = excess + config.noise_var
        return {"train_error": train_mse, "test_error": risk, "train_loss": train_mse / 2, "test_loss": risk / 2,
                "excess_risk": excess, "theory_risk": expected_risk(x, b, a, n, eta, config.noise_var, steps),
                "diverged_step": state.diverged_step}

    return curves
