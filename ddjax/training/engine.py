"""The one training engine: a member's step, evaluation and record, written once over a view of how members are
laid out.

A *view* (`MemberView`) says how the members of one bundle sit in one set of parameters. A bundle is the members
that share a batch stream: one member for the vmapped layouts (`ddjax.training.member`: grouped, mapped, serial,
each vmap lane one member), or the K members of a packed stream (`ddjax.training.streams`: packed, block-packed).
The engine reads members only through the view: their logits, `per_entry` (member values [K] broadcast onto every
entry of a parameter-shaped tree) and `member_sums` (a tree's entries summed per member). Per-member values are
scalars for a one-member bundle and [K] arrays for a stream, so every rule below is written once.

The update chain of every layout (`update`): the loss gradient, plus L2 weight decay lambda * params, goes
through the optimizer's direction; each entry moves by its multiplier (the member's learning rate under the
schedule, times its layer_rate on the entries of `layer_group`, times 0 on the padded entries of a member held in a
wider module) times the direction; a member whose
loss, parameters or model state go non-finite keeps its last finite state (`freeze`) and never updates again, and
records NaN from then on.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from ddjax.models.family import ModelState
from ddjax.optimizers import base_optimizer
from ddjax.training.inputs import training_batch
from ddjax.training.metrics import example_errors, example_losses, train_weights
from ddjax.training.schedules import learning_rate_factor
from ddjax.training.spec import Members, TrainSpec, curve_names, stored_dtype


class State(NamedTuple):
    """Training state of one bundle (stacked over bundles by vmap): parameters, optimizer state, per member the
    step it diverged at (-1 while finite) and its curves (name -> [..., n_eval_steps]), and model state (BatchNorm
    statistics; {} for stateless families)."""

    params: Any
    opt_state: Any
    diverged_step: jax.Array
    curves: dict[str, jax.Array]
    model_state: ModelState = {}


class MemberView(Protocol):
    """How the members of a bundle sit in its parameters (see the module docstring)."""

    spec: TrainSpec
    class_axis: int  # The class axis of the logits.

    def logits(self, params: Any, model_state: ModelState, x: jax.Array, train: bool,
               example_mask: jax.Array | None) -> tuple[jax.Array, ModelState]:
        """Logits of every member of the bundle on training inputs x, and the new model state."""

    def per_example(self, params: Any, model_state: ModelState, labels: jax.Array,
                    data: Any) -> tuple[jax.Array, jax.Array]:
        """`per_example` metrics of every member (evaluation mode) on the stored training rows, against `labels`,
        and on the test rows, against the clean test labels: ([2, ..., N], [2, ..., N_test])."""

    def per_entry(self, values: jax.Array, tree: Any) -> Any:
        """Member values (a scalar, or [K]) broadcast onto each leaf of `tree` (shaped like the parameters)."""

    def member_sums(self, tree: Any) -> jax.Array:
        """The entries of a parameter-shaped tree summed per member (a scalar, or [K])."""

    def group_mask(self, params: Any) -> Any:
        """Whether each entry belongs to the spec's `layer_group` (a tree like `params`, each leaf broadcasting)."""

    def entry_mask(self, params: Any) -> Any:
        """1.0 on the member's true entries and 0.0 on its padding (a tree like `params`), or None where padded
        entries get zero gradient by construction."""


def init(view: MemberView, params: Any, model_state: ModelState, members: Members) -> State:
    """The initial state of a bundle from its initial parameters and model state."""
    spec = view.spec
    opt_state = optimizer(view, members, params).init(params)
    shape = jnp.shape(members.learning_rate)  # () for one member, (K,) for a stream.
    curves = {name: jnp.full((*shape, len(spec.eval_steps)), jnp.nan, stored_dtype(spec.precision))
              for name in curve_names(spec)}
    return State(params, opt_state, jnp.full(shape, -1, jnp.int32), curves, model_state)


def optimizer(view: MemberView, members: Members, params: Any):
    """The optimizer's direction (`ddjax.optimizers.base_optimizer`), with each member's own momentum."""
    momentum = None if members.momentum is None else view.per_entry(members.momentum, params)
    return base_optimizer(view.spec.optimizer, momentum)


def step(view: MemberView, state: State, members: Members, data: Any, step_index) -> State:
    """One optimizer step of every member of a bundle on its minibatch of update `step_index`."""
    spec = view.spec
    x, index, weights = training_batch(spec, data, members.seed, members.n_train, step_index)
    labels = members.labels if index is None else members.labels[..., index]

    def member_losses(params):
        # Rows of weight 0 (an epoch's partial last batch) are left out of BatchNorm's statistics too.
        logits, model_state = view.logits(params, state.model_state, x, True, weights > 0)
        losses = example_losses(logits, labels, spec.loss, axis=view.class_axis)
        return jnp.sum(weights * losses, axis=-1), model_state

    losses, vjp, model_state = jax.vjp(member_losses, state.params, has_aux=True)
    (grads,) = vjp(jnp.ones_like(losses))
    return update(view, state, grads, losses, model_state, members, step_index)


def update(view: MemberView, state: State, grads: Any, losses: jax.Array, model_state: ModelState,
           members: Members, step_index) -> State:
    """The update chain of every layout: weight decay, the optimizer's direction, each entry's multiplier, and the
    divergence freeze (module docstring)."""
    params = state.params
    if members.weight_decay is not None:
        # The gradient of loss + (lambda / 2) |params|^2 (L2 in the loss, not decoupled decay): the ridge objective
        # of the closed form, whatever the optimizer.
        decay = view.per_entry(members.weight_decay, params)
        grads = jax.tree.map(lambda g, p, d: g + jnp.asarray(d, g.dtype) * p, grads, params, decay)
    direction, opt_state = optimizer(view, members, params).update(grads, state.opt_state, params)
    multiplier = view.per_entry(scheduled_rates(view.spec, members.learning_rate, step_index), params)
    if members.layer_rate is not None:  # The entries of `spec.layer_group` move at the member's layer_rate times it.
        group, layer_rates = view.group_mask(params), view.per_entry(members.layer_rate, params)
        multiplier = jax.tree.map(lambda m, g, r: m * jnp.where(g, r, 1), multiplier, group, layer_rates)
    mask = view.entry_mask(params)
    if mask is not None:  # A member held in a wider module: its padded entries never move.
        multiplier = jax.tree.map(lambda m, k: m * k, multiplier, mask)
    new_params = jax.tree.map(lambda p, m, d: p - m * d, params, multiplier, direction)
    finite = jnp.isfinite(losses) & (non_finite_count(view, new_params) == 0)
    if model_state:
        finite &= non_finite_count(view, model_state) == 0
    alive = state.diverged_step < 0
    keep = alive & finite
    new_params, opt_state, model_state = freeze(view, keep, (new_params, opt_state, model_state),
                                                (params, state.opt_state, state.model_state), params)
    diverged_step = jnp.where(alive & ~keep, step_index, state.diverged_step).astype(jnp.int32)
    return State(new_params, opt_state, diverged_step, state.curves, model_state)


def scheduled_rates(spec: TrainSpec, rates: jax.Array, step_index) -> jax.Array:
    """Learning rates at `step_index` under the spec's schedule (`ddjax.training.schedules`); "constant" leaves
    them untouched."""
    factor = learning_rate_factor(spec.lr_schedule, spec.lr_schedule_steps, step_index)
    return rates if factor is None else rates * factor


def non_finite_count(view: MemberView, tree: Any) -> jax.Array:
    """Per member, how many entries of a parameter-shaped tree (or of model state) are NaN or infinite."""
    return view.member_sums(jax.tree.map(lambda a: jnp.where(jnp.isfinite(a), 0, 1), tree))


def freeze(view: MemberView, keep: jax.Array, new: Any, old: Any, params: Any) -> Any:
    """`new` where a member is kept, else `old`: every parameter-shaped part of the state (the parameters, the
    optimizer's copies of them, model state), member by member; anything else (a step count the members of a
    stream share) takes its new value."""
    structure, shapes = jax.tree.structure(params), [jnp.shape(leaf) for leaf in jax.tree.leaves(params)]

    def parameter_shaped(tree):
        return (jax.tree.structure(tree) == structure
                and [jnp.shape(leaf) for leaf in jax.tree.leaves(tree)] == shapes)

    def select(n, o):
        if parameter_shaped(n):
            return jax.tree.map(jnp.where, view.per_entry(keep, n), n, o)
        return n

    new_params, opt_state, model_state = new
    old_params, old_opt_state, old_model_state = old
    kept_model_state = jax.tree.map(lambda n, o: jnp.where(view.per_entry(keep, n), n, o), model_state,
                                    old_model_state) if model_state else model_state
    return (select(new_params, old_params),
            jax.tree.map(select, opt_state, old_opt_state, is_leaf=parameter_shaped),
            kept_model_state)


def evaluate(view: MemberView, params: Any, model_state: ModelState, members: Members, data: Any) -> dict:
    """Error and mean loss of every member of a bundle on its own training labels and on the clean test set (in
    evaluation mode), and on its held-out validation rows if it has some: name -> a scalar or [K]."""
    train, test = view.per_example(params, model_state, members.labels, data)
    n_rows = data.x_train.shape[0]
    train_error, train_loss = jnp.sum(train * train_weights(n_rows, members.n_train), axis=-1)
    test_error, test_loss = jnp.mean(test, axis=-1)
    values = {"train_error": train_error, "train_loss": train_loss, "test_error": test_error, "test_loss": test_loss}
    if view.spec.validation:  # The held-out rows, with the member's own (noisy) labels, as carved from its training set.
        rows = jnp.arange(n_rows)
        held_out = ((rows >= members.n_train) & (rows < members.n_train + members.n_val)) / members.n_val
        values["val_error"], values["val_loss"] = jnp.sum(train * held_out, axis=-1)
    return values


def per_example(spec: TrainSpec, logits: jax.Array, labels: jax.Array, class_axis: int) -> jax.Array:
    """[(error, loss), ..., rows] of logits against labels: the one definition of the metrics every view
    evaluates (`ddjax.training.metrics`: the error and the spec's loss of each example)."""
    return jnp.stack([example_errors(logits, labels, spec.loss, axis=class_axis),
                      example_losses(logits, labels, spec.loss, axis=class_axis)])


def record(view: MemberView, state: State, members: Members, data: Any, index) -> State:
    """Writes every member's current evaluation into column `index` of its curves (NaN once diverged)."""
    values = evaluate(view, state.params, state.model_state, members, data)
    diverged = state.diverged_step >= 0
    curves = {k: state.curves[k].at[..., index].set(jnp.where(diverged, jnp.nan, values[k]))
              for k in curve_names(view.spec)}
    return state._replace(curves=curves)
