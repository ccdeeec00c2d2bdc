"""Tests for the registries: one table of model families and one of data sets, read by everything else."""

import numpy as np
import pytest

from ddjax.config import Config, ConfigError, replace
from ddjax.data.datasets import make_gaussian
from ddjax.data.registry import DATASETS, DatasetInfo, dataset_info, load_dataset
from ddjax.models.registry import MODELS, ModelInfo, forward_macs, get_model, model_info, packed_form
from ddjax.sweep import run_sweep


def test_every_trainable_family_builds_and_applies_to_one_example():
    x = np.ones(5, np.float32)
    for name, info in MODELS.items():
        if info.build is None or info.convolutional:  # Convolutional families: tests/test_conv.py.
            continue
        family = get_model(name, depth=2)
        params = family.init(0, 3, 4, 5, 2)
        assert family.apply(params, 3, x).shape == (2,), name
        assert (family.features is not None) == info.closed_form, name  # min_norm needs the features


def test_linear_has_no_trainable_family_and_says_why():
    with pytest.raises(ValueError, match="'linear' has no trainable family.*min_norm.*trainable: mlp"):
        get_model("linear")
    with pytest.raises(ValueError, match="unknown model 'cnn'; allowed: mlp, random_relu_features"):
        model_info("cnn")


def test_packing_rule_one_hidden_layer_families_only():
    assert packed_form("mlp").first_layer == "hidden" and not packed_form("mlp").fixed_features
    assert packed_form("random_fourier_features").fixed_features
    assert packed_form("mlp", depth=2) is None
    assert packed_form("linear") is None


def test_forward_macs_counts_every_layer():
    # 5 inputs, width 3, 2 classes: 15 + 6 for one hidden layer; a second hidden layer adds 3 * 3.
    assert forward_macs("mlp", 3, 5, 2) == 21
    assert forward_macs("mlp", 3, 5, 2, depth=2) == 30
    assert forward_macs("random_relu_features", 3, 5, 2, depth=2) == 21


def test_gaussian_regression_is_not_loaded_as_gaussian():
    config = replace(Config(), dataset="gaussian_regression", model="linear", method="min_norm", loss="squared",
                     width=(4,), n_train=(8,), batch_size=0)
    with pytest.raises(ValueError, match="'gaussian_regression' is drawn per member"):
        load_dataset(config)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        dataset_info("cifar")


def test_config_validation_reads_the_tables(monkeypatch):
    with pytest.raises(ConfigError, match="dataset='tiny' is not allowed: one of mnist1d, gaussian"):
        replace(Config(), dataset="tiny")
    monkeypatch.setitem(DATASETS, "tiny", DatasetInfo(lambda c: make_gaussian(c.n_samples, c.train_fraction, 3, 2,
                                                                              0.0, 1),
                                                      lambda c: int(c.n_samples // 2 * c.train_fraction)))
    config = replace(Config(), dataset="tiny", n_samples=80, train_fraction=0.5, n_train=(20,), batch_size=0)
    with pytest.raises(ConfigError, match=r"n_train=\(21,\).*\[1, 20\]"):  # 80 // 2 * 0.5 = 20 available.
        replace(config, n_train=(21,))
    assert load_dataset(config).x_train.shape == (40, 3)


def test_sweep_takes_the_packing_rule_from_the_table(monkeypatch, tiny_config):
    # A copy of the MLP without a packed form trains grouped, to the same curves as the MLP made to train grouped.
    monkeypatch.setitem(MODELS, "mlp_unpacked", MODELS["mlp"]._replace(packed=None, block_packed=False))
    config = replace(tiny_config, width=(2, 5), seed=(0,), steps=10)
    unpacked = run_sweep(replace(config, model="mlp_unpacked"))
    grouped = run_sweep(config, scheme="grouped")
    assert unpacked.scheme == "grouped" and run_sweep(config).scheme == "packed"
    for name in grouped.curves:
        np.testing.assert_array_equal(unpacked.curves[name], grouped.curves[name])


def test_model_rows_name_only_known_datasets():
    for name, info in MODELS.items():
        assert isinstance(info, ModelInfo)
        assert info.datasets is None or set(info.datasets) <= set(DATASETS), name
    for name, info in DATASETS.items():
        assert info.models is None or set(info.models) <= set(MODELS), name
