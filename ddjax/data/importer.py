"""Standard image data sets put into the cache from a copy already on disk: the original files, Keras's .npz, or
(MNIST) the deeplearning.net `mnist.pkl.gz`; `python -m ddjax.data import NAME PATH...` is its command.

Every copy is checked before anything lands in the cache: original files by their published md5s (then decoded
as a download would be), the other formats by the data set's sizes, image shape and labels, and, where the
table knows it (`ImageSet.content_sha256`, MNIST), by the sha256 of the decoded arrays. The arrays are written to
the folder `load_image_set` reads (`decoded_folder`), with a `source.json` saying where they came from, so a
later run needs neither the network nor the original files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pathlib
import pickle
import shutil
import tempfile

import numpy as np

from ddjax.data.arrays import read_npz_splits
from ddjax.data.download import DataError, cache_root, dataset_folder, md5_of
from ddjax.data.image_data import (READ_ERRORS, SPLITS, check_arrays, decoded_folder, load_image_set,
                                   write_decoded)
from ddjax.data.image_sets import IMAGE_SETS, ImageSet

FORMATS = ("original", "npz", "pickle")


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of decoded arrays: the bytes of x_train, y_train, x_test, y_test in that order, images as C-ordered
    uint8 NHWC and labels as little-endian int32."""
    digest = hashlib.sha256()
    for split in SPLITS:
        dtype = np.uint8 if split.startswith("x") else np.dtype("<i4")
        digest.update(np.ascontiguousarray(arrays[split], dtype=dtype).tobytes())
    return digest.hexdigest()


def import_dataset(name: str, paths: list[str | os.PathLike], root: pathlib.Path | None = None) -> dict:
    """Checks the copy of image data set `name` at `paths` and puts its decoded arrays into the cache.

    Args:
      name: a data set of `ddjax.data.image_sets.IMAGE_SETS` (mnist, fashion_mnist, cifar10).
      paths: its original files (MNIST's four IDX .gz files, CIFAR-10's tarball), or one Keras-layout .npz
        (keys x_train, y_train, x_test, y_test), or for MNIST one deeplearning.net mnist.pkl.gz.
      root: the cache folder (default `cache_root()`).

    Returns:
      What `source.json` records: the format, the files, the content sha256 and whether it was checked.

    Raises:
      DataError: one line naming the file and what is wrong; nothing is written then.
    """
    if name not in IMAGE_SETS:
        raise DataError(f"cannot import {name!r}: not a standard data set; allowed: {', '.join(IMAGE_SETS)}")
    image_set, root = IMAGE_SETS[name], pathlib.Path(root) if root is not None else cache_root()
    paths = [pathlib.Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise DataError(f"cannot import {name}: {str(path)!r} is not a file")
    fmt = _format(image_set, paths)
    if fmt == "original":
        _copy_originals(image_set, paths, dataset_folder(image_set, root))
        load_image_set.cache_clear()
        arrays = load_image_set(image_set, root)
        checked = False  # The md5s of the originals were checked instead.
    else:
        arrays = _read_npz(paths[0]) if fmt == "npz" else _read_pickle(paths[0])
        check_arrays(image_set, arrays, f"{name} copy {str(paths[0])!r}")
        checked = _check_content(image_set, arrays, paths[0])
        dataset_folder(image_set, root)
        write_decoded(decoded_folder(image_set, root), arrays)
        load_image_set.cache_clear()
    source = {"dataset": name, "format": fmt, "files": [str(p.resolve()) for p in paths],
              "content_sha256": content_sha256(arrays), "content_checked": checked}
    (decoded_folder(image_set, root) / "source.json").write_text(json.dumps(source, indent=1) + "\n")
    return source


def _format(image_set: ImageSet, paths: list[pathlib.Path]) -> str:
    """Which kind of copy `paths` is, by the files' names; DataError if none."""
    originals = {f.name for f in image_set.files}
    if {p.name for p in paths} == originals and len(paths) == len(originals):
        return "original"
    if len(paths) == 1 and paths[0].suffix == ".npz":
        return "npz"
    if len(paths) == 1 and image_set.deeplearning_pickle and paths[0].name.endswith((".pkl.gz", ".pkl")):
        return "pickle"
    pickle_form = ", or one deeplearning.net .pkl.gz" if image_set.deeplearning_pickle else ""
    raise DataError(f"cannot import {image_set.name} from {', '.join(str(p) for p in paths)}: give its original "
                    f"files ({', '.join(sorted(originals))}), or one Keras .npz{pickle_form}")


def _copy_originals(image_set: ImageSet, paths: list[pathlib.Path], folder: pathlib.Path) -> None:
    """Copies each original into `folder` after checking its md5 (to a temporary name, then renamed)."""
    expected = {f.name: f.md5 for f in image_set.files}
    for path in paths:
        md5 = md5_of(path)
        if md5 != expected[path.name]:
            raise DataError(f"{str(path)!r} has md5 {md5}, not the published {expected[path.name]}: not the "
                            f"original {image_set.name} file")
    for path in paths:
        if (folder / path.name).resolve() == path.resolve():
            continue
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".part", delete=False) as tmp:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, tmp)
        os.replace(tmp.name, folder / path.name)


def _read_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test of a Keras-layout .npz as uint8 NHWC images and int32 labels."""
    raw = dict(zip(SPLITS, read_npz_splits(path, repr(str(path)), DataError)))
    return {split: (_image_array if split.startswith("x") else _label_array)(raw[split], path, split)
            for split in SPLITS}


def _image_array(x: np.ndarray, path: pathlib.Path, split: str) -> np.ndarray:
    if x.dtype != np.uint8:
        raise DataError(f"{str(path)!r}: {split} is {x.dtype}, expected uint8 images")
    return x[..., None] if x.ndim == 3 else x  # Keras's MNISTs are [n, 28, 28]: one channel.


def _label_array(y: np.ndarray, path: pathlib.Path, split: str) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{str(path)!r}: {split} is {y.dtype}, expected integer labels")
    return (y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y).astype(np.int32)  # Keras CIFAR: [n, 1].


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, tuples and lists only: a pickle cannot run anything else while it is read."""

    # _codecs.encode rebuilds the bytes of an array pickled by Python 3 with protocol 2 (string in, bytes out).
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a numpy array part")
        return super().find_class(module, name)


def _read_pickle(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The deeplearning.net pickle ((train, valid, test) of (x float32 [n, 784] = k / 256, y)) as uint8 NHWC
    images (train and valid joined: the original 60000) and int32 labels."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            splits = _ArraysOnly(io.BytesIO(f.read()), encoding="latin1").load()
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    except (*READ_ERRORS, pickle.UnpicklingError) as error:
        raise DataError(f"{str(path)!r} is not the deeplearning.net MNIST pickle ({type(error).__name__}: "
                        f"{error})") from None
    x = {"x_train": np.concatenate([x_train, x_valid]), "x_test": x_test}
    arrays = {}
    for split, values in x.items():
        values = np.asarray(values)
        pixels = values.astype(np.float64) * 256
        if values.ndim != 2 or not np.array_equal(pixels, np.round(pixels)) or pixels.min() < 0 or pixels.max() > 255:
            raise DataError(f"{str(path)!r}: {split} is not [n, 784] pixels k / 256 with k in 0..255")
        arrays[split] = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
    arrays["y_train"] = _label_array(np.concatenate([np.asarray(y_train), np.asarray(y_valid)]), path, "y_train")
    arrays["y_test"] = _label_array(np.asarray(y_test), path, "y_test")
    return arrays


def _check_content(image_set: ImageSet, arrays: dict[str, np.ndarray], path: pathlib.Path) -> bool:
    """True if the arrays' sha256 equals the published one, False where none is published; DataError if it
    differs."""
    if not image_set.content_sha256:
        return False
    found = content_sha256(arrays)
    if found != image_set.content_sha256:
        raise DataError(f"{str(path)!r} decodes to arrays with sha256 {found}, not {image_set.name}'s published "
                        f"{image_set.content_sha256}: not a faithful copy")
    return True
