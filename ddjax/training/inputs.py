"""The inputs a model reads: stored examples standardized (images) for evaluation, and each step's training batch."""

from __future__ import annotations

import jax

from ddjax.data.augment import standardize, training_inputs
from ddjax.data.sampling import sample_batch
from ddjax.training.metrics import train_weights
from ddjax.training.spec import SharedData, TrainSpec, stored_dtype

def model_inputs(spec: TrainSpec, x: jax.Array) -> jax.Array:
    """Stored inputs as a flat model reads them, without augmentation (evaluation): images standardized and
    flattened; flat data as it is."""
    return x if spec.image is None else standardize(x, spec.image, stored_dtype(spec.precision))


def training_batch(spec: TrainSpec, data: SharedData, seed: jax.Array, n_train: jax.Array, step):
    """Model inputs, row index (None: every row) and per-row loss weights of update `step` for a batch stream.

    Images are augmented (if `spec.image.augment`) by batch position, standardized and flattened here.
    """
    if spec.batch_size:
        index, weights = sample_batch(spec.sampling, seed, step, spec.batch_size, n_train)
        x = data.x_train[index]
    else:
        x, index, weights = data.x_train, None, train_weights(data.x_train.shape[0], n_train)
    if spec.image is not None:
        x = training_inputs(spec.image, x, seed, step, stored_dtype(spec.precision))
    return x, index, weights
