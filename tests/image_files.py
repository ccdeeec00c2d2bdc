"""Tiny image data sets written in the real distribution formats (gzipped IDX, CIFAR-10's pickle tarball), a local
HTTP server for them, and a fixture that puts them in a temporary cache under the real data sets' names."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import pathlib
import pickle
import tarfile
import threading

import numpy as np
import pytest

from ddjax.data.image_data import CIFAR_FOLDER, CIFAR_TEST, CIFAR_TRAIN, load_image_set
from ddjax.data.image_sets import IMAGE_SETS, ImageSet

# An address nothing listens on, so a test never reaches the internet even if a download falls through.
UNREACHABLE = "http://127.0.0.1:9/"


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file of a uint8 array: magic 0x0000 08 NDIM, big-endian dims, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def cifar_tarball(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> bytes:
    """`cifar-10-python.tar.gz` of NHWC arrays: 5 training batches and a test batch, pickled with bytes keys and
    rows of 3072 channel-major values, as the real archive holds them."""
    def batch(x, y):
        rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
        return pickle.dumps({b"batch_label": b"tiny", b"labels": [int(v) for v in y], b"data": rows,
                             b"filenames": [b"x.png"] * len(x)}, protocol=2)

    parts = [batch(x, y) for x, y in zip(np.array_split(x_train, 5), np.array_split(y_train, 5))]
    members = {**dict(zip(CIFAR_TRAIN, parts)), CIFAR_TEST: batch(x_test, y_test), "batches.meta": b"meta"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{CIFAR_FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tiny_arrays(image_set: ImageSet, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Images whose class shows as a bright square at a class-dependent place on noise, so they can be learnt."""
    rng = np.random.default_rng(seed)
    h, w, c = image_set.image_shape
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, image_set.n_classes, n).astype(np.int32)
        x = rng.integers(0, 90, (n, h, w, c)).astype(np.uint8)
        for i, label in enumerate(y):
            top, left = 2 + 4 * (label // 5), 2 + 4 * (label % 5)
            x[i, top:top + 6, left:left + 6] = 230
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays


def original_files(image_set: ImageSet, arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The data set's original files (name -> bytes) holding `arrays`."""
    if image_set.fmt == "cifar10":
        return {image_set.files[0].name: cifar_tarball(arrays["x_train"], arrays["y_train"], arrays["x_test"],
                                                       arrays["y_test"])}
    images = (arrays["x_train"][..., 0], arrays["y_train"], arrays["x_test"][..., 0], arrays["y_test"])
    return {f.name: gzip.compress(idx_bytes(a.astype(np.uint8)), mtime=0) for f, a in zip(image_set.files, images)}


def tiny_image_set(name: str, files: dict[str, bytes], n_train: int, n_test: int,
                   urls: tuple[str, ...] = (UNREACHABLE,)) -> ImageSet:
    """The table entry of data set `name` for tiny files: their md5s and sizes, downloaded from `urls`."""
    real = IMAGE_SETS[name]
    sources = tuple(dataclasses.replace(f, md5=hashlib.md5(files[f.name]).hexdigest()) for f in real.files)
    return dataclasses.replace(real, files=sources, urls=urls, n_train=n_train, n_test=n_test)


def write_files(folder: pathlib.Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: pathlib.Path):
    """Serves `folder` over HTTP on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def clean_image_cache():
    """Empties the in-process cache of decoded data sets before and after the test."""
    load_image_set.cache_clear()
    yield
    load_image_set.cache_clear()


def install_tiny_image_set(monkeypatch, tmp_path: pathlib.Path, name: str, n_train: int, n_test: int,
                           seed: int = 0) -> dict[str, np.ndarray]:
    """Puts tiny files of data set `name` in a temporary cache ($DDJAX_DATA) and makes the table expect them (their
    md5s and sizes; no reachable address), so `dataset=name` reads them. Returns the arrays written."""
    arrays = tiny_arrays(IMAGE_SETS[name], n_train, n_test, seed)
    files = original_files(IMAGE_SETS[name], arrays)
    root = tmp_path / "data-cache"
    write_files(root / name, files)
    monkeypatch.setenv("DDJAX_DATA", str(root))
    monkeypatch.delenv(IMAGE_SETS[name].mirror_variable, raising=False)
    monkeypatch.setitem(IMAGE_SETS, name, tiny_image_set(name, files, n_train, n_test))
    load_image_set.cache_clear()
    return arrays
