"""Image data sets from their original files: decoding, the cache, downloads from a local server, and every failure
as one line with nothing lost. No test touches the internet: tiny files in the real formats are written here and
served from 127.0.0.1."""

import dataclasses
import gzip
import hashlib
import os

import numpy as np
import pytest
from image_files import (UNREACHABLE, clean_image_cache, cifar_tarball, idx_bytes, install_tiny_image_set,
                         original_files, serve, tiny_arrays, tiny_image_set, write_files)

from ddjax.config import Config, ConfigError, replace
from ddjax.data import Dataset, load_dataset
from ddjax.data.download import DataError, md5_of
from ddjax.data.image_data import IDX_IMAGES, CorruptFile, decode_cifar10, decode_idx, load_image_set
from ddjax.data.image_sets import IMAGE_SETS
from ddjax.run import main

__all__ = ["clean_image_cache"]  # A fixture, used by name.
pytestmark = pytest.mark.usefixtures("clean_image_cache")
NAMES = ("mnist", "fashion_mnist", "cifar10")


def _tiny(name, n_train=20, n_test=10, seed=0):
    arrays = tiny_arrays(IMAGE_SETS[name], n_train, n_test, seed)
    return arrays, original_files(IMAGE_SETS[name], arrays)


def _assert_equal(loaded, arrays):
    for split, expected in arrays.items():
        assert loaded[split].dtype == expected.dtype and np.array_equal(loaded[split], expected), split


def _one_line(error):
    assert "\n" not in str(error) and "Traceback" not in str(error)
    return str(error)


def _visible(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("name", NAMES)
def test_download_decodes_what_was_written_then_a_cache_hit_needs_no_server(name, tmp_path):
    arrays, files = _tiny(name)
    write_files(tmp_path / "served", files)
    root = tmp_path / "cache"
    with serve(tmp_path / "served") as url:
        image_set = tiny_image_set(name, files, 20, 10, urls=(url,))
        loaded = load_image_set(image_set, root)
    _assert_equal(loaded, arrays)
    shape = (20, 28, 28, 1) if name != "cifar10" else (20, 32, 32, 3)
    assert loaded["x_train"].shape == shape and loaded["y_test"].dtype == np.int32
    folder = root / name
    for f in image_set.files:  # Verified originals in place, no temporary file left behind.
        assert md5_of(folder / f.name) == f.md5
    assert not [p for p in folder.rglob("*") if p.name.endswith(".part")]
    # The server is gone: the second load reads the decoded .npy cache.
    load_image_set.cache_clear()
    _assert_equal(load_image_set(image_set, root), arrays)
    # Without the decoded cache, the verified originals are decoded again, still without a server.
    for decoded in folder.glob("decoded-*"):
        for p in decoded.iterdir():
            p.unlink()
    load_image_set.cache_clear()
    _assert_equal(load_image_set(image_set, root), arrays)


def test_mirror_variable_is_tried_before_the_canonical_address(tmp_path, monkeypatch):
    arrays, files = _tiny("mnist")
    write_files(tmp_path / "served", files)
    with serve(tmp_path / "served") as url:
        monkeypatch.setenv("DDJAX_MIRROR_MNIST", f"{UNREACHABLE}, {url}")
        loaded = load_image_set(tiny_image_set("mnist", files, 20, 10, urls=(UNREACHABLE,)), tmp_path / "cache")
    _assert_equal(loaded, arrays)


def test_load_dataset_gives_uint8_nhwc_from_the_cache_folder(tmp_path, monkeypatch):
    arrays = install_tiny_image_set(monkeypatch, tmp_path, "cifar10", 50, 10)
    dataset = load_dataset(replace(Config(), dataset="cifar10", n_train=(30,), batch_size=10))
    assert isinstance(dataset, Dataset) and dataset.n_classes == 10
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape == (50, 32, 32, 3)
    assert np.array_equal(dataset.x_test, arrays["x_test"]) and dataset.y_train.dtype == np.int32


def test_cifar_rows_are_channel_major_and_become_nhwc(tmp_path):
    x = np.arange(5 * 32 * 32 * 3, dtype=np.int64).reshape(5, 32, 32, 3).astype(np.uint8)
    y = np.arange(5, dtype=np.int32)
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(cifar_tarball(x, y, x[:2], y[:2]))
    decoded = decode_cifar10(path)
    assert np.array_equal(decoded["x_train"], x) and np.array_equal(decoded["y_test"], y[:2])
    # The same pixel read the way the CIFAR page describes a row: red plane, green plane, blue plane.
    import pickle
    import tarfile

    with tarfile.open(path) as tar:
        row = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="bytes")[b"data"][0]
    assert decoded["x_train"][0, 3, 7, 2] == row[2 * 1024 + 3 * 32 + 7]


def test_idx_magic_and_size_are_checked():
    images = np.zeros((2, 3, 4), np.uint8)
    assert decode_idx(idx_bytes(images), IDX_IMAGES).shape == (2, 3, 4)
    with pytest.raises(CorruptFile, match="magic number 00000801, expected 00000803"):
        decode_idx(idx_bytes(np.zeros(2, np.uint8)), IDX_IMAGES)
    with pytest.raises(CorruptFile, match="23 data bytes for shape"):
        decode_idx(idx_bytes(images)[:-1], IDX_IMAGES)


def test_checksum_mismatch_sets_the_file_aside_and_never_uses_it(tmp_path):
    _, files = _tiny("mnist")
    write_files(tmp_path / "served", files)
    with serve(tmp_path / "served") as url:
        good = tiny_image_set("mnist", files, 20, 10, urls=(url,))
        wrong = dataclasses.replace(good.files[2], md5="0" * 32)
        image_set = dataclasses.replace(good, files=(*good.files[:2], wrong, good.files[3]))
        with pytest.raises(DataError) as caught:
            load_image_set(image_set, tmp_path / "cache")
    message = _one_line(caught.value)
    actual = md5_of(tmp_path / "served" / wrong.name)
    assert f"{url}{wrong.name} served md5 {actual}, not {'0' * 32}" in message
    assert "by hand" in message and str(tmp_path / "cache" / "mnist" / wrong.name) in message
    folder = tmp_path / "cache" / "mnist"
    assert (folder / f"{wrong.name}.bad-{actual}").exists() and not (folder / wrong.name).exists()
    assert not list(folder.glob("decoded-*"))


def test_a_bad_copy_put_by_hand_is_set_aside_and_downloaded_again(tmp_path):
    arrays, files = _tiny("fashion_mnist")
    write_files(tmp_path / "served", files)
    folder = tmp_path / "cache" / "fashion_mnist"
    name = IMAGE_SETS["fashion_mnist"].files[0].name
    write_files(folder, {name: b"not the file"})
    with serve(tmp_path / "served") as url:
        loaded = load_image_set(tiny_image_set("fashion_mnist", files, 20, 10, urls=(url,)), tmp_path / "cache")
    _assert_equal(loaded, arrays)
    assert [p.name for p in folder.glob(f"{name}.bad-*")] == [f"{name}.bad-{hashlib.md5(b'not the file').hexdigest()}"]
    assert (folder / f"{name}.bad-{hashlib.md5(b'not the file').hexdigest()}").read_bytes() == b"not the file"


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_truncated_archive_is_one_line_and_set_aside(name, tmp_path):
    _, files = _tiny(name)
    first = IMAGE_SETS[name].files[0].name
    files[first] = files[first][: len(files[first]) // 2]  # Served with a matching md5: only decoding can tell.
    write_files(tmp_path / "served", files)
    with serve(tmp_path / "served") as url:
        with pytest.raises(DataError) as caught:
            load_image_set(tiny_image_set(name, files, 20, 10, urls=(url,)), tmp_path / "cache")
    message = _one_line(caught.value)
    assert first in message and "truncated or corrupt" in message
    folder = tmp_path / "cache" / name
    assert not (folder / first).exists() and len(list(folder.glob(f"{first}.bad-*"))) == 1
    assert not list(folder.glob("decoded-*/*.npy"))


def test_corrupt_gzip_is_one_line(tmp_path):
    _, files = _tiny("mnist")
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(b"\x00\x00\x08\x03" + bytes(20))  # Images' magic.
    folder = tmp_path / "cache" / "mnist"
    write_files(folder, files)
    with pytest.raises(DataError, match="magic number 00000803, expected 00000801"):
        load_image_set(tiny_image_set("mnist", files, 20, 10), tmp_path / "cache")


def test_unreachable_server_names_the_file_the_address_and_where_to_put_it(tmp_path):
    _, files = _tiny("cifar10")
    image_set = tiny_image_set("cifar10", files, 20, 10, urls=(UNREACHABLE,))
    with pytest.raises(DataError) as caught:
        load_image_set(image_set, tmp_path / "cache")
    message = _one_line(caught.value)
    target = tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz"
    assert f"{UNREACHABLE}cifar-10-python.tar.gz" in message and str(target) in message
    assert image_set.files[0].md5 in message and "DDJAX_MIRROR_CIFAR10" in message
    assert _visible(target.parent) == []  # No partial download left.


def test_unwritable_cache_folder_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("x")  # A folder below a regular file cannot be created, even as root.
    _, files = _tiny("mnist")
    with pytest.raises(DataError) as caught:
        load_image_set(tiny_image_set("mnist", files, 20, 10), tmp_path / "a_file" / "cache")
    assert "is not writable" in _one_line(caught.value) and "DDJAX_DATA" in str(caught.value)


def test_config_knows_the_image_sets_and_their_training_set_sizes():
    for name, n in (("mnist", 60000), ("fashion_mnist", 60000), ("cifar10", 50000)):
        assert replace(Config(), dataset=name, n_train=(n,)).n_train == (n,)
        with pytest.raises(ConfigError, match=rf"n_train=\({n + 1},\).*\[1, {n}\] \(the {name} training set\)"):
            replace(Config(), dataset=name, n_train=(n + 1,))


def test_cli_exits_2_with_one_line_and_writes_nothing_when_the_data_cannot_be_had(tmp_path, monkeypatch, capsys):
    install_tiny_image_set(monkeypatch, tmp_path, "mnist", 300, 50)
    for f in (tmp_path / "data-cache" / "mnist").iterdir():
        f.unlink()  # Nothing cached and no reachable address.
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main(["mlp_mnist:smoke", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot get mnist file train-images-idx3-ubyte.gz")
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert not [p for p in (tmp_path / "data-cache").rglob("*") if p.is_file()]


def test_default_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    from ddjax.data.download import cache_root

    monkeypatch.setenv("DDJAX_DATA", str(tmp_path / "here"))
    assert cache_root() == tmp_path / "here"
    monkeypatch.delenv("DDJAX_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "ddjax"
    assert os.fspath(cache_root()).endswith("ddjax")


def test_cli_process_with_an_unwritable_cache_exits_2_before_any_run_folder(tmp_path):
    import pathlib
    import subprocess
    import sys

    (tmp_path / "a_file").write_text("x")
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "DDJAX_DATA": str(tmp_path / "a_file" / "cache")}
    done = subprocess.run([sys.executable, "-m", "ddjax.run", "mlp_mnist:smoke", "--set", "dataset=cifar10",
                           "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "data cache folder" in done.stderr and "is not writable" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # No runs/ folder.


def test_a_mirror_without_the_file_falls_through_to_the_next_address(tmp_path, monkeypatch):
    arrays, files = _tiny("mnist")
    write_files(tmp_path / "served", files)
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as empty, serve(tmp_path / "served") as url:
        monkeypatch.setenv("DDJAX_MIRROR_MNIST", empty)
        _assert_equal(load_image_set(tiny_image_set("mnist", files, 20, 10, urls=(url,)), tmp_path / "cache"), arrays)
        load_image_set.cache_clear()
        with pytest.raises(DataError, match=r"HTTP 404 .*by hand"):
            load_image_set(tiny_image_set("mnist", files, 20, 10, urls=()), tmp_path / "other")
