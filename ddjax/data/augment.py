"""Image inputs inside the compiled program: random crop and flip on the stored uint8 images, per-channel
standardization, and flattening to the feature vector the MLP and random-feature families read.

Images stay on the device as uint8 in NHWC (CIFAR-10's training set: 150 MB, against 600 MB as float32); a batch
is gathered, augmented, standardized and flattened only when a step or an evaluation reads it. Flat data
(MNIST-1D, Gaussian) never passes through here: `TrainSpec.image` is None for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.data.sampling import augment_bits
from ddjax.errors import ConfigError

CROP_PADDING = 4  # Pixels of zero padding around an image before the random crop (the CIFAR recipe).


class ImageSpec(NamedTuple):
    """The static description of image inputs: their shape and per-channel statistics, and whether to augment."""

    shape: tuple[int, int, int]  # (height, width, channels) of one example.
    mean: tuple[float, ...]  # Per channel, in stored pixel units, over the whole training split.
    std: tuple[float, ...]
    augment: bool

    @property
    def features(self) -> int:
        """Inputs a flat model sees: height * width * channels."""
        return int(np.prod(self.shape))


def image_spec(x_train: np.ndarray, *, augment: bool) -> ImageSpec | None:
    """The ImageSpec of NHWC training images (None for flat [n, features] data), statistics from the host.

    Raises:
      ConfigError: `augment` on flat data, or inputs that are neither [n, features] nor [n, H, W, C].
    """
    if x_train.ndim == 2:
        if augment:
            raise ConfigError(f"augment=True is not allowed: the data set is not an image data set (its inputs "
                              f"have shape {x_train.shape[1:]}, not height x width x channels)")
        return None
    if x_train.ndim != 4:
        raise ConfigError(f"inputs of shape {x_train.shape} are not allowed: expected [n, features] or NHWC images")
    mean, std = channel_stats(x_train)
    return ImageSpec(tuple(int(d) for d in x_train.shape[1:]), tuple(mean.tolist()), tuple(std.tolist()), augment)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of NHWC images, in float64 (a channel that is constant gets std 1)."""
    flat = images.reshape(-1, images.shape[-1])
    mean = flat.mean(axis=0, dtype=np.float64)
    # Sum of squares in float64 one channel at a time: no float64 copy of the whole set.
    var = np.array([np.mean(np.square(flat[:, c], dtype=np.float64)) for c in range(flat.shape[1])]) - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def crop_and_flip(images: jax.Array, offset_y: jax.Array, offset_x: jax.Array, flip: jax.Array,
                  padding: int = CROP_PADDING) -> jax.Array:
    """Each image padded by `padding` zero pixels on every side, cropped back to its size at (offset_y, offset_x)
    of the padded image, then mirrored left-right where `flip`.

    Args:
      images: [B, H, W, C] (any dtype; padding is 0 in it, so black for stored uint8 pixels).
      offset_y, offset_x: int [B] in [0, 2 * padding]; `padding` on both keeps the image where it was.
      flip: bool [B].

    Returns:
      [B, H, W, C]: out[b, y, x] = image[b, y + offset_y - padding, x' + offset_x - padding] with x' = W - 1 - x
      where flipped (else x), and 0 where that falls outside the image. One gather: no padded copy is made.
    """
    _, height, width, _ = images.shape
    rows = jnp.arange(height)[None, :] + offset_y[:, None] - padding  # [B, H]
    columns = jnp.where(flip[:, None], width - 1 - jnp.arange(width)[None, :], jnp.arange(width)[None, :])
    columns = columns + offset_x[:, None] - padding  # [B, W]
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((columns >= 0) & (columns < width))[:, None, :]
    batch = jnp.arange(images.shape[0])[:, None, None]
    gathered = images[batch, jnp.clip(rows, 0, height - 1)[:, :, None], jnp.clip(columns, 0, width - 1)[:, None, :]]
    return jnp.where(inside[..., None], gathered, jnp.zeros((), images.dtype))


def random_crop_and_flip(images: jax.Array, seed: jax.Array, step: jax.Array) -> jax.Array:
    """`crop_and_flip` with offsets and flips drawn per batch position, a pure function of (seed, step, position).

    One uniform 32-bit hash word h per position, read as mixed-radix digits: with k = 2 * padding + 1 offsets,
    row offset h mod k, column offset (h // k) mod k, flip (h // k^2) mod 2 (bias below 1e-8).
    """
    bits = augment_bits(seed, step, images.shape[0])
    choices = jnp.uint32(2 * CROP_PADDING + 1)
    offset_y = bits % choices
    offset_x = (bits // choices) % choices
    flip = (bits // (choices * choices)) % 2 == 1
    return crop_and_flip(images, offset_y.astype(jnp.int32), offset_x.astype(jnp.int32), flip)


def standardize(images: jax.Array, image: ImageSpec, dtype: Any = jnp.float32) -> jax.Array:
    """[B, H, W, C] stored pixels -> [B, H * W * C] of `dtype` (row-major NHWC order), standardized per channel."""
    mean = jnp.asarray(image.mean, dtype)
    scale = jnp.asarray(1.0 / np.asarray(image.std), dtype)
    return ((images.astype(dtype) - mean) * scale).reshape(images.shape[0], -1)


def standardize_on_host(images: np.ndarray, image: ImageSpec) -> np.ndarray:
    """`standardize` in numpy (the same float32 arithmetic), for solvers that read whole arrays on the host."""
    mean = np.asarray(image.mean, np.float32)
    scale = np.asarray(1.0 / np.asarray(image.std), np.float32)
    return ((images.astype(np.float32) - mean) * scale).reshape(len(images), -1)


def training_inputs(image: ImageSpec, images: jax.Array, seed: jax.Array, step: jax.Array,
                    dtype: Any = jnp.float32) -> jax.Array:
    """A training batch of stored images as the model reads it: augmented (if on), standardized, flat."""
    if image.augment:
        images = random_crop_and_flip(images, seed, step)
    return standardize(images, image, dtype)
