"""`method="min_norm"`: the linear read-out solved in closed form, every member in one jitted program.

The read-out of a random-features member (its fixed first layer maps the first `n_train` samples to features
Phi, one column per feature plus a constant column for the bias) is W = pinv(Phi) @ Y with Y the one-hot
labels: the least-squares fit of smallest Frobenius norm, the point that gradient descent from zero converges
to. For `dataset="gaussian_regression"` (model "linear") Phi is the Gaussian design itself and Y = y.

Members are padded to the widest member of their group (features) and to the largest n_train (samples); the
padded rows and columns are zero and are solved for exactly zero weight (see `min_norm_lstsq`), so a member's
solution does not depend on its padding. Solving runs in float64: the Gram matrix squares the condition number
of Phi, which is largest exactly at the interpolation threshold that the experiments are about.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import Config
from ddjax.data import gaussian_regression
from ddjax.data.augment import standardize_on_host
from ddjax.data.registry import dataset_info, load_dataset
from ddjax.members import expand_members, shared_data, stack_members, train_spec
from ddjax.models.families import unit_mask
from ddjax.result import SweepResult
from ddjax.training.trainer import CURVES, SharedData, member_eval
from ddjax.training.width_groups import GroupPlan, plan_groups

# Gram eigenvalues below this fraction of the largest count as zero: float64 eigh resolves eigenvalues to about
# 1e-16 of the largest, and the smallest real ones at the threshold are ~1e-10 of it in our experiments.
EIGENVALUE_RTOL = 1e-13
# Each group compiles its own solver (seconds on a CPU): past a few groups, or for a sweep whose padded work is
# small anyway, compiling costs more than the padding it saves.
MAX_GROUPS = 4
SMALL_SWEEP_FLOPS = 1e10
MIN_NORM_CURVES = (*CURVES, "weight_norm")


def min_norm_lstsq(features: jax.Array, targets: jax.Array, *, row_mask: jax.Array | None = None,
                   column_mask: jax.Array | None = None) -> jax.Array:
    """The minimum-norm least-squares solution pinv(features) @ targets of ONE member.

    Uses the Gram matrix of the smaller side, pinv(A) = pinv(A^T A) A^T = A^T pinv(A A^T), through its
    eigendecomposition. Rows (samples) and columns (features) where a mask is 0 are zeroed; a zero row or column
    only adds a zero eigenvalue, and its diagonal entry is raised to the largest diagonal entry so that it stays
    far from the cut-off whatever rounding does: the result is the unpadded solution with zeros appended.

    Args:
      features: [n, f].
      targets: [n, c].
      row_mask, column_mask: [n] and [f], 1.0 for real entries (default: all real).

    Returns:
      [f, c] weights.
    """
    n, f = features.shape
    rows = jnp.ones(n, features.dtype) if row_mask is None else row_mask.astype(features.dtype)
    columns = jnp.ones(f, features.dtype) if column_mask is None else column_mask.astype(features.dtype)
    features = features * rows[:, None] * columns[None, :]
    targets = targets * rows[:, None]
    if f <= n:
        return _apply_psd_pinv(features.T @ features, features.T @ targets, columns)
    return features.T @ _apply_psd_pinv(features @ features.T, targets, rows)


def _apply_psd_pinv(gram: jax.Array, rhs: jax.Array, real: jax.Array) -> jax.Array:
    gram = gram + jnp.diag((1 - real) * jnp.max(jnp.diag(gram)))  # rhs is zero there: no effect on the result.
    eigenvalues, vectors = jnp.linalg.eigh(gram)
    keep = eigenvalues > EIGENVALUE_RTOL * eigenvalues[-1]
    inverse = jnp.where(keep, 1 / jnp.where(keep, eigenvalues, 1), 0)
    return vectors @ (inverse[:, None] * (vectors.T @ rhs))


def readout_member(spec, variables, member, data) -> dict[str, jax.Array]:
    """Solves one random-features member's read-out (from its initial `variables`) and evaluates it exactly as the
    trainer would."""
    variables, data = jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                                   (variables, data))
    params = variables["params"]
    max_width = params["out"]["w"].shape[0]
    n_max = data.x_train.shape[0]
    phi = spec.model.features(params, member.width, data.x_train)
    phi = jnp.concatenate([phi, jnp.ones((n_max, 1))], axis=1)  # The bias is one more read-out weight.
    columns = jnp.concatenate([unit_mask(member.width, max_width), jnp.ones(1)])
    weights = min_norm_lstsq(phi, jax.nn.one_hot(member.labels, spec.n_classes, dtype=jnp.float64),
                             row_mask=jnp.arange(n_max) < member.n_train, column_mask=columns)
    params = {**params, "out": {"w": weights[:-1], "b": weights[-1]}}
    return {**member_eval(spec, params, member, data, variables["model_state"]),
            "weight_norm": jnp.sqrt(jnp.sum(weights**2))}


def linear_member_solver(n_max: int, p_max: int, signal_norm_sq: float, noise_var: float, data_seed: int,
                         lstsq: Callable[..., jax.Array]) -> Callable[[gaussian_regression.Member], dict]:
    """A function of one `gaussian_regression` member: its minimum-norm estimate and exact risks.

    For isotropic x the excess risk E_x[(x.(b_hat - b))^2] is exactly |b_hat - b|^2, so no test set is drawn:
    `test_error` is the expected squared error on a fresh sample, |b_hat - b|^2 + s^2, and `train_error` is the
    mean squared training residual (0 when the estimator interpolates). Losses are half of these, as for the
    squared loss of the trainer.
    """

    def solve(member: gaussian_regression.Member) -> dict[str, jax.Array]:
        x, y, b = gaussian_regression.member_problem(member, n_max, p_max, signal_norm_sq, noise_var, data_seed)
        rows = unit_mask(member.n_train, n_max)
        b_hat = lstsq(x, y[:, None], row_mask=rows, column_mask=unit_mask(member.width, p_max))[:, 0]
        excess = jnp.sum((b_hat - b) ** 2)
        train_mse = jnp.sum(rows * (x @ b_hat - y) ** 2) / member.n_train
        return {"train_error": train_mse, "train_loss": train_mse / 2, "test_error": excess + noise_var,
                "test_loss": (excess + noise_var) / 2, "excess_risk": excess,
                "weight_norm": jnp.sqrt(jnp.sum(b_hat**2))}

    return solve


class _Program(NamedTuple):
    solve: Any  # jitted: tuple of stacked groups -> tuple of metric dicts [members].
    groups: tuple
    order: np.ndarray  # Member indices in the order the groups list them.
    group_widths: tuple[int, ...]


def _readout_program(config: Config, coords: dict[str, np.ndarray]) -> _Program:
    dataset = load_dataset(config)
    data, spec = shared_data(dataset, config), train_spec(config, dataset)
    if spec.image is not None:  # No augmentation in a closed form: standardized and flattened once, on the host.
        data = SharedData(*(jnp.asarray(standardize_on_host(np.asarray(x), spec.image)) for x in data[:2]),
                          data.y_test)
        spec = spec._replace(image=None)
    n_max = max(config.n_train)
    plan = _plan_groups(coords["width"], lambda w: _solve_cost(n_max, w + 1))
    groups = tuple(stack_members(coords, index, dataset, config, spec, width)
                   for index, width in zip(plan.indices, plan.max_widths))

    def member(args):
        return readout_member(spec, *args, data)

    solve = jax.jit(lambda groups: tuple(jax.lax.map(member, group) for group in groups))
    return _Program(solve, groups, np.concatenate(plan.indices), plan.max_widths)


def _linear_program(config: Config, coords: dict[str, np.ndarray]) -> _Program:
    # Group along whichever of p and n takes more values (padding the other to its maximum): a sample-wise
    # sweep padded to its largest n would spend most of its time on padded rows.
    by_width = len(config.width) >= len(config.n_train)
    axis, other = ("width", max(config.n_train)) if by_width else ("n_train", max(config.width))
    plan = _plan_groups(coords[axis], lambda m: _solve_cost(*((other, m) if by_width else (m, other))))
    shapes = [(other, m) if by_width else (m, other) for m in plan.max_widths]  # (n_max, p_max) of each group
    groups = tuple(gaussian_regression.Member(width=jnp.asarray(coords["width"][i], jnp.int32),
                                              n_train=jnp.asarray(coords["n_train"][i], jnp.int32),
                                              seed=jnp.asarray(coords["seed"][i], jnp.uint32)) for i in plan.indices)

    def solve(groups):
        out = []
        for group, (n_max, p_max) in zip(groups, shapes):
            member = linear_member_solver(n_max, p_max, config.signal_norm_sq, config.noise_var, config.data_seed,
                                          min_norm_lstsq)
            out.append(jax.lax.map(member, group))
        return tuple(out)

    return _Program(jax.jit(solve), groups, np.concatenate(plan.indices), tuple(p for _, p in shapes))


def _plan_groups(sizes: np.ndarray, cost) -> GroupPlan:
    small = len(sizes) * cost(int(np.max(sizes))) < SMALL_SWEEP_FLOPS
    return plan_groups(sizes, cost=cost, max_groups=1 if small else MAX_GROUPS)


def _solve_cost(n: int, f: int) -> float:
    """Flops of one padded member: the Gram matrix of the smaller side and its eigendecomposition."""
    small = min(n, f)
    return float(n * f * small + 10 * small**3)


def solve_sweep(config: Config) -> SweepResult:
    """Every member of `config`'s grid solved in closed form; curves have one evaluation (the solution)."""
    coords = expand_members(config)
    with jax.enable_x64(True):
        t0 = time.perf_counter()
        build = _linear_program if dataset_info(config.dataset).load is None else _readout_program
        program = build(config, coords)
        compiled = program.solve.lower(program.groups).compile()
        t1 = time.perf_counter()
        outputs = jax.block_until_ready(compiled(program.groups))
        t2 = time.perf_counter()
    inverse = np.argsort(program.order)
    names = outputs[0].keys()
    curves = {k: np.concatenate([np.asarray(o[k], np.float64) for o in outputs])[inverse][:, None] for k in names}
    n_members = len(program.order)
    return SweepResult(coords=coords, eval_steps=np.zeros(1, np.int64), curves=curves,
                       diverged_step=np.full(n_members, -1), group_widths=program.group_widths,
                       compile_seconds=t1 - t0, run_seconds=t2 - t1, n_compiles=1)
