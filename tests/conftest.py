"""Shared fixtures: small configs that train in about a second on a CPU."""

import pytest

from ddjax.config import Config, replace


@pytest.fixture
def tiny_config() -> Config:
    """A Gaussian-data sweep small enough to compile and train in seconds."""
    return replace(Config(), dataset="gaussian", n_samples=400, input_dim=8, n_classes=3, teacher_noise=0.5,
                   width=(1, 3, 8, 20), seed=(0, 1), n_train=(200,), label_noise=(0.1,), steps=40,
                   batch_size=16, n_evals=4, n_chunks=3, learning_rate=(1e-2,))


# A CLI run that compiles in a few seconds: 4 members in 2 width groups, 16 chunks (a checkpoint after each).
TINY_RUN = ("mlp_mnist1d:smoke", "--set", "dataset=gaussian", "--set", "n_samples=200", "--set", "input_dim=4",
            "--set", "n_classes=3", "--set", "width=2,4", "--set", "seed=0,1", "--set", "n_train=100",
            "--set", "batch_size=8", "--set", "steps=30", "--set", "n_chunks=30", "--set", "n_evals=3")


def tiny_run_config() -> Config:
    """The config of TINY_RUN, for the Python API."""
    from ddjax.config import apply_overrides
    from ddjax.experiment import experiment_config

    return apply_overrides(experiment_config("mlp_mnist1d", "smoke"), list(TINY_RUN[2::2]))


@pytest.fixture
def x64():
    """JAX's 64-bit mode for the test: configs may take precision="float64" (see tests/reference.py)."""
    import jax

    with jax.enable_x64(True):
        yield
