"""A user's own data set from arrays or an .npz file: checked once, then a `Dataset` like the built-in ones.

Features are float [n, d] (any real dtype, stored as float32); images are uint8 [n, height, width, channels]
(NHWC), kept as uint8 like the standard image sets, so `augment` applies. Keras's grey-scale layout is taken as
given: uint8 [n, height, width] (`mnist.npz`, `fashion_mnist`) gains a channel axis, [n, height, width, 1],
and any other real [n, height, width] is flattened to features [n, height * width]. Labels are integers in [0, n_classes),
[n] or [n, 1] (Keras's CIFAR-10 layout). Every problem is one line naming the array and what is allowed (a
ConfigError, exit code 2 from the CLI), raised before any run folder exists.
"""

from __future__ import annotations

import functools
import os
import pathlib
import zipfile
from typing import Any

import numpy as np

from ddjax.data.datasets import Dataset
from ddjax.data.image_data import SPLITS
from ddjax.errors import ConfigError

NPZ_PREFIX = "npz:"  # dataset="npz:PATH" reads an .npz with the four SPLITS keys (Keras's mnist.npz layout).


def check_dataset(source: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any,
                  n_classes: int | None = None) -> Dataset:
    """The `Dataset` of the four arrays, or ConfigError naming the first problem.

    Args:
      source: what the arrays are, for error messages (a data set name, a file).
      n_classes: the number of classes; None: one more than the largest label (at least 2).
    """
    given = dict(zip(SPLITS, (x_train, y_train, x_test, y_test)))
    arrays = {}
    for split, value in given.items():
        try:
            arrays[split] = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{source}: {split} is not an array ({error})") from None
        if arrays[split].shape[:1] == (0,) or arrays[split].ndim == 0:
            raise ConfigError(f"{source}: {split} is empty (shape {list(arrays[split].shape)}); every split needs "
                              f"at least one example")
    x = {split: _inputs(source, split, arrays[split]) for split in ("x_train", "x_test")}
    if x["x_train"].shape[1:] != x["x_test"].shape[1:] or x["x_train"].dtype != x["x_test"].dtype:
        raise ConfigError(f"{source}: x_train is {x['x_train'].dtype}{list(x['x_train'].shape)} and x_test "
                          f"{x['x_test'].dtype}{list(x['x_test'].shape)}; one example must have one shape and dtype")
    y = {split: _labels(source, split, arrays[split], len(x["x" + split[1:]])) for split in ("y_train", "y_test")}
    largest = max(int(y["y_train"].max()), int(y["y_test"].max()))
    if n_classes is None:
        n_classes = max(largest + 1, 2)
    if not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool) or n_classes < 2:
        raise ConfigError(f"{source}: n_classes={n_classes!r} is not allowed: an integer >= 2")
    for split, labels in y.items():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= n_classes:
            raise ConfigError(f"{source}: {split} holds label {low if low < 0 else high}, outside [0, {n_classes})")
    return Dataset(x["x_train"], y["y_train"], x["x_test"], y["y_test"], int(n_classes))


def _inputs(source: str, split: str, x: np.ndarray) -> np.ndarray:
    """Images stay uint8 NHWC (uint8 [n, H, W] gains a channel axis); features become float32 [n, d] after a
    check for NaN and infinities (other real [n, H, W] is flattened to [n, H * W])."""
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        return x if x.ndim == 4 else x[..., None]
    if x.ndim not in (2, 3):
        raise ConfigError(f"{source}: {split} has shape {list(x.shape)}; allowed: features [n, d] or [n, height, "
                          f"width] (flattened), uint8 images [n, height, width] or [n, height, width, channels]")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) or x.dtype == bool:
        raise ConfigError(f"{source}: {split} is {x.dtype}; allowed: real numbers (features) or uint8 (images)")
    finite = np.isfinite(x)
    if not finite.all():
        row = int(np.argwhere(~finite)[0, 0])
        raise ConfigError(f"{source}: {split} holds a NaN or infinite value (row {row}); features must be finite")
    return x.reshape(len(x), -1).astype(np.float32)


def _labels(source: str, split: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or len(y) != n:
        raise ConfigError(f"{source}: {split} has shape {list(y.shape)}, expected [{n}] (one label per example of "
                          f"x{split[1:]})")
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        raise ConfigError(f"{source}: {split} is {y.dtype}; labels must be integers in [0, n_classes)")
    return y.astype(np.int32)


def npz_path(name: str) -> pathlib.Path:
    """The file of dataset name "npz:PATH"."""
    return pathlib.Path(name[len(NPZ_PREFIX):]).expanduser()


def load_npz(name: str) -> Dataset:
    """The checked `Dataset` of dataset name "npz:PATH"; read once per file version (path, size, time)."""
    path = npz_path(name)
    try:
        stat = path.stat()
    except OSError as error:
        raise ConfigError(f"dataset={name!r}: cannot read {str(path)!r} ({error.strerror or error})") from None
    return _load_npz(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_npz(path: str, size: int, mtime_ns: int) -> Dataset:
    source = f"dataset='npz:{path}'"
    return check_dataset(source, *read_npz_splits(path, source, ConfigError))


def read_npz_splits(path: str | os.PathLike, source: str, error: type[Exception]) -> list[np.ndarray]:
    """x_train, y_train, x_test, y_test of a Keras-layout .npz (no pickles), as stored; a missing key or an
    unreadable file raises `error` with one line that starts with `source`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [split for split in SPLITS if split not in npz.files]
            if missing:
                raise error(f"{source}: the file has no {', '.join(missing)} (keys: {', '.join(npz.files)}); "
                            f"expected {', '.join(SPLITS)}")
            return [npz[split] for split in SPLITS]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as reason:
        words = str(reason).replace("\n", " ")
        raise error(f"{source}: not a readable .npz of arrays ({type(reason).__name__}: {words})") from None


def is_npz(name: str) -> bool:
    return isinstance(name, str) and name.startswith(NPZ_PREFIX) and len(name) > len(NPZ_PREFIX)


def describe(dataset: Dataset) -> str:
    """One phrase: sizes, one example's shape and dtype, classes."""
    return (f"{len(dataset.y_train)} training and {len(dataset.y_test)} test examples of "
            f"{dataset.x_train.dtype}{list(dataset.x_train.shape[1:])}, {dataset.n_classes} classes")
