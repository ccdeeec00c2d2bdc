"""Image data sets decoded from their original files: MNIST's gzipped IDX files, CIFAR-10's pickled batches.

Arrays are uint8 images in NHWC ([n, height, width, channels]) and int32 labels, exactly as distributed (no
scaling, no shuffling). The decoded arrays are cached beside the original files as .npy files, in a folder named
after the originals' md5s, so a second load reads four .npy files and does not decompress anything.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pathlib
import pickle
import tarfile
import tempfile
import zlib

import numpy as np

from ddjax.data.download import DataError, dataset_folder, fetch, md5_of, set_aside
from ddjax.data.image_sets import ImageSet

SPLITS = ("x_train", "y_train", "x_test", "y_test")
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # Magic numbers: uint8 data with 3 (images) or 1 (labels) dims.
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
# Part of the decoded cache's folder name: raise it when decoding changes, so older caches are not read.
DECODED_VERSION = 1
# What a truncated or corrupt gzip, tar or pickle raises while being read.
READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError, pickle.UnpicklingError, ValueError, KeyError,
               TypeError, AttributeError, IndexError)


class CorruptFile(Exception):
    """A file whose contents are not what its format says (carries the reason)."""


def decode_idx(raw: bytes, magic: int) -> np.ndarray:
    """The uint8 array of an (uncompressed) IDX file with the given magic number; CorruptFile otherwise."""
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = raw[:4].hex() if len(raw) >= 4 else f"{len(raw)} bytes"
        raise CorruptFile(f"magic number {found}, expected {magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptFile(f"header of {len(raw)} bytes, expected {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise CorruptFile(f"{len(raw) - header} data bytes for shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def decode_idx_set(paths: list[pathlib.Path]) -> dict[str, np.ndarray]:
    """Train images, train labels, test images, test labels (gzipped IDX files) as NHWC uint8 and int32."""
    arrays = {}
    for path, split in zip(paths, SPLITS):
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
            array = decode_idx(raw, IDX_IMAGES if split.startswith("x") else IDX_LABELS)
        except (CorruptFile, *READ_ERRORS) as error:
            raise _corrupt(path, error) from None
        arrays[split] = array[..., None] if split.startswith("x") else array.astype(np.int32)
    return arrays


def decode_cifar10(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The five training batches and the test batch of `cifar-10-python.tar.gz`, as NHWC uint8 and int32."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            batches = {name: _cifar_batch(tar, name) for name in (*CIFAR_TRAIN, CIFAR_TEST)}
    except (CorruptFile, *READ_ERRORS) as error:
        raise _corrupt(path, error) from None
    train = [batches[name] for name in CIFAR_TRAIN]
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
            "x_test": batches[CIFAR_TEST][0], "y_test": batches[CIFAR_TEST][1]}


def _cifar_batch(tar: tarfile.TarFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    member = tar.extractfile(f"{CIFAR_FOLDER}/{name}")
    if member is None:
        raise CorruptFile(f"{CIFAR_FOLDER}/{name} is not a file")
    # The batches were pickled by Python 2: keys are bytes, hence encoding="bytes". The file's md5 was checked
    # against the published one before it is unpickled.
    batch = pickle.load(io.BytesIO(member.read()), encoding="bytes")
    data = np.asarray(batch.get(b"data", batch.get("data")))
    labels = np.asarray(batch.get(b"labels", batch.get("labels")), np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != data.shape[:1]:
        raise CorruptFile(f"{name} holds data {data.dtype}{list(data.shape)} and {labels.size} labels, expected "
                          f"uint8 rows of 3072 and one label per row")
    # Each row is channel-major (1024 red, 1024 green, 1024 blue values, each row by row): to NHWC.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels.astype(np.int32)


def _corrupt(path: pathlib.Path, error: BaseException) -> DataError:
    """Sets the corrupt file aside (so the next attempt downloads it afresh) and says so in one line."""
    reason = str(error).replace("\n", " ") or type(error).__name__
    moved = set_aside(path, md5_of(path)) if path.exists() else path
    return DataError(f"{str(path)!r} is truncated or corrupt ({type(error).__name__}: {reason}); moved to "
                     f"{moved.name}, run again to download it afresh")


def check_arrays(image_set: ImageSet, arrays: dict[str, np.ndarray], source: str) -> None:
    """DataError unless the arrays have the data set's sizes, image shape and classes."""
    expected = {"x_train": (image_set.n_train, *image_set.image_shape), "y_train": (image_set.n_train,),
                "x_test": (image_set.n_test, *image_set.image_shape), "y_test": (image_set.n_test,)}
    for split, shape in expected.items():
        array = arrays[split]
        if array.shape != shape:
            raise DataError(f"{source}: {split} has shape {list(array.shape)}, expected {list(shape)}")
        if split.startswith("y") and array.size and not 0 <= array.min() <= array.max() < image_set.n_classes:
            raise DataError(f"{source}: {split} holds labels outside [0, {image_set.n_classes})")


@functools.lru_cache(maxsize=2)
def load_image_set(image_set: ImageSet, root: pathlib.Path) -> dict[str, np.ndarray]:
    """The decoded arrays of `image_set` (read-only), from the cache under `root`, downloaded on a miss.

    Kept in memory for the process (keyed by the table entry and the cache folder), so the check before a run
    folder is created and the run itself read the files once.
    """
    folder = dataset_folder(image_set, root)
    decoded = decoded_folder(image_set, root)
    arrays = _read_decoded(decoded)
    if arrays is None:
        paths = [fetch(image_set, file, folder) for file in image_set.files]
        arrays = decode_idx_set(paths) if image_set.fmt == "idx" else decode_cifar10(paths[0])
        check_arrays(image_set, arrays, f"{image_set.name} files in {str(folder)!r}")
        write_decoded(decoded, arrays)
    for array in arrays.values():
        array.flags.writeable = False  # Shared by every caller of this cache.
    return arrays


def decoded_folder(image_set: ImageSet, root: pathlib.Path) -> pathlib.Path:
    """Where the decoded arrays of `image_set` live in the cache under `root` (named after the originals' md5s,
    whichever faithful copy they were decoded from: `ddjax.data.importer` writes there too)."""
    key = hashlib.md5("".join(f.md5 for f in image_set.files).encode()).hexdigest()[:12] + f"-v{DECODED_VERSION}"
    return root / image_set.name / f"decoded-{key}"


def _read_decoded(folder: pathlib.Path) -> dict[str, np.ndarray] | None:
    try:
        return {split: np.load(folder / f"{split}.npy", allow_pickle=False) for split in SPLITS}
    except (OSError, ValueError):  # Missing (first load) or unreadable: decode the originals again.
        return None


def write_decoded(folder: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Each .npy is written to a temporary name and renamed, so a reader sees it whole or not at all."""
    tmp = None
    try:
        folder.mkdir(exist_ok=True)
        for split in SPLITS:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{split}.", suffix=".part", delete=False) as tmp:
                np.save(tmp, arrays[split], allow_pickle=False)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, folder / f"{split}.npy")
    except OSError as error:
        if tmp is not None:
            pathlib.Path(tmp.name).unlink(missing_ok=True)
        raise DataError(f"cannot write the decoded arrays to {str(folder)!r} ({error.strerror or error})") from None
