"""The image data sets ddjax reads from their original distribution files: names, files, checksums, sizes.

This table is the one place that knows them: `ddjax.config` takes the names and training-set sizes from it,
`ddjax.data.image_data` the files, formats and shapes, `ddjax.data.download` the files' addresses and checksums. It
imports nothing from ddjax, so every other module may import it.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One original file: its name (in the cache folder and at every address) and its published md5."""

    name: str
    md5: str


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """An image classification data set distributed as files.

    `fmt` is "idx" (MNIST's four gzipped IDX files: train images, train labels, test images, test labels) or
    "cifar10" (one tarball of pickled batches). `urls` are the folders the files are downloaded from, tried in
    order after any mirrors (see `mirrors`); a file's address is the folder followed by the file's name.
    """

    name: str
    fmt: str
    files: tuple[SourceFile, ...]
    urls: tuple[str, ...]
    n_train: int
    n_test: int
    image_shape: tuple[int, int, int]  # (height, width, channels), the NHWC layout of the decoded arrays.
    n_classes: int = 10
    # sha256 of the decoded arrays (`ddjax.data.importer.content_sha256`), checked when a copy in another format
    # (Keras's .npz, the deeplearning.net pickle) is imported; "" where none is known.
    content_sha256: str = ""
    # Importable from the deeplearning.net pickle (mnist.pkl.gz: train, valid, test of float pixels k / 256).
    deeplearning_pickle: bool = False

    @property
    def mirror_variable(self) -> str:
        """The environment variable whose comma-separated folders are tried before `urls`."""
        return f"DDJAX_MIRROR_{self.name.upper()}"

    def mirrors(self) -> tuple[str, ...]:
        """The folders to try, in order: those in `mirror_variable`, then the canonical `urls`."""
        extra = [u.strip() for u in os.environ.get(self.mirror_variable, "").split(",") if u.strip()]
        return tuple(extra) + self.urls


def _idx_files(*md5s: str) -> tuple[SourceFile, ...]:
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
    return tuple(SourceFile(name, md5) for name, md5 in zip(names, md5s))


# The decoded arrays of MNIST, computed from the deeplearning.net mnist.pkl.gz (md5
# 98100ca27dc0e07ddd9f822cf9d244db; its train and valid splits in order are the 60000 training images, pixels
# k / 256). That the original IDX files decode to the same arrays is the standard account of that pickle; no IDX
# copy was at hand to compare, so imports of the originals are checked by their md5s alone.
MNIST_CONTENT_SHA256 = "bab833be44432887b8367c256dc3f6f37f73632c1eabcb1cbc894e04f779a312"

# md5s as published by the data sets' pages and used by the usual loaders (torchvision). No sha256 is listed:
# none could be confirmed on these offline machines.
IMAGE_SETS: dict[str, ImageSet] = {
    "mnist": ImageSet(
        "mnist", "idx",
        _idx_files("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                   "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        n_train=60000, n_test=10000, image_shape=(28, 28, 1), content_sha256=MNIST_CONTENT_SHA256,
        deeplearning_pickle=True),
    "fashion_mnist": ImageSet(
        "fashion_mnist", "idx",
        _idx_files("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                   "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        n_train=60000, n_test=10000, image_shape=(28, 28, 1)),
    "cifar10": ImageSet(
        "cifar10", "cifar10", (SourceFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        ("https://www.cs.toronto.edu/~kriz/",),
        n_train=50000, n_test=10000, image_shape=(32, 32, 3)),
}
