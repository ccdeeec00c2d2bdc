"""Data: offline MNIST-1D without global side effects, label noise, subsampling."""

import random

import numpy as np
import pytest

from ddjax.config import Config, replace
from ddjax.data.datasets import corrupt_labels, make_gaussian, make_mnist1d, member_labels
from ddjax.data.registry import load_dataset


def test_mnist1d_is_generated_offline_without_touching_global_rng():
    np.random.seed(123)
    random.seed(7)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(7)
    data = make_mnist1d(400, 0.75, 5)
    assert (np.random.rand(), random.random()) == (expected_np, expected_py)
    assert data.x_train.shape == (300, 40) and data.x_test.shape == (100, 40)
    assert data.x_train.dtype == np.float32 and set(np.unique(data.y_train)) <= set(range(10))


def test_mnist1d_depends_on_its_seed_only():
    a, b, c = make_mnist1d(200, 0.5, 1), make_mnist1d(200, 0.5, 1), make_mnist1d(200, 0.5, 2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_gaussian_teacher_data():
    data = make_gaussian(500, 0.8, 6, 4, 0.0, seed=0)
    assert data.x_train.shape == (400, 6) and data.x_test.shape == (100, 6) and data.n_classes == 4
    assert len(np.unique(data.y_train)) == 4


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.15, 0.5, 0.99])
def test_label_noise_flips_exact_fraction_to_incorrect_classes(fraction):
    labels = np.random.default_rng(0).integers(0, 10, size=1000).astype(np.int32)
    noisy = corrupt_labels(labels, fraction, 10, seed=3)
    flipped = noisy != labels
    assert flipped.sum() == round(fraction * 1000)  # Never flipped to the true class, so every change counts.
    assert noisy.min() >= 0 and noisy.max() < 10
    np.testing.assert_array_equal(noisy, corrupt_labels(labels, fraction, 10, seed=3))
    assert labels.sum() == np.random.default_rng(0).integers(0, 10, size=1000).sum()  # Input untouched.
    if 0 < fraction < 0.99:
        assert not np.array_equal(noisy, corrupt_labels(labels, fraction, 10, seed=4))


def test_label_noise_replacement_class_is_uniform_over_wrong_classes():
    labels = np.zeros(20000, np.int32)
    noisy = corrupt_labels(labels, 0.9, 5, seed=0)
    counts = np.bincount(noisy[noisy != 0], minlength=5)[1:]
    assert counts.min() > 0.9 * counts.mean()


def test_member_labels_corrupt_only_the_subsample():
    data = make_gaussian(1000, 0.8, 5, 3, 0.0, seed=1)
    labels = member_labels(data, n_train=300, label_noise=0.2, seed=0, data_seed=0)
    assert (labels[:300] != data.y_train[:300]).sum() == 60
    np.testing.assert_array_equal(labels[300:], data.y_train[300:])
    # Members differing only in width share labels; another seed draws another corruption.
    np.testing.assert_array_equal(labels, member_labels(data, 300, 0.2, 0, 0))
    assert not np.array_equal(labels, member_labels(data, 300, 0.2, 1, 0))


def test_load_dataset_by_name():
    config = replace(Config(), dataset="gaussian", n_samples=100, input_dim=3, n_classes=2, n_train=(50,),
                     batch_size=10)
    assert load_dataset(config).x_train.shape == (80, 3)
