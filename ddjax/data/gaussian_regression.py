"""Isotropic Gaussian linear regression, drawn per member inside the program (dataset "gaussian_regression").

A member with width p, n_train n and seed s sees x ~ N(0, I_p), y = x.b + e with |b|^2 = r^2 (b uniform on that
sphere) and e ~ N(0, s^2): the setting of Hastie, Montanari, Rosset and Tibshirani (2019), whose Theorem 1 gives
the limit of the excess risk of the minimum-norm least-squares estimator (see `ddjax.analysis.theory`).

Entry (i, j) of every random array is a hash of (data_seed, seed, stream, i, j), never of the array's shape, so
a member's data does not depend on the padding of its group, and members with the same seed see nested
designs (the first n rows and p columns of one infinite Gaussian matrix). `ddjax.solvers.closed_form` solves
each member's problem (`member_problem`) inside the program that draws it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ddjax.data.sampling import mix32

DESIGN, SIGNAL, NOISE = 0, 1, 2  # Independent streams of one member.


class Member(NamedTuple):
    """One member (stacked: a leading member axis on every field)."""

    width: jax.Array  # int32: p, the dimension.
    n_train: jax.Array  # int32: n, the number of samples.
    seed: jax.Array  # uint32
    n_val: jax.Array | None = None  # int32: the last n_val of its n_train rows are held out for validation.


def _bits(key: jax.Array, rows: int, cols: int, salt: int) -> jax.Array:
    i = jnp.arange(rows, dtype=jnp.uint32)[:, None]
    j = jnp.arange(cols, dtype=jnp.uint32)[None, :]
    inner = mix32(j * jnp.uint32(0x27D4EB2F) + jnp.uint32(salt) * jnp.uint32(0x165667B1) + jnp.uint32(1))
    return mix32(key ^ mix32(i * jnp.uint32(0x9E3779B9) + inner))


def counter_normal(key: jax.Array, rows: int, cols: int) -> jax.Array:
    """Standard normal float64 [rows, cols] whose entry (i, j) depends only on (key, i, j) (Box-Muller)."""
    scale = 2.0**-32
    u1 = (_bits(key, rows, cols, 0).astype(jnp.float64) + 0.5) * scale  # in (0, 1): log(u1) is finite.
    u2 = _bits(key, rows, cols, 1).astype(jnp.float64) * scale
    return jnp.sqrt(-2 * jnp.log(u1)) * jnp.cos(2 * jnp.pi * u2)


def stream_key(data_seed: int, seed: jax.Array, stream: int) -> jax.Array:
    """The key of one of a member's random streams."""
    key = mix32(jnp.uint32(data_seed) * jnp.uint32(0x9E3779B9) + jnp.uint32(stream + 1))
    return mix32(key ^ mix32(jnp.asarray(seed, jnp.uint32) * jnp.uint32(0x85EBCA6B) + jnp.uint32(0x27D4EB2F)))


def member_problem(member: Member, n_max: int, p_max: int, signal_norm_sq: float, noise_var: float,
                   data_seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(x [n_max, p_max], y [n_max], b [p_max]) of one member, zero past its n rows and p columns."""
    rows = (jnp.arange(n_max) < member.n_train).astype(jnp.float64)
    columns = (jnp.arange(p_max) < member.width).astype(jnp.float64)
    x = counter_normal(stream_key(data_seed, member.seed, DESIGN), n_max, p_max) * rows[:, None] * columns
    direction = counter_normal(stream_key(data_seed, member.seed, SIGNAL), 1, p_max)[0] * columns
    b = jnp.sqrt(signal_norm_sq) * direction / jnp.linalg.norm(direction)
    noise = counter_normal(stream_key(data_seed, member.seed, NOISE), n_max, 1)[:, 0] * rows
    return x, x @ b + jnp.sqrt(noise_var) * noise, b
