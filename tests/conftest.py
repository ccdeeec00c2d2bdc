"""Shared fixtures: small configs that train in about a second on a CPU."""

import pytest

from ddjax.config import Config, replace


@pytest.fixture
def tiny_config() -> Config:
    """A Gaussian-data sweep small enough to compile and train in seconds."""
    return replace(Config(), dataset="gaussian", n_samples=400, input_dim=8, n_classes=3, teacher_noise=0.5,
                   width=(1, 3, 8, 20), seed=(0, 1), n_train=(200,), label_noise=(0.1,), steps=40,
                   batch_size=16, n_evals=4, n_chunks=3, learning_rate=(1e-2,))
