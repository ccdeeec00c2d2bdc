"""`method="min_norm"`: the linear read-out solved in closed form, by one eigendecomposition per member.

The read-out of a random-features member (its fixed first layer maps the first `n_train` samples to features
Phi, one column per feature plus a constant column for the bias) is W = pinv(Phi) @ Y with Y the one-hot
labels: the least-squares fit of smallest Frobenius norm, the point that gradient descent from zero converges
to. For `dataset="gaussian_regression"` (model "linear") Phi is the Gaussian design itself and Y = y.

Gaussian-regression members are solved here, in jitted programs of members padded to the widest member of their
group (features) and to the largest n_train (samples); the padded rows and columns are zero and are solved for
exactly zero weight (see `min_norm_lstsq`), so a member's solution does not depend on its padding. A sweep's
random-features read-outs are solved in stages over one draw (`ddjax.solvers.feature_stages`); `readout_member`
solves one of them on its family's own parameters, the reference those stages are tested against. Solving runs
in float64: the Gram matrix squares the condition number of Phi, which is largest exactly at the interpolation
threshold that the experiments are about.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import Config, validation_size
from ddjax.data import gaussian_regression
from ddjax.models.family import unit_mask
from ddjax.training.member import member_eval
from ddjax.training.width_groups import GroupPlan, plan_groups

# Gram eigenvalues below this fraction of the largest count as zero: float64 eigh resolves eigenvalues to about
# 1e-16 of the largest, and the smallest real ones at the threshold are ~1e-10 of it in our experiments.
EIGENVALUE_RTOL = 1e-13
# Each group compiles its own solver (seconds on a CPU): past a few groups, or for a sweep whose padded work is
# small anyway, compiling costs more than the padding it saves.
MAX_GROUPS = 4
SMALL_SWEEP_FLOPS = 1e10


def min_norm_lstsq(features: jax.Array, targets: jax.Array, *, row_mask: jax.Array | None = None,
                   column_mask: jax.Array | None = None) -> jax.Array:
    """The minimum-norm least-squares solution pinv(features) @ targets of ONE member (`ridge_lstsq` at 0).

    Args:
      features: [n, f].
      targets: [n, c].
      row_mask, column_mask: [n] and [f], 1.0 for real entries (default: all real).

    Returns:
      [f, c] weights.
    """
    return ridge_lstsq(features, targets, (0.0,), 1, row_mask=row_mask, column_mask=column_mask)[0]


def ridge_lstsq(features: jax.Array, targets: jax.Array, strengths: tuple[float, ...], n_fit: jax.Array, *,
                row_mask: jax.Array | None = None, column_mask: jax.Array | None = None) -> list[jax.Array]:
    """Ridge solutions of ONE member at every strength, from one eigendecomposition.

    Strength lambda minimizes (1 / n_fit) |targets - features w|^2 + lambda |w|^2 (Hastie et al. 2019's
    convention), w = (A^T A + n_fit lambda I)^-1 A^T Y = A^T (A A^T + n_fit lambda I)^-1 Y; lambda = 0 gives the
    minimum-norm solution pinv(A) Y. Both forms go through the eigendecomposition of the Gram matrix of the
    smaller side, so that every strength costs one matmul more: pinv(A) = pinv(A^T A) A^T = A^T pinv(A A^T).
    Rows (samples) and columns (features) where a mask is 0 are zeroed; a zero row or column only adds a zero
    eigenvalue, and its diagonal entry is raised to the largest diagonal entry so that it stays far from the
    cut-off whatever rounding does: the result is the unpadded solution with zeros appended.

    Args:
      features: [n, f].
      targets: [n, c].
      strengths: the lambdas (static), each >= 0.
      n_fit: the number of real rows (the mean's denominator).
      row_mask, column_mask: [n] and [f], 1.0 for real entries (default: all real).

    Returns:
      One [f, c] weight matrix per strength.
    """
    n, f = features.shape
    rows = jnp.ones(n, features.dtype) if row_mask is None else row_mask.astype(features.dtype)
    columns = jnp.ones(f, features.dtype) if column_mask is None else column_mask.astype(features.dtype)
    features = features * rows[:, None] * columns[None, :]
    targets = targets * rows[:, None]
    shifts = [(None if strength == 0 else strength * jnp.asarray(n_fit, features.dtype)) for strength in strengths]
    if f <= n:
        return _apply_psd_inverses(features.T @ features, features.T @ targets, columns, shifts)
    return [features.T @ w for w in _apply_psd_inverses(features @ features.T, targets, rows, shifts)]


def _apply_psd_inverses(gram: jax.Array, rhs: jax.Array, real: jax.Array, shifts: list) -> list[jax.Array]:
    """(gram + shift I)^-1 rhs for each shift, pinv(gram) rhs for a shift of None."""
    gram = gram + jnp.diag((1 - real) * jnp.max(jnp.diag(gram)))  # rhs is zero there: no effect on the result.
    eigenvalues, vectors = jnp.linalg.eigh(gram)
    projected = vectors.T @ rhs
    out = []
    for shift in shifts:
        if shift is None:
            keep = eigenvalues > EIGENVALUE_RTOL * eigenvalues[-1]
            inverse = jnp.where(keep, 1 / jnp.where(keep, eigenvalues, 1), 0)
        else:  # The shift keeps every eigenvalue away from 0: no cut-off.
            inverse = 1 / (jnp.maximum(eigenvalues, 0) + shift)
        out.append(vectors @ (inverse[:, None] * projected))
    return out


def readout_member(spec, variables, member, data, strengths: tuple[float, ...] = (0.0,)) -> dict[str, jax.Array]:
    """Solves one random-features member's read-out (from its initial `variables`) at every ridge strength and
    evaluates each exactly as the trainer would (`ddjax.training.engine.evaluate`): curves [strength].

    The member fits its first `member.n_train` rows (its n_train less the rows it holds out, `member.n_val`: the
    one validation split of `ddjax.training.members.stack_members`), on which `train_*` are measured, and
    `val_error`, `val_loss` on the held-out rows after them.
    """
    variables, data = jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                                   (variables, data))
    params = variables["params"]
    max_width = params["out"]["w"].shape[0]
    n_max = data.x_train.shape[0]
    phi = spec.model.features(params, member.width, data.x_train)
    phi = jnp.concatenate([phi, jnp.ones((n_max, 1))], axis=1)  # The bias is one more read-out weight.
    columns = jnp.concatenate([unit_mask(member.width, max_width), jnp.ones(1)])
    solutions = ridge_lstsq(phi, jax.nn.one_hot(member.labels, spec.n_classes, dtype=jnp.float64), strengths,
                            member.n_train, row_mask=jnp.arange(n_max) < member.n_train, column_mask=columns)
    out = []
    for weights in solutions:
        solved = {**params, "out": {"w": weights[:-1], "b": weights[-1]}}
        out.append({**member_eval(spec, solved, member, data, variables["model_state"]),
                    "weight_norm": jnp.sqrt(jnp.sum(weights**2))})
    return _stack_strengths(out)


def _stack_strengths(values: list[dict[str, jax.Array]]) -> dict[str, jax.Array]:
    return {k: jnp.stack([v[k] for v in values]) for k in values[0]}


def linear_member_solver(n_max: int, p_max: int, signal_norm_sq: float, noise_var: float, data_seed: int,
                         strengths: tuple[float, ...] = (0.0,),
                         validation: bool = False) -> Callable[[gaussian_regression.Member], dict]:
    """A function of one `gaussian_regression` member: its ridge estimates (minimum-norm at 0) at every strength
    and their exact risks, curves [strength].

    For isotropic x the excess risk E_x[(x.(b_hat - b))^2] is exactly |b_hat - b|^2, so no test set is drawn:
    `test_error` is the expected squared error on a fresh sample, |b_hat - b|^2 + s^2, and `train_error` is the
    mean squared training residual (0 when the estimator interpolates); `val_error` (with a validation split) the
    mean squared residual on the held-out rows. Losses are half of these, as for the squared loss of the trainer.
    A member fits the first n_train - n_val of its n_train rows and holds out the rest (`Member.n_val`, with
    `validation`).
    """

    def solve(member: gaussian_regression.Member) -> dict[str, jax.Array]:
        x, y, b = gaussian_regression.member_problem(member, n_max, p_max, signal_norm_sq, noise_var, data_seed)
        n_fit = member.n_train - member.n_val if validation else member.n_train
        rows = unit_mask(n_fit, n_max)
        estimates = ridge_lstsq(x, y[:, None], strengths, n_fit, row_mask=rows,
                                column_mask=unit_mask(member.width, p_max))
        out = []
        for b_hat in estimates:
            b_hat = b_hat[:, 0]
            excess = jnp.sum((b_hat - b) ** 2)
            train_mse = jnp.sum(rows * (x @ b_hat - y) ** 2) / n_fit
            values = {"train_error": train_mse, "train_loss": train_mse / 2, "test_error": excess + noise_var,
                      "test_loss": (excess + noise_var) / 2, "excess_risk": excess,
                      "weight_norm": jnp.sqrt(jnp.sum(b_hat**2))}
            if validation:
                held_out = unit_mask(member.n_train, n_max) - rows
                val_mse = jnp.sum(held_out * (x @ b_hat - y) ** 2) / member.n_val
                values.update(val_error=val_mse, val_loss=val_mse / 2)
            out.append(values)
        return _stack_strengths(out)

    return solve


class Groups(NamedTuple):
    """A closed-form sweep's members in groups padded to one shape: each group is solved by one compiled program."""

    solve: Callable[[Any], dict]  # A group's stacked inputs -> its curves [member, strength] (jit it).
    groups: tuple  # Each group's stacked inputs.
    indices: tuple[np.ndarray, ...]  # Each group's member indices (of the grid without the ridge axis).
    group_widths: tuple[int, ...]


def linear_groups(config: Config, coords: dict[str, np.ndarray]) -> list[Groups]:
    """The Gaussian-regression members of `coords` grouped along whichever of p and n takes more values (padding
    the other to its maximum: a sample-wise sweep padded to its largest n would spend most of its time on padded
    rows); one `Groups` per group, as each group's shape differs."""
    by_width = len(config.width) >= len(config.n_train)
    axis, other = ("width", max(config.n_train)) if by_width else ("n_train", max(config.width))
    plan = _plan_groups(coords[axis], lambda m: _solve_cost(*((other, m) if by_width else (m, other))))
    out = []
    for index, m in zip(plan.indices, plan.max_widths):
        n_max, p_max = (other, m) if by_width else (m, other)
        n_val = [validation_size(int(n), config.validation_fraction) for n in coords["n_train"][index]]
        group = gaussian_regression.Member(width=jnp.asarray(coords["width"][index], jnp.int32),
                                           n_train=jnp.asarray(coords["n_train"][index], jnp.int32),
                                           seed=jnp.asarray(coords["seed"][index], jnp.uint32),
                                           n_val=jnp.asarray(n_val, jnp.int32))
        member = linear_member_solver(n_max, p_max, config.signal_norm_sq, config.noise_var, config.data_seed,
                                      config.ridge, config.validation_fraction > 0)
        out.append(Groups(functools.partial(jax.lax.map, member), (group,), (index,), (p_max,)))
    return out


def _plan_groups(sizes: np.ndarray, cost) -> GroupPlan:
    small = len(sizes) * cost(int(np.max(sizes))) < SMALL_SWEEP_FLOPS
    return plan_groups(sizes, cost=cost, max_groups=1 if small else MAX_GROUPS)


def _solve_cost(n: int, f: int) -> float:
    """Flops of one padded member: the Gram matrix of the smaller side and its eigendecomposition."""
    small = min(n, f)
    return float(n * f * small + 10 * small**3)
