"""Data sets by name, label noise and subsampling: what a member trains and is tested on."""

from ddjax.data.datasets import Dataset, corrupt_labels, make_gaussian, make_mnist1d, member_labels
from ddjax.data.registry import DATASETS, DatasetInfo, dataset_info, load_dataset

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "corrupt_labels", "dataset_info", "load_dataset", "make_gaussian",
           "make_mnist1d", "member_labels"]
