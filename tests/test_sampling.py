"""Tests for the counter-based sampling hash shared by minibatches and the Gaussian regression designs."""

import jax.numpy as jnp
import numpy as np

from ddjax.data.sampling import batch_indices, mix32


def _fmix32(h: int) -> int:
    """murmur3's finalizer on Python integers, written from its definition."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def test_mix32_is_murmur3s_finalizer():
    values = [0, 1, 2, 12345, 0x9E3779B9, 0xFFFFFFFF]
    got = np.asarray(mix32(jnp.asarray(values, jnp.uint32))).tolist()
    assert got == [_fmix32(v) for v in values]
    assert got[1] == 0x514E28B7  # The published test value of fmix32(1).


def test_batch_indices_are_a_pure_function_of_seed_and_step_within_range():
    a = np.asarray(batch_indices(jnp.uint32(3), jnp.int32(7), 64, jnp.int32(10)))
    assert a.dtype == np.int32 and a.min() >= 0 and a.max() < 10
    np.testing.assert_array_equal(a, np.asarray(batch_indices(jnp.uint32(3), jnp.int32(7), 64, jnp.int32(10))))
    assert not np.array_equal(a, np.asarray(batch_indices(jnp.uint32(3), jnp.int32(8), 64, jnp.int32(10))))
    assert not np.array_equal(a, np.asarray(batch_indices(jnp.uint32(4), jnp.int32(7), 64, jnp.int32(10))))
