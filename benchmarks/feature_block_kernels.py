"""The kernels of a staged random-features solve, timed one by one on this machine.

    python benchmarks/feature_block_kernels.py                 # n = 5000 and 10000 (a few minutes on 2 cores)
    python benchmarks/feature_block_kernels.py --sizes 2000    # seconds

For each n: a float64 eigendecomposition of an n x n Gram matrix (jax's `eigh`, scipy's divide-and-conquer `evd`
and relatively-robust `evr` drivers), a float64 Cholesky factorization and solve (jax and scipy), the Gram
accumulation's products [n, block] x [block, n] in float64 and float32 (XLA through jax, OpenBLAS through numpy,
and OpenBLAS's symmetric rank-k update `syrk`, which computes one triangle), and the cosine feature map of
n rows of 784 inputs for one block of features. Prints a table and writes JSON (seconds and GFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg


def timed(fn, repeats: int, *args) -> float:
    """Best wall time of `repeats` calls of `fn(*args)`; a jitted `fn` is compiled first, outside the timing."""
    if hasattr(fn, "lower"):
        fn = fn.lower(*args).compile()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


# Jitted with their operands as arguments: a closure over arrays would make them constants that XLA folds.
eigh = jax.jit(jnp.linalg.eigh)
jnp_cos = jax.jit(jnp.cos)


@jax.jit
def cholesky_solve(k, y):
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(k, lower=True), y)


@jax.jit
def accumulate(acc, a, b):
    return acc + a @ b.T


@jax.jit
def cosine(x, w, phase):
    return jnp.cos(x @ w.T + phase)


def gram(n: int, rng: np.random.Generator) -> np.ndarray:
    """A positive definite n x n Gram matrix of 2n random features (float64)."""
    features = np.sqrt(2) * np.cos(rng.standard_normal((n, 64)) @ rng.standard_normal((64, 2 * n)) / 8
                                   + rng.uniform(0, 2 * np.pi, 2 * n))
    return features @ features.T / (2 * n) + 1.0


KERNELS = ("eigh", "cholesky", "matmul", "features")


def measure(n: int, block: int, input_dim: int, repeats: int, kernels=KERNELS, eigh_libraries=("jax", "evd", "evr"),
            dtypes=(np.float64, np.float32)) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []

    def add(kernel, dtype, library, seconds, flops):
        rows.append(dict(kernel=kernel, n=n, block=block, dtype=dtype, library=library, seconds=seconds,
                         gflop_per_s=flops / seconds / 1e9))
        print(f"{kernel:>10} n={n:>6} block={block:>5} {dtype:>8} {library:>12} {seconds:9.3f} s "
              f"{flops / seconds / 1e9:8.1f} GFLOP/s", flush=True)

    with jax.enable_x64(True):
        k = gram(n, rng)
        y = rng.standard_normal((n, 10))
        kj = jnp.asarray(k)
        yj = jnp.asarray(y)
        eigh_flops = 9.0 * n**3  # tridiagonal reduction (4/3 n^3), back-transformation and divide-and-conquer
        if "eigh" in kernels and "jax" in eigh_libraries:
            add("eigh", "float64", "jax", timed(eigh, repeats, kj), eigh_flops)
        for driver in [d for d in ("evd", "evr") if d in eigh_libraries and "eigh" in kernels]:
            add("eigh", "float64", f"scipy {driver}",
                timed(lambda: scipy.linalg.eigh(k, driver=driver, overwrite_a=False, check_finite=False), repeats),
                eigh_flops)
        chol_flops = n**3 / 3 + 2 * 2 * n**2 * 10
        if "cholesky" in kernels:
            add("cholesky", "float64", "jax", timed(cholesky_solve, repeats, kj, yj), chol_flops)
            add("cholesky", "float64", "scipy",
                timed(lambda: scipy.linalg.cho_solve(scipy.linalg.cho_factor(k, lower=True, check_finite=False), y,
                                                     check_finite=False), repeats), chol_flops)
        for dtype in dtypes if {"matmul", "features"} & set(kernels) else ():
            a = rng.standard_normal((n, block)).astype(dtype)
            b = rng.standard_normal((n, block)).astype(dtype)
            acc = np.zeros((n, n), dtype)
            aj, bj, accj = jnp.asarray(a), jnp.asarray(b), jnp.asarray(acc)
            flops = 2.0 * n * n * block
            name = np.dtype(dtype).name
            if "matmul" in kernels:
                add("matmul", name, "jax", timed(accumulate, repeats, accj, aj, bj), flops)
                add("matmul", name, "numpy", timed(lambda: np.matmul(a, b.T), repeats), flops)
                syrk = scipy.linalg.blas.dsyrk if dtype == np.float64 else scipy.linalg.blas.ssyrk
                add("syrk", name, "scipy", timed(lambda: syrk(1.0, a, beta=1.0, c=acc, lower=1, overwrite_c=1),
                                                 repeats), flops / 2)
            if "features" not in kernels:
                continue
            x = rng.standard_normal((n, input_dim)).astype(dtype)
            w = rng.standard_normal((block, input_dim)).astype(dtype)
            phase = rng.uniform(0, 2 * np.pi, block).astype(dtype)
            xj, wj, pj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(phase)
            feature_flops = 2.0 * n * block * input_dim
            add("features", name, "jax", timed(cosine, repeats, xj, wj, pj), feature_flops)
            add("features", name, "numpy", timed(lambda: np.cos(x @ w.T + phase), repeats), feature_flops)
            add("cos", name, "jax", timed(jnp_cos, repeats, aj), n * block)
            add("cos", name, "numpy", timed(lambda: np.cos(a), repeats), n * block)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--block", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--kernels", default=",".join(KERNELS), help=f"comma-separated, of {','.join(KERNELS)}")
    parser.add_argument("--eigh", default="jax,evd,evr", help="eigendecompositions: jax, evd, evr")
    parser.add_argument("--out", default="feature-block-kernels.json")
    args = parser.parse_args()
    kernels, eigh_libraries = args.kernels.split(","), args.eigh.split(",")
    rows = [row for n in args.sizes for row in measure(n, args.block, 784, args.repeats, kernels, eigh_libraries)]
    machine = dict(processor=_cpu_name(), cores=os.cpu_count(), load_average=os.getloadavg(), jax=jax.__version__,
                   numpy=np.__version__, scipy=scipy.__version__, python=platform.python_version())
    pathlib.Path(args.out).write_text(json.dumps(dict(machine=machine, rows=rows), indent=1) + "\n")
    print(f"machine: {machine}")


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
