"""Image inputs: crop and flip against a numpy reference, determinism, per-channel standardization."""

import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.data.augment import (CROP_PADDING, channel_stats, crop_and_flip, image_spec, random_crop_and_flip, standardize,
                           standardize_on_host)
from ddjax.config import ConfigError
from ddjax.data.sampling import augment_bits


def _reference(image, offset_y, offset_x, flip, padding):
    """Pad with zeros, crop, then mirror: the CIFAR recipe written plainly in numpy."""
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    crop = padded[offset_y:offset_y + image.shape[0], offset_x:offset_x + image.shape[1]]
    return crop[:, ::-1] if flip else crop


def test_crop_and_flip_by_hand():
    image = (np.arange(16, dtype=np.uint8) + 1).reshape(1, 4, 4, 1)  # Rows 1-4, 5-8, 9-12, 13-16.
    out = crop_and_flip(jnp.asarray(image), jnp.array([0]), jnp.array([2]), jnp.array([True]), padding=1)
    # Padded by 1, cropped at row 0 (a zero row on top) and column 2 (columns 1..3 then a zero column), mirrored.
    expected = [[0, 0, 0, 0], [0, 4, 3, 2], [0, 8, 7, 6], [0, 12, 11, 10]]
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], expected)
    centred = crop_and_flip(jnp.asarray(image), jnp.array([1]), jnp.array([1]), jnp.array([False]), padding=1)
    np.testing.assert_array_equal(centred, image)  # Offsets equal to the padding keep the image.
    mirrored = crop_and_flip(jnp.asarray(image), jnp.array([1]), jnp.array([1]), jnp.array([True]), padding=1)
    np.testing.assert_array_equal(np.asarray(mirrored)[0, :, :, 0], image[0, :, ::-1, 0])


def test_crop_and_flip_matches_numpy_for_every_offset():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (2 * 81, 6, 5, 3), dtype=np.uint8)
    offsets = np.array([(y, x) for y in range(9) for x in range(9)] * 2)
    flips = np.repeat([False, True], 81)
    out = np.asarray(crop_and_flip(jnp.asarray(images), jnp.asarray(offsets[:, 0]), jnp.asarray(offsets[:, 1]),
                                   jnp.asarray(flips), padding=4))
    for i in range(len(images)):
        np.testing.assert_array_equal(out[i], _reference(images[i], *offsets[i], flips[i], 4))


def test_random_crop_and_flip_is_a_pure_function_of_seed_step_and_position():
    rng = np.random.default_rng(1)
    images = jnp.asarray(rng.integers(1, 256, (2000, 8, 8, 1), dtype=np.uint8))
    out = np.asarray(random_crop_and_flip(images, 3, 10))
    np.testing.assert_array_equal(out, random_crop_and_flip(images, 3, 10))
    assert not np.array_equal(out, random_crop_and_flip(images, 3, 11))
    assert not np.array_equal(out, random_crop_and_flip(images, 4, 10))
    # The offsets and flips the docstring promises, read back from the same hash words.
    bits = np.asarray(augment_bits(3, 10, 2000)).astype(np.int64)
    k = 2 * CROP_PADDING + 1
    offset_y, offset_x, flip = bits % k, bits // k % k, bits // k**2 % 2 == 1
    for i in range(0, 2000, 97):
        np.testing.assert_array_equal(out[i], _reference(np.asarray(images[i]), offset_y[i], offset_x[i], flip[i],
                                                         CROP_PADDING))
    # Every offset pair and both flips occur, with the frequencies of a uniform draw.
    pairs = np.bincount(offset_y * k + offset_x, minlength=k * k)
    assert pairs.min() > 0 and abs(flip.mean() - 0.5) < 0.05
    # The batch position matters: the same image at every position is augmented in many ways.
    same = random_crop_and_flip(jnp.broadcast_to(images[:1], images.shape), 3, 10)
    assert len({np.asarray(a).tobytes() for a in same[:200]}) > 50


def test_channel_stats_and_standardize():
    rng = np.random.default_rng(2)
    images = np.stack([rng.integers(0, 256, (40, 5, 5)), rng.integers(100, 120, (40, 5, 5)),
                       np.full((40, 5, 5), 7)], axis=-1).astype(np.uint8)
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(std[:2], images.reshape(-1, 3).std(0)[:2])
    assert std[2] == 1.0  # A constant channel is centred, not divided by zero.
    spec = image_spec(images, augment=False)
    assert spec.shape == (5, 5, 3) and spec.features == 75
    flat = np.asarray(standardize(jnp.asarray(images), spec))
    assert flat.shape == (40, 75) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, standardize_on_host(images, spec))
    per_channel = flat.reshape(-1, 3)
    np.testing.assert_allclose(per_channel.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(per_channel[:, :2].std(0), 1, rtol=1e-5)
    np.testing.assert_array_equal(flat.reshape(40, 5, 5, 3)[3, 1, 2], standardize_on_host(images[3:4], spec)
                                  .reshape(5, 5, 3)[1, 2])  # Flattened in NHWC order.


def test_image_spec_of_flat_data_and_bad_shapes():
    assert image_spec(np.zeros((10, 4), np.float32), augment=False) is None
    with pytest.raises(ConfigError, match="^augment=True is not allowed"):
        image_spec(np.zeros((10, 4), np.float32), augment=True)
    with pytest.raises(ConfigError, match="not allowed: expected"):
        image_spec(np.zeros((10, 4, 4), np.uint8), augment=False)
