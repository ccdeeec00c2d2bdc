"""Float64 kernels on symmetric positive semi-definite matrices, in place, through LAPACK and BLAS (scipy).

A symmetric matrix here is a C-ordered float64 array of which only the LOWER triangle is read and written (the
upper one holds whatever it held): a rank-k update (`add_gram`) then costs half a product, and a factorization
needs no second copy. The routines take the array's transpose, which is Fortran-ordered and needs no copy, and
whose upper triangle is the C array's lower one.

`solve_shifted` is the solve of `ddjax.solvers.closed_form.ridge_lstsq` without its eigendecomposition where
that is not needed: (K + shift I)^-1 rhs by a Cholesky factorization for each shift, where the factor's
reciprocal condition number (LAPACK's estimate) is at least `SAFE_RCOND`: there every eigenvalue is above
`ridge_lstsq`'s cut-off, so its pseudo-inverse is the inverse the factor applies. Elsewhere (not
positive definite, or nearly singular) one eigendecomposition serves the remaining shifts, with `ridge_lstsq`'s
rule. A Cholesky factorization costs n^3 / 3 flops against an eigendecomposition's ~9 n^3 at a lower rate
(benchmarks/feature_block_kernels.py: 0.75 s against 24 s at n = 5000 on the 2-core AMD EPYC under load).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from ddjax.solvers.closed_form import EIGENVALUE_RTOL

# `ridge_lstsq` keeps the eigenvalues above EIGENVALUE_RTOL * lambda_max. For a symmetric positive definite M,
# lambda_max <= |M|_1 and lambda_min >= 1 / |M^-1|_1 = rcond * |M|_1, so rcond >= EIGENVALUE_RTOL means it keeps
# them all and its pseudo-inverse is the inverse. LAPACK's rcond comes from an estimate of |M^-1|_1 from below
# that is in practice within a factor of 3 of it (Higham 2002, Accuracy and Stability of Numerical Algorithms,
# ch. 15; the counterexamples are contrived): a factor 10 margin. (On MNIST the feature side's estimate is 8e-12
# at N = 0.9 n: lambda_max there is about n, the bias column's, and the cut-off is 80 times below the bound.)
SAFE_RCOND = 10 * EIGENVALUE_RTOL
_ROWS = 512  # rows of a matrix touched at once by `one_norm`


class Solves(NamedTuple):
    """Solutions [size, k] per shift, how each was found ("cholesky" or "eigh"), and the Cholesky factor's
    estimated reciprocal condition number per shift (0 where it failed, NaN where not tried)."""

    solutions: list[np.ndarray]
    methods: list[str]
    rconds: list[float]


def add_gram(gram: np.ndarray, rows: np.ndarray) -> None:
    """gram += rows^T rows (lower triangle) for rows [k, n], in place; `rows` in either order is not copied."""
    a, trans = _operand(rows.T)
    _check_in_place(blas.dsyrk(1.0, a, beta=1.0, c=gram.T, trans=trans, lower=0, overwrite_c=1), gram)


def add_product(out: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """out += left^T right for left [k, m], right [k, n] (out [m, n], C-ordered), in place."""
    a, trans_a = _operand(right.T)
    b, trans_b = _operand(left)
    _check_in_place(blas.dgemm(1.0, a, b, beta=1.0, c=out.T, trans_a=trans_a, trans_b=trans_b, overwrite_c=1),
                    out)


def symmetric_product(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """matrix @ rhs from the lower triangle of `matrix`."""
    return np.asarray(blas.dsymm(1.0, matrix.T, np.asfortranarray(rhs), side=0, lower=0))


def one_norm(matrix: np.ndarray) -> float:
    """The 1-norm (largest absolute column sum) of the symmetric matrix held in the lower triangle."""
    n = matrix.shape[0]
    sums = np.zeros(n)
    for start in range(0, n, _ROWS):
        stop = min(start + _ROWS, n)
        block = np.abs(np.tril(matrix[start:stop, :stop], k=start))
        sums[start:stop] += block.sum(axis=1)  # row i's entries left of and on the diagonal
        block[:, start:stop] = np.tril(block[:, start:stop], k=-1)
        sums[:stop] += block.sum(axis=0)  # column j's entries below the diagonal
    return float(sums.max(initial=0.0))


def solve_shifted(fill: Callable[[np.ndarray, float], None], size: int, rhs: np.ndarray,
                  shifts: Sequence[float | None], *, factorization: str = "auto") -> Solves:
    """(K + shift I)^-1 rhs for each shift, pinv(K) rhs for a shift of None (`ridge_lstsq`'s rule).

    Args:
      fill: (out, shift) -> None writes K + shift I into the lower triangle of `out` [size, size].
      size: K's order.
      rhs: [size, k].
      shifts: each None or >= 0.
      factorization: "auto" (Cholesky where safe, see the module's docstring) or "eigh" (one eigendecomposition
        for every shift, as `ridge_lstsq`: the reference).
    """
    if factorization not in ("auto", "eigh"):
        raise ValueError(f"factorization {factorization!r} is not 'auto' or 'eigh'")
    work = np.empty((size, size))
    if factorization == "eigh":
        fill(work, 0.0)
        return Solves(_eigh_solves(work, rhs, shifts), ["eigh"] * len(shifts), [float("nan")] * len(shifts))
    solutions, methods, rconds = [], [], []
    for i, shift in enumerate(shifts):
        fill(work, shift or 0.0)
        norm = one_norm(work)
        factor, info = lapack.dpotrf(work.T, lower=0, clean=0, overwrite_a=1)
        _check_in_place(factor, work)
        rcond = float(lapack.dpocon(factor, norm, uplo="U")[0]) if info == 0 else 0.0
        rconds.append(rcond)
        if info != 0 or not rcond >= SAFE_RCOND:
            fill(work, 0.0)
            solutions += _eigh_solves(work, rhs, shifts[i:])
            methods += ["eigh"] * (len(shifts) - i)
            rconds += [float("nan")] * (len(shifts) - i - 1)
            break
        solution, info = lapack.dpotrs(factor, np.asfortranarray(rhs), lower=0)
        if info != 0:
            raise FloatingPointError(f"LAPACK dpotrs failed (info {info})")
        solutions.append(np.ascontiguousarray(solution))
        methods.append("cholesky")
    return Solves(solutions, methods, rconds)


def _eigh_solves(matrix: np.ndarray, rhs: np.ndarray, shifts: Sequence[float | None]) -> list[np.ndarray]:
    """`ddjax.solvers.closed_form._apply_psd_inverses` on the lower triangle of `matrix` (overwritten)."""
    eigenvalues, vectors = scipy.linalg.eigh(matrix.T, lower=False, overwrite_a=True, check_finite=False)
    projected = vectors.T @ rhs
    out = []
    for shift in shifts:
        if shift is None:
            keep = eigenvalues > EIGENVALUE_RTOL * eigenvalues[-1]
            inverse = np.where(keep, 1 / np.where(keep, eigenvalues, 1), 0)
        else:
            inverse = 1 / (np.maximum(eigenvalues, 0) + shift)
        out.append(vectors @ (inverse[:, None] * projected))
    return out


def _operand(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(a, trans) with a Fortran-ordered float64 and op(a) = x (a^T where trans is 1), copying only if needed."""
    if x.dtype == np.float64 and x.flags.f_contiguous:
        return x, 0
    if x.dtype == np.float64 and x.T.flags.f_contiguous:
        return x.T, 1
    return np.asfortranarray(x, dtype=np.float64), 0


def _check_in_place(result: np.ndarray, target: np.ndarray) -> None:
    if not np.shares_memory(result, target):  # BLAS wrote into a copy: the caller's array did not change.
        raise ValueError("expected a C-ordered float64 array to update in place")
