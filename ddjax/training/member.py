"""The grouped and serial layouts' member functions: init, step, evaluation and record of ONE member, which
`ddjax.training.trainer.build_program` vmaps over a group of members padded to one width (or runs alone)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ddjax.models.family import ModelState, Params, Variables
from ddjax.training.inputs import model_inputs, training_batch
from ddjax.training.metrics import example_losses, train_weights
from ddjax.training.rules import (add_weight_decay, apply_rates, base_optimizer, diverged_steps, freeze,
                                  scheduled_rates)
from ddjax.training.spec import (Members, MemberState, SharedData, TrainSpec, compute_cast, curve_names,
                                 stored_dtype)

def _logits(spec: TrainSpec, params: Params, model_state: ModelState, width, x: jax.Array, *, train: bool,
            example_mask: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
    """Logits [B, C] of one member on a batch of model inputs, and its new model state, in the precision of
    `spec` (`compute_cast`)."""
    if spec.precision in ("float32", "float64"):  # Nothing inserted: float32 programs are exactly what they were.
        return spec.model.apply(params, model_state, width, x, train, example_mask)
    params, x = compute_cast(spec.precision, (params, x))
    logits, model_state = spec.model.apply(params, model_state, width, x, train, example_mask)
    return logits.astype(jnp.float32), model_state


def _eval_logits(spec: TrainSpec, params, model_state, width, stored: jax.Array) -> jax.Array:
    """Evaluation logits of one member on stored inputs: all rows as one batch, or (`spec.eval_batch` > 0, the
    convolutional families) chunks of that many rows (`lax.map`), so no activation of the whole split is held."""
    if not spec.eval_batch:
        return _logits(spec, params, model_state, width, model_inputs(spec, stored), train=False)[0]
    n = stored.shape[0]
    size = min(spec.eval_batch, n)
    n_chunks = -(-n // size)
    padded = jnp.concatenate([stored, jnp.zeros((n_chunks * size - n, *stored.shape[1:]), stored.dtype)])

    def chunk_logits(rows):
        return _logits(spec, params, model_state, width, model_inputs(spec, rows), train=False)[0]

    logits = jax.lax.map(chunk_logits, padded.reshape(n_chunks, size, *stored.shape[1:]))
    return logits.reshape(n_chunks * size, -1)[:n]


def member_init(spec: TrainSpec, initial: Variables, member: Members) -> MemberState:
    """Initial training state of one member from its (padded) initial variables as the family's `init` gave them:
    parameters and model state."""
    params, model_state = initial["params"], initial["model_state"]
    opt_state = base_optimizer(spec.optimizer, spec.momentum).init(params)
    curves = {name: jnp.full(len(spec.eval_steps), jnp.nan, stored_dtype(spec.precision))
              for name in curve_names(spec)}
    return MemberState(params, opt_state, jnp.int32(-1), curves, model_state)


def member_step(spec: TrainSpec, state: MemberState, member: Members, data: SharedData, step) -> MemberState:
    """One optimizer step of one member; a member whose update goes non-finite stops updating."""
    x, index, weights = training_batch(spec, data, member.seed, member.n_train, step)
    y = member.labels if index is None else member.labels[index]

    def batch_loss(params):
        # Rows of weight 0 (an epoch's partial last batch) are left out of BatchNorm's statistics too.
        logits, model_state = _logits(spec, params, state.model_state, member.width, x, train=True,
                                      example_mask=weights > 0)
        return jnp.sum(weights * example_losses(logits, y, spec.loss)), model_state

    (loss, model_state), grads = jax.value_and_grad(batch_loss, has_aux=True)(state.params)
    if spec.weight_decay:
        grads = add_weight_decay(grads, state.params, member.weight_decay)
    direction, opt_state = base_optimizer(spec.optimizer, spec.momentum).update(grads, state.opt_state, state.params)
    params = apply_rates(state.params, direction, scheduled_rates(spec, member.learning_rate, step))
    finite = jnp.isfinite(loss)
    for leaf in jax.tree.leaves((params, model_state)):
        finite &= jnp.all(jnp.isfinite(leaf))
    alive = state.diverged_step < 0
    keep = finite & alive
    params, opt_state, model_state = freeze(keep, (params, opt_state, model_state),
                                            (state.params, state.opt_state, state.model_state))
    diverged_step = diverged_steps(alive, keep, step, state.diverged_step)
    return MemberState(params, opt_state, diverged_step, state.curves, model_state)


def member_eval(spec: TrainSpec, params: Params, member: Members, data: SharedData,
                model_state: ModelState = {}) -> dict[str, jax.Array]:
    """Error and mean loss of one member on its own training labels and on the clean test set (a stateful family
    in evaluation mode: BatchNorm reads its running statistics), and on its validation rows if it holds some."""
    train_logits = _eval_logits(spec, params, model_state, member.width, data.x_train)
    in_train = train_weights(data.x_train.shape[0], member.n_train)
    test_logits = _eval_logits(spec, params, model_state, member.width, data.x_test)
    wrong = train_logits.argmax(-1) != member.labels
    losses = example_losses(train_logits, member.labels, spec.loss)
    values = {
        "train_error": jnp.sum(in_train * wrong),
        "train_loss": jnp.sum(in_train * losses),
        "test_error": jnp.mean(test_logits.argmax(-1) != data.y_test),
        "test_loss": jnp.mean(example_losses(test_logits, data.y_test, spec.loss)),
    }
    if spec.validation:  # The held-out rows, with the member's own (noisy) labels, as carved from its training set.
        rows = jnp.arange(data.x_train.shape[0])
        held_out = ((rows >= member.n_train) & (rows < member.n_train + member.n_val)) / member.n_val
        values.update(val_error=jnp.sum(held_out * wrong), val_loss=jnp.sum(held_out * losses))
    return values


def member_record(spec: TrainSpec, state: MemberState, member: Members, data: SharedData, index) -> MemberState:
    """Writes the member's current evaluation into column `index` of its curves (NaN once diverged)."""
    values = member_eval(spec, state.params, member, data, state.model_state)
    diverged = state.diverged_step >= 0
    curves = {k: state.curves[k].at[index].set(jnp.where(diverged, jnp.nan, values[k])) for k in curve_names(spec)}
    return state._replace(curves=curves)
