"""Data sets by name, label noise and subsampling: what a member trains and is tested on."""

from ddjax.data.datasets import (Dataset, corrupt_labels, load_dataset, make_gaussian, make_mnist1d,
                                 member_labels)

__all__ = ["Dataset", "corrupt_labels", "load_dataset", "make_gaussian", "make_mnist1d", "member_labels"]
