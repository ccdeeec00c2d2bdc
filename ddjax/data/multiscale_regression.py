"""Linear regression whose input features come in blocks of different scales (dataset "multiscale_regression").

A member with width p, n_train n and seed s sees z ~ N(0, I_p), features x_j = a_j z_j, where the p features are
cut into len(feature_scales) equal blocks (the first block first) and a_j is its block's scale, and targets
y = z.beta + e with |beta|^2 = r^2 (beta uniform on that sphere) and e ~ N(0, s^2). In the features' own
coordinates the teacher is b = beta / a, and the test risk of weights w is exactly

    R(w) = sum_j a_j^2 (w_j - b_j)^2 + s^2,

so no test set is drawn. Every feature carries the same share r^2 / p of the signal, but gradient descent learns
a block at a speed proportional to a^2: with two scales it fits the fast block (and its noise) long before the
slow one, the setting in which Heckel & Yilmaz (2020) and Pezeshki et al. (2022) find epoch-wise double descent.
`ddjax.solvers.gradient_descent` trains every member on its problem (`member_problem`) and gives the risk over
time in closed form. The random arrays are those of `ddjax.data.gaussian_regression` (the same counter-based
hash, independent of padding), so with feature_scales=(1,) the design is that data set's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ddjax.data.gaussian_regression import DESIGN, NOISE, SIGNAL, Member, counter_normal, stream_key


def feature_scales(width: jax.Array, p_max: int, scales: tuple[float, ...]) -> jax.Array:
    """Scale a_j of each of p_max features of a member of `width` features: block floor(j * blocks / width), 0 past
    the width."""
    j = jnp.arange(p_max)
    block = jnp.minimum(j * len(scales) // jnp.maximum(width, 1), len(scales) - 1)
    return jnp.where(j < width, jnp.asarray(scales, jnp.float64)[block], 0.0)


def member_problem(member: Member, n_max: int, p_max: int, scales: tuple[float, ...], signal_norm_sq: float,
                   noise_var: float, data_seed: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(x [n_max, p_max], y [n_max], b [p_max], a [p_max]) of one member, zero past its n rows and p columns: the
    design, the targets, the teacher in the features' coordinates and each feature's scale."""
    rows = (jnp.arange(n_max) < member.n_train).astype(jnp.float64)
    a = feature_scales(member.width, p_max, scales)
    columns = (a > 0).astype(jnp.float64)
    z = counter_normal(stream_key(data_seed, member.seed, DESIGN), n_max, p_max) * rows[:, None] * columns
    direction = counter_normal(stream_key(data_seed, member.seed, SIGNAL), 1, p_max)[0] * columns
    beta = jnp.sqrt(signal_norm_sq) * direction / jnp.linalg.norm(direction)
    noise = counter_normal(stream_key(data_seed, member.seed, NOISE), n_max, 1)[:, 0] * rows
    return z * a, z @ beta + jnp.sqrt(noise_var) * noise, jnp.where(a > 0, beta / jnp.where(a > 0, a, 1.0), 0.0), a
