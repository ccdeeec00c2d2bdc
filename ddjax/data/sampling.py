"""Counter-based sampling: random integers as pure hashes of (seed, step, index), never of a stateful generator.

Minibatches (`batch_indices`) and the per-member Gaussian designs of `ddjax.data.gaussian_regression` are both
drawn with `mix32`, so a member's draws depend only on its seed and position, never on the padding or the
number of members it shares a program with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mix32(h: jax.Array) -> jax.Array:
    """murmur3's 32-bit finalizer: every input bit flips each output bit with probability about 1/2."""
    h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
    h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def batch_indices(seed: jax.Array, step: jax.Array, batch_size: int, n: jax.Array) -> jax.Array:
    """`batch_size` indices drawn uniformly (with replacement) from [0, n), a pure function of (seed, step).

    A counter-based integer hash (murmur3's finalizer) instead of `jax.random`: its kernels compile in a fraction
    of the time threefry's do, which matters when every distinct width compiles its own serial program.
    """
    base = mix32(jnp.asarray(seed, jnp.uint32) * jnp.uint32(0x9E3779B9) + mix32(jnp.asarray(step, jnp.uint32) + 1))
    bits = mix32(base ^ (jnp.arange(batch_size, dtype=jnp.uint32) * jnp.uint32(0x27D4EB2F) + 1))
    return (bits % jnp.asarray(n, jnp.uint32)).astype(jnp.int32)
