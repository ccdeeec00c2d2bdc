"""Tests for the registries: one table of model families and one of data sets, read by everything else."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import Config, ConfigError, replace
from ddjax.data.datasets import make_gaussian
from ddjax.data.registry import DATASETS, DatasetInfo, dataset_info, load_dataset
from ddjax.models.family import Family
from ddjax.models.registry import MODELS, ModelInfo, forward_macs, get_model, model_info, packed_form
from ddjax.sweep import run_sweep


# One example's shape per family: flat inputs, or the smallest the convolutional ones take (cnn5 pools 32 x 32 to 1).
EXAMPLE_SHAPES = {"cnn1d": (40,), "cnn5": (32, 32, 3), "resnet18": (8, 8, 3)}
BATCHNORM_FAMILIES = ("cnn5", "resnet18")  # The families that carry a model state.


@pytest.mark.parametrize("name", [name for name, info in MODELS.items() if info.build is not None])
def test_every_trainable_family_has_the_one_interface(name):
    info, shape = model_info(name), EXAMPLE_SHAPES.get(name, (5,))
    input_dim, n_classes, width, max_width, batch = int(np.prod(shape)), 3, 2, 4, 6
    family = get_model(name, depth=2, input_shape=shape, n_classes=n_classes)
    assert isinstance(family, Family)
    variables = family.init(0, width, max_width, input_dim, n_classes)
    assert set(variables) == {"params", "model_state"}
    assert jax.tree.leaves(variables["params"])
    assert all(isinstance(leaf, np.ndarray) and leaf.dtype == np.float32 for leaf in jax.tree.leaves(variables))
    assert bool(jax.tree.leaves(variables["model_state"])) == (name in BATCHNORM_FAMILIES)
    if name not in BATCHNORM_FAMILIES:
        assert variables["model_state"] == {}
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batch, input_dim)), jnp.float32)
    params, model_state = variables["params"], variables["model_state"]
    for train in (True, False):
        logits, new_state = family.apply(params, model_state, width, x, train, jnp.arange(batch) < 4)
        assert logits.shape == (batch, n_classes) and logits.dtype == jnp.float32
        assert np.all(np.isfinite(logits))
        assert jax.tree.structure(new_state) == jax.tree.structure(model_state)
        assert jax.tree.map(np.shape, new_state) == jax.tree.map(np.shape, model_state)
        if not train:  # Evaluation leaves the state as it was.
            jax.tree.map(np.testing.assert_array_equal, new_state, model_state)
    # The closed-form solver needs the features, and only read-out families have them.
    assert (family.features is not None) == info.closed_form
    if family.features is not None:
        features = family.features(params, width, x)
        assert features.shape == (batch, max_width) and np.all(np.asarray(features)[:, width:] == 0)
        out = jax.tree.map(lambda a: np.random.default_rng(1).standard_normal(a.shape), params["out"])
        np.testing.assert_allclose(family.apply({**params, "out": out}, model_state, width, x, False)[0],
                                   features @ out["w"] + out["b"], rtol=1e-5, atol=1e-6)


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
