"""Losses and metrics of logits over any class axis, so one definition serves a member and a stream of members."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

def example_losses(logits: jax.Array, labels: jax.Array, loss: str, axis: int = -1) -> jax.Array:
    """Per-example loss over the class `axis`: softmax cross-entropy, half the squared distance to one-hot
    labels ("squared"), or to float targets ("mse": `labels` [..., outputs, rows], `regression_targets`)."""
    axis = axis % logits.ndim
    if loss == "mse":
        return 0.5 * jnp.sum((logits - regression_targets(labels, axis)) ** 2, axis=axis)
    classes = jnp.arange(logits.shape[axis]).reshape([-1] + [1] * (logits.ndim - 1 - axis))
    one_hot = jnp.expand_dims(jnp.broadcast_to(labels, logits.shape[:axis] + logits.shape[axis + 1:]), axis) == classes
    if loss == "cross_entropy":
        return softmax_cross_entropy(logits, one_hot, axis)
    return 0.5 * jnp.sum((logits - one_hot) ** 2, axis=axis)


def regression_targets(labels: jax.Array, axis: int) -> jax.Array:
    """Float targets stored [..., outputs, rows] (rows last, as integer labels are), their outputs moved to the
    logits' output `axis`."""
    return jnp.moveaxis(labels, -2, axis)


def example_errors(logits: jax.Array, labels: jax.Array, loss: str, axis: int = -1) -> jax.Array:
    """Per-example error: the argmax is not the label; for float targets ("mse") the squared error averaged over
    the outputs (so the test error is the test risk)."""
    axis = axis % logits.ndim
    if loss == "mse":
        return jnp.mean((logits - regression_targets(labels, axis)) ** 2, axis=axis)
    return jnp.argmax(logits, axis=axis) != labels


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def softmax_cross_entropy(logits: jax.Array, one_hot: jax.Array, axis: int) -> jax.Array:
    """Cross-entropy of softmax(logits) against a boolean one-hot target, reduced over `axis`.

    Its gradient is written out (softmax minus target), which keeps the compiled step a few kernels smaller
    than differentiating logsumexp.
    """
    return _cross_entropy_forward(logits, one_hot, axis)[0]


def _cross_entropy_forward(logits, one_hot, axis):
    shifted = logits - jnp.max(logits, axis=axis, keepdims=True)
    exp = jnp.exp(shifted)
    total = jnp.sum(exp, axis=axis, keepdims=True)
    loss = jnp.log(jnp.squeeze(total, axis)) - jnp.sum(jnp.where(one_hot, shifted, 0.0), axis=axis)
    return loss, (exp / total, one_hot)


def _cross_entropy_backward(axis, residuals, grad):
    probabilities, one_hot = residuals
    return jnp.expand_dims(grad, axis) * (probabilities - one_hot), None


softmax_cross_entropy.defvjp(_cross_entropy_forward, _cross_entropy_backward)


def train_weights(n_rows: int, n_train: jax.Array) -> jax.Array:
    """Weight 1 / n_train on the first n_train of `n_rows` training rows and 0 after: a mean over the subsample."""
    return (jnp.arange(n_rows) < n_train) / n_train
