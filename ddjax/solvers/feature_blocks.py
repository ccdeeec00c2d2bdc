"""Random features' minimum-norm and ridge read-outs for many N, in stages that share one draw.

For one seed, the distinct widths N_1 < N_2 < ... of a sweep are solved in ascending order, one stage each
(`plan_stages`). Stage j adds features [N_{j-1}, N_j) of the draw (`ddjax.models.feature_draws`, "common" by
default: every N's features are the first N of one sequence, an exact draw of N features) to a carry of
accumulated products, in blocks of `block` features, and solves the members of width N_j at every ridge strength.
The carry is a dict of host arrays: `save_checkpoint` can write it between stages, and a run resumed from it
gives the same curves as one that never stopped. `run_stage` consumes its input carry (it updates the arrays in
place, as a jitted step donates its state): use only the carry it returns.

With features Phi = sqrt(g/N) act(X P^T + b) of the n_fit fitted rows (`feature_solves.activate`: cos with
g = 2 for random Fourier features, ReLU with g = 1 and b = 0 for random ReLU features) and a constant column for
the bias, A = [Phi, 1] (f = N + 1 columns), the read-out is `ddjax.solvers.closed_form.ridge_lstsq`'s:

- f <= n_fit ("features" side): W = (A^T A + n_fit lambda I)^-1 A^T Y from the f x f Gram matrix. The carry
  keeps act(X P^T + b) of the first features of every row (fitted and evaluated) while such stages remain.
- f > n_fit ("samples" side): W = A^T alpha, alpha = (K + n_fit lambda I)^-1 Y with K = A A^T = (g/N) C + 1 1^T,
  where C = sum over features of act(.) act(.)^T is accumulated over every block (lower triangle) together with
  the cross products C_eval of the evaluated rows: logits A W = K alpha on the fitted rows and
  (g/N) C_eval alpha + 1^T alpha on the evaluated ones, |W|^2 = alpha^T K alpha.

Each strength is one Cholesky factorization (lambda = 0: the minimum-norm solution) where it is safely positive
definite, one eigendecomposition for the rest where not (`ddjax.solvers.symmetric.solve_shifted`). Everything
is float64: near N = n_fit the Gram matrices are close to singular (on MNIST at n_fit = 10^4, LAPACK's reciprocal
condition estimate is 8e-12 at N = 9000 and 1e-15 at N = n_fit, where the eigendecomposition takes over).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from ddjax.config import ConfigError
from ddjax.models.feature_draws import DRAWS, feature_block
from ddjax.solvers import symmetric
from ddjax.solvers.feature_solves import activate, solve_features, solve_samples

Carry = dict[str, np.ndarray]  # gram [g, g], cross [e, g], fit_features [F, n_fit], eval_features [F, e], width []


class Problem(NamedTuple):
    """One seed's read-out problem: rows fitted (x_fit [n_fit, d] float64, labels y_fit), rows evaluated
    (x_eval: the `n_val` validation rows, then the test rows), strengths, the feature draw and map."""

    x_fit: np.ndarray
    y_fit: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    n_val: int
    validation: bool
    n_classes: int
    seed: int
    strengths: tuple[float, ...]
    draw: str
    feature_map: str = "fourier"


class Stage(NamedTuple):
    """Stage `index` adds features [start, width) (start 0: a fresh carry) and solves the members of `width` on
    its `side`. After it the carry keeps the sample-side products if `keep_grams` (a later stage is on that
    side), and the (unscaled) values of its `width` features on every row if `keep_features` > 0 (the widest
    later stage on the feature side, for which they are kept in a buffer of that many rows)."""

    index: int
    width: int
    start: int
    side: str
    keep_grams: bool
    keep_features: int


def make_problem(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                 n_train: int, validation_fraction: float = 0.0, n_classes: int = 10, seed: int = 0,
                 strengths: Sequence[float] = (0.0,), draw: str = "common",
                 feature_map: str = "fourier") -> Problem:
    """The problem of a member fitting the first n_train - round(validation_fraction n_train) of `n_train` rows
    (`ddjax.solvers.closed_form.fitted_rows`), validated on the rest of them and tested on `x_test` (flat)."""
    n_fit = n_train - int(np.round(np.float64(validation_fraction) * n_train))
    x_eval = np.concatenate([x_train[n_fit:n_train], x_test]).astype(np.float64)
    return Problem(np.asarray(x_train[:n_fit], np.float64), np.asarray(y_train[:n_fit]), x_eval,
                   np.concatenate([y_train[n_fit:n_train], y_test]), n_train - n_fit, bool(validation_fraction),
                   n_classes, seed, tuple(strengths), draw, feature_map)


def plan_stages(widths: Sequence[int], n_fit: int, *, draw: str = "common") -> list[Stage]:
    """One stage per distinct width, ascending; a common draw continues each stage from the last one."""
    if draw not in DRAWS:
        raise ValueError(f"draw {draw!r} is not one of {DRAWS}")
    widths = sorted(set(int(w) for w in widths))
    sides = ["features" if w + 1 <= n_fit else "samples" for w in widths]
    stages = []
    for j, width in enumerate(widths):
        later = range(j + 1, len(widths)) if draw == "common" else range(0)
        stages.append(Stage(j, width, widths[j - 1] if j and draw == "common" else 0, sides[j],
                            any(sides[k] == "samples" for k in later),
                            max((widths[k] for k in later if sides[k] == "features"), default=0)))
    return stages


def carry_template(stages: Sequence[Stage], index: int, problem: Problem) -> Carry:
    """Shapes and dtypes (`jax.ShapeDtypeStruct`s) of the carry that stage `index` takes: the template that
    `ddjax.runs.checkpoint.restore_state` checks a checkpoint against."""
    if index == 0 or index == len(stages) or stages[index].start == 0:  # len(stages): after the last
        return _carry_shapes(problem, grams=False, features=0)
    before = stages[index - 1]
    return _carry_shapes(problem, grams=before.keep_grams, features=before.width if before.keep_features else 0)


def initial_carry(problem: Problem) -> Carry:
    """The carry of the first stage (and of every stage of independent draws): no features yet."""
    return _zeros(_carry_shapes(problem, grams=False, features=0))


def run_stage(carry: Carry, stage: Stage, problem: Problem, *, block: int,
              factorization: str = "auto") -> tuple[Carry, dict, dict]:
    """Adds the stage's features to `carry` (consumed: numpy arrays are updated in place, others copied) and
    solves its members (`factorization`: see `ddjax.solvers.symmetric.solve_shifted`).

    Returns:
      The carry for the next stage; the members' curves, each [strength] (`readout_member`'s names and
      definitions); and a report: seconds spent on the features (`cosine_seconds`), the products and the solves,
      the method and the estimated reciprocal condition number of each strength's factorization.
    """
    carry = {k: v if isinstance(v, np.ndarray) and v.flags.writeable else np.array(v) for k, v in carry.items()}
    if int(carry["width"]) != stage.start:
        raise ValueError(f"stage {stage.index} continues from {stage.start} features, the carry holds "
                         f"{int(carry['width'])}")
    grams = stage.side == "samples" or stage.keep_grams
    if stage.start == 0:
        carry = _zeros(_carry_shapes(problem, grams=grams, features=0))
    # The features kept for the feature side fill a buffer of the widest such stage's rows; the carry holds the
    # filled rows (a view), so a checkpoint writes those only.
    capacity = max(stage.width if stage.side == "features" else 0, stage.keep_features)
    fit, evaluated = (_with_capacity(carry[k], capacity) for k in ("fit_features", "eval_features"))
    report = {"cosine_seconds": 0.0, "product_seconds": 0.0}
    for start in range(stage.start, stage.width, block):
        _add_block(carry, fit, evaluated, problem, stage.width, start, min(start + block, stage.width), grams,
                   report)
    t0 = time.perf_counter()
    shifts = [None if s == 0 else s * len(problem.x_fit) for s in problem.strengths]
    if stage.side == "features":
        curves, solves = solve_features(fit[: stage.width], evaluated[: stage.width], problem, shifts,
                                        factorization=factorization)
    else:
        curves, solves = solve_samples(carry["gram"], carry["cross"], stage.width, problem, shifts,
                                       factorization=factorization)
    report.update(solve_seconds=time.perf_counter() - t0, methods=solves.methods, rconds=solves.rconds)
    if not (stage.keep_grams or stage.keep_features):
        return initial_carry(problem), curves, report
    if not stage.keep_grams:
        carry["gram"], carry["cross"] = np.zeros((0, 0)), np.zeros((0, 0))
    kept = stage.width if stage.keep_features else 0
    carry.update(fit_features=fit[:kept], eval_features=evaluated[:kept], width=np.asarray(stage.width, np.int64))
    return carry, curves, report


def _with_capacity(rows: np.ndarray, capacity: int) -> np.ndarray:
    """An array of `capacity` rows starting with `rows`: the buffer `rows` is a view of if it is one, else new."""
    base = rows.base
    if (isinstance(base, np.ndarray) and base.shape == (capacity, rows.shape[1]) and base.flags.c_contiguous
            and base.ctypes.data == rows.ctypes.data):
        return base
    out = np.empty((capacity, rows.shape[1]))
    out[: len(rows)] = rows
    return out


def _carry_shapes(problem: Problem, *, grams: bool, features: int) -> Carry:
    n_fit, n_eval = problem.x_fit.shape[0], problem.x_eval.shape[0]
    g, e = (n_fit, n_eval) if grams else (0, 0)
    shapes = {"gram": (g, g), "cross": (e, g), "fit_features": (features, n_fit),
              "eval_features": (features, n_eval)}
    return {**{k: jax.ShapeDtypeStruct(v, np.float64) for k, v in shapes.items()},
            "width": jax.ShapeDtypeStruct((), np.int64)}


def _zeros(template: Carry) -> Carry:
    return {k: np.zeros(v.shape, v.dtype) for k, v in template.items()}


def _add_block(carry: Carry, fit: np.ndarray, evaluated: np.ndarray, problem: Problem, width: int, start: int,
               stop: int, grams: bool, seconds: dict) -> None:
    t0 = time.perf_counter()
    projection, phase = feature_block(problem.draw, problem.seed, width, start, stop, problem.x_fit.shape[1])
    projection = projection.astype(np.float64)
    phase = phase.astype(np.float64) if problem.feature_map == "fourier" else np.zeros(len(phase))
    rows = []
    for x, kept in ((problem.x_fit, fit), (problem.x_eval, evaluated)):
        out = kept[start:stop] if stop <= len(kept) else np.empty((stop - start, len(x)))
        np.matmul(projection, x.T, out=out)
        out += phase[:, None]
        activate(problem.feature_map, out)  # The gain is folded into the scale g / N of the products.
        rows.append(out)
    t1 = time.perf_counter()
    if grams:
        symmetric.add_gram(carry["gram"], rows[0])
        symmetric.add_product(carry["cross"], rows[1], rows[0])
    seconds["cosine_seconds"] += t1 - t0
    seconds["product_seconds"] += time.perf_counter() - t1
