"""Data sets (MNIST-1D generated offline, a synthetic Gaussian teacher, image files), label noise and subsampling.

`ddjax.data.registry` chooses among them by name (`load_dataset`); image data sets are read from their original
files by `ddjax.data.image_data`.
"""

from __future__ import annotations

import functools
import random
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    """A classification data set as host numpy arrays: int32 labels; inputs float32 [n, features] for the
    generated data sets, uint8 images [n, height, width, channels] (NHWC, as distributed) for the image ones."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


@functools.lru_cache(maxsize=4)
def make_mnist1d(n_samples: int, train_fraction: float, seed: int) -> Dataset:
    """MNIST-1D (Greydanus 2020) generated with `mnist1d.data.make_dataset`, never downloaded.

    `make_dataset` seeds the global `random` and `numpy.random` generators; their state is restored afterwards so
    that generating data has no side effect on the caller.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = n_samples, train_fraction, seed
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return Dataset(data["x"].astype(np.float32), data["y"].astype(np.int32),
                   data["x_test"].astype(np.float32), data["y_test"].astype(np.int32), 10)


@functools.lru_cache(maxsize=4)
def make_gaussian(n_samples: int, train_fraction: float, input_dim: int, n_classes: int, teacher_noise: float,
                  seed: int) -> Dataset:
    """Isotropic Gaussian inputs labelled by a random linear teacher: y = argmax(x @ W + noise); generated once per
    argument tuple in a process."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, input_dim)).astype(np.float32)
    teacher = rng.standard_normal((input_dim, n_classes)) / np.sqrt(input_dim)
    logits = x @ teacher + teacher_noise * rng.standard_normal((n_samples, n_classes))
    y = logits.argmax(axis=1).astype(np.int32)
    split = int(n_samples * train_fraction)
    return Dataset(x[:split], y[:split], x[split:], y[split:], n_classes)


def corrupt_labels(labels: np.ndarray, fraction: float, n_classes: int, seed: int) -> np.ndarray:
    """Replaces exactly round(fraction * n) labels, chosen at random, by a uniformly drawn *incorrect* class.

    Args:
      labels: int array of shape (n,).
      fraction: in [0, 1).
      n_classes: number of classes (>= 2).
      seed: the same seed gives the same corruption.

    Returns:
      A new array; `labels` is not modified.
    """
    rng = np.random.default_rng(seed)
    n_flip = int(round(fraction * len(labels)))
    flipped = rng.choice(len(labels), size=n_flip, replace=False)
    # Adding an offset in [1, n_classes) modulo n_classes never returns the true class.
    offsets = rng.integers(1, n_classes, size=n_flip)
    noisy = np.array(labels, copy=True)
    noisy[flipped] = (noisy[flipped] + offsets) % n_classes
    return noisy


def is_regression(dataset: Dataset) -> bool:
    """Whether the data set's targets are float vectors [n, outputs] (regression) rather than integer labels."""
    return dataset.y_train.ndim == 2


def member_labels(dataset: Dataset, n_train: int, label_noise: float, seed: int, data_seed: int,
                  target_noise: float = 0.0) -> np.ndarray:
    """Training labels of one member: the first `n_train` samples, corrupted once, padded to the full split.

    The corruption depends on (data_seed, seed, n_train, label_noise) only, so members that differ only in width
    train on identical labels. Entries past `n_train` keep their clean labels and are never used for training.
    A regression data set's targets come back [outputs, rows] (rows last, as labels are), the first `n_train`
    with Gaussian noise of standard deviation `target_noise` added, drawn likewise.
    """
    if is_regression(dataset):
        targets = dataset.y_train.T.copy()
        rng = np.random.default_rng([data_seed, seed, n_train, int(round(target_noise * 1e6)), 7])
        targets[:, :n_train] += (target_noise * rng.standard_normal((targets.shape[0], n_train))).astype(np.float32)
        return targets
    labels = dataset.y_train.copy()
    noise_seed = [data_seed, seed, n_train, int(round(label_noise * 1e6))]
    labels[:n_train] = corrupt_labels(labels[:n_train], label_noise, dataset.n_classes, noise_seed)
    return labels


def load_image_dataset(name: str) -> Dataset:
    """Image data set `name` of `ddjax.data.image_sets`: the full official training and test splits as uint8 NHWC.

    Read from the cache folder and downloaded there on a miss (`ddjax.data.download`); a failure is a one-line
    `DataError`, a ConfigError.
    """
    from ddjax.data.download import cache_root
    from ddjax.data.image_data import load_image_set
    from ddjax.data.image_sets import IMAGE_SETS

    image_set = IMAGE_SETS[name]
    arrays = load_image_set(image_set, cache_root())
    return Dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], image_set.n_classes)
