"""Counter-based sampling: minibatch index streams (uniform draws with replacement, or epochs of fresh
permutations without replacement) and the other per-member draws, as pure hashes of (seed, step, index).

Every draw is a pure function of (seed, step) computed inside the compiled program by a counter-based integer
hash (murmur3's finalizer) instead of `jax.random`: its kernels compile in a fraction of the time threefry's do,
which matters when every distinct width compiles its own serial program. No sampler holds state, so a run resumes
at any step, and a member trained alone (serial mode) draws exactly the batches it draws in a vmapped sweep. The
per-member Gaussian designs of `ddjax.data.gaussian_regression` are drawn with the same `mix32`, so they depend
only on a member's seed and position, never on the padding or the members it shares a program with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SAMPLINGS = ("replacement", "epoch")  # Minibatch orders: `sample_batch`.
FEISTEL_ROUNDS = 4  # Luby-Rackoff: 4 rounds of a pseudo-random round function give a strong pseudo-random permutation.
# Salts that give the hashes for batches, augmentation and permutations independent streams from one seed.
_AUGMENT_STREAM = 0x632BE5AB
_PERMUTATION_STREAM = 0x7FEB352D


def mix32(h: jax.Array) -> jax.Array:
    """murmur3's 32-bit finalizer: a bijection of uint32 in which every input bit flips each output bit ~50%."""
    h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
    h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _counter_base(seed: jax.Array, counter: jax.Array) -> jax.Array:
    return mix32(jnp.asarray(seed, jnp.uint32) * jnp.uint32(0x9E3779B9) + mix32(jnp.asarray(counter, jnp.uint32) + 1))


def _spread(base: jax.Array, count: int) -> jax.Array:
    return mix32(base ^ (jnp.arange(count, dtype=jnp.uint32) * jnp.uint32(0x27D4EB2F) + 1))


def example_bits(seed: jax.Array, step: jax.Array, count: int, salt: int) -> jax.Array:
    """`count` pseudo-random uint32 words, one per position in the batch of update `step` (salt: which stream)."""
    return _spread(_counter_base(seed, step) ^ jnp.uint32(salt), count)


def augment_bits(seed: jax.Array, step: jax.Array, count: int) -> jax.Array:
    """The words that choose each batch position's crop and flip (`ddjax.data.augment`)."""
    return example_bits(seed, step, count, _AUGMENT_STREAM)


def batch_indices(seed: jax.Array, step: jax.Array, batch_size: int, n: jax.Array) -> jax.Array:
    """`batch_size` indices drawn uniformly (with replacement) from [0, n), a pure function of (seed, step)."""
    bits = _spread(_counter_base(seed, step), batch_size)
    return (bits % jnp.asarray(n, jnp.uint32)).astype(jnp.int32)


def steps_per_epoch(n: jax.Array, batch_size: int) -> jax.Array:
    """ceil(n / batch_size): an epoch's last batch is partial when batch_size does not divide n."""
    return (n + batch_size - 1) // batch_size


def epoch_permutation(seed: jax.Array, epoch: jax.Array, positions: jax.Array, n: jax.Array) -> jax.Array:
    """The examples at `positions` (each in [0, n)) of epoch `epoch`'s order: a permutation of [0, n) that is a
    pure function of (seed, epoch), evaluated per position.

    A balanced Feistel network on the smallest domain of 2^(2k) >= n values is a bijection of that domain for any
    round function; cycle walking (applying it again while the result is >= n) restricts it to a bijection of
    [0, n). The domain is below 4n, so a position takes under 4 applications on average. This reads only the
    batch's positions: no argsort of the whole training set per step.
    """
    n = jnp.asarray(n, jnp.uint32)
    bits = 32 - jax.lax.clz(jnp.maximum(n - 1, 1))  # Bits of the largest value, n - 1 (at least 1).
    half = (bits + 1) // 2
    mask = (jnp.uint32(1) << half) - 1
    base = _counter_base(seed, epoch) ^ jnp.uint32(_PERMUTATION_STREAM)
    keys = [mix32(base + jnp.uint32(r + 1) * jnp.uint32(0x9E3779B9)) for r in range(FEISTEL_ROUNDS)]

    def encrypt(x):
        left, right = x >> half, x & mask
        for key in keys:
            left, right = right, left ^ (mix32(right ^ key) & mask)
        return (left << half) | right

    walked = jax.lax.while_loop(lambda y: jnp.any(y >= n), lambda y: jnp.where(y >= n, encrypt(y), y),
                                encrypt(jnp.asarray(positions, jnp.uint32)))
    return walked.astype(jnp.int32)


def epoch_batch(seed: jax.Array, step: jax.Array, batch_size: int, n: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Indices and loss weights of update `step` when every epoch visits each of [0, n) once, in a fresh order.

    An epoch is ceil(n / batch_size) updates. Its last batch is partial when batch_size does not divide n: its
    positions past n are filled with a repeated example and weight 0, and the weights of the real ones are
    1 / (their count), so that update is the mean loss over the epoch's remaining examples.
    """
    n = jnp.asarray(n, jnp.int32)
    per_epoch = steps_per_epoch(n, batch_size)
    step = jnp.asarray(step, jnp.int32)
    epoch, within = step // per_epoch, step % per_epoch
    positions = within * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
    real = positions < n
    index = epoch_permutation(seed, epoch, jnp.where(real, positions, 0), n)
    return index, real / jnp.sum(real)


def sample_batch(sampling: str, seed: jax.Array, step: jax.Array, batch_size: int,
                 n: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Indices into the training rows and per-position loss weights of update `step` (see `SAMPLINGS`)."""
    if sampling == "epoch":
        return epoch_batch(seed, step, batch_size, n)
    if sampling == "replacement":
        return batch_indices(seed, step, batch_size, n), jnp.full(batch_size, 1.0 / batch_size)
    raise ValueError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLINGS)}")
