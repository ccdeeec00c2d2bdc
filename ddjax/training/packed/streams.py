"""The packed fast path for one-hidden-layer families: all members' hidden units side by side in ONE wide layer.

Members that share a batch stream (the same seed and n_train, so the same minibatches) differ only in width,
label noise and learning rate. Their hidden units are laid out in slots of `slot_size` units (a member takes
ceil(width / slot_size) slots, the unused units of its last slot are masked padding), so the first layer of the
whole stream is one `[units, D + 1]` matmul (the inputs carry a constant 1 for the bias). A stream's parameters
are one `[units + K, D + 1 + C]` matrix: per unit its input weights, bias and read-out weights, then per member
a row holding its read-out bias, so the optimizer, the finiteness check and the keep-select are one kernel each.
Activations are kept feature-major (`[units, batch]`): slots are contiguous blocks, each slot's read-out is one
fused loop over batch vectors, and a sorted segment sum adds the slots of each member. Streams are stacked
with `jax.vmap`, so a whole sweep is one program with one set of shapes: it compiles once, executes almost only
useful arithmetic, and gives the same numbers as training each member alone (tested against serial mode).
Where the units sit (slots, parts, parameter rows) is planned on the host by `ddjax.training.packed.layout`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddjax.models.registry import PackedForm
from ddjax.training.packed.layout import Layout
from ddjax.training.schedules import learning_rate_factor
from ddjax.training.trainer import (CURVES, SharedData, add_weight_decay, compute_cast, example_losses, model_inputs,
                                    stored_dtype, train_weights, training_batch)


class Stream(NamedTuple):
    """What the members of one stream share or hold per member (stacked over streams by vmap)."""

    seed: jax.Array  # uint32: batch order.
    n_train: jax.Array  # int32
    labels: jax.Array  # int32 [K, N + N_test]: each member's (noisy) training labels, then the test labels.
    row_learning_rate: jax.Array  # float32 [rows]: each parameter row's member's learning rate.
    part: jax.Array  # int32: which part of the members (which of `PackedModel.layouts`) the stream holds.
    # float32 [rows]: each parameter row's member's weight decay; None without weight decay (`TrainSpec`).
    row_weight_decay: jax.Array | None = None


class PackedData(NamedTuple):
    """The packed path's device data: flat inputs with a constant 1 appended (the first layer's bias input), or
    stored images (uint8 [.., H, W, C]) that get their 1 after standardizing (`bias_input`)."""

    x_train: jax.Array  # [N, D + 1] or [N, H, W, C]
    x_eval: jax.Array  # [N + N_test, ...]: the training rows, then the test rows, evaluated as one batch.


def packed_data(data: SharedData) -> PackedData:
    """`data` with the bias input appended (flat data), and training and test inputs stacked for evaluation."""
    def with_ones(x):
        x = np.asarray(x)
        return x if x.ndim > 2 else np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)

    train = with_ones(data.x_train)
    return PackedData(jnp.asarray(train), jnp.asarray(np.concatenate([train, with_ones(data.x_test)])))


def bias_input(spec: Any, x: jax.Array) -> jax.Array:
    """Model inputs [B, D + 1] of the packed layer: flat data carry their 1 already; standardized images get it."""
    return x if spec.image is None else jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)


class PackedState(NamedTuple):
    """Training state of one stream: parameter rows, optimizer state, and per member diverged_step [K] and
    curves [K, len(CURVES), n_eval_steps]."""

    params: jax.Array
    opt_state: Any
    diverged_step: jax.Array
    curves: jax.Array


@jax.custom_vjp
def slot_readout(h: jax.Array, out_w: jax.Array) -> jax.Array:
    """Each slot's read-out, [n_slots, C, B], from activations [n_slots, s, B] and weights [n_slots, s, C].

    Written as sums of broadcast products over the few units (and, backwards, classes) of a slot, which XLA fuses
    into one loop over contiguous batch vectors; as a batched matmul of dozens of tiny blocks it ran ~2x slower on
    the 2-core CPU. As one multiply-reduce it ran 12-20x slower under XLA:CPU's YNNPACK fusions (jax 0.10.2); with
    those fusions off, it ran as fast on slots of 16 but 2x slower on slots of 64 (the epoch-wise experiment).
    """
    return sum(h[:, j, None, :] * out_w[:, j, :, None] for j in range(h.shape[1]))


def _slot_readout_forward(h, out_w):
    return slot_readout(h, out_w), (h, out_w)


def _slot_readout_backward(residuals, grad):
    h, out_w = residuals
    grad_h = sum(out_w[:, :, c, None] * grad[:, None, c, :] for c in range(out_w.shape[2]))
    return grad_h, jnp.einsum("nsb,ncb->nsc", h, grad)


slot_readout.defvjp(_slot_readout_forward, _slot_readout_backward)


class LayoutArrays(NamedTuple):
    """What a stream's computation reads from its layout."""

    unit_scale: Any  # [units]: 0 for padding units; random features also carry 1 / sqrt(width).
    slot_member: Any  # [n_slots]
    row_member: Any  # [rows]


class PackedModel(NamedTuple):
    """Static description of packed streams: model family, layouts and how members train.

    With one layout every stream holds all members. With several (`part_layouts`), the members are cut into
    parts of equal shapes and each stream holds one part (`Stream.part`), so that a sweep of few streams still
    spreads over several devices.
    """

    form: PackedForm  # How the family sits in the packed layer (`ddjax.models.registry`).
    layouts: tuple[Layout, ...]
    spec: Any  # ddjax.training.trainer.TrainSpec

    @property
    def layout(self) -> Layout:
        """The first part's layout: its shapes are every part's."""
        return self.layouts[0]

    @property
    def efficiency(self) -> float:
        """Real units / executed units, over all parts."""
        return float(sum(lay.unit_mask.sum() for lay in self.layouts) / sum(lay.n_units for lay in self.layouts))

    def layout_arrays(self, part: jax.Array) -> LayoutArrays:
        """The layout arrays of the stream holding `part`: constants with a single layout, else picked by `part`."""
        tables = [LayoutArrays(self._unit_scale(lay), lay.slot_member, lay.row_member) for lay in self.layouts]
        if len(tables) == 1:
            return tables[0]
        return jax.tree.map(lambda *parts: jnp.asarray(np.stack(parts))[part], *tables)

    def _unit_scale(self, layout: Layout) -> np.ndarray:
        if not self.form.fixed_features:
            return layout.unit_mask
        # Kept in float64 on the host: the program reads it in its own dtype (float32, or float64 for reference runs).
        widths = np.maximum(layout.widths, 1).astype(np.float64)  # Extra members (width 0) own no unit.
        return layout.unit_mask / np.sqrt(widths)[layout.unit_member]

    def logits(self, params: jax.Array, x: jax.Array, part: jax.Array) -> jax.Array:
        """Logits of every member of a stream for a batch x [B, D + 1] (bias input last): shape [K, C, B]."""
        layout, arrays, n_inputs = self.layout, self.layout_arrays(part), x.shape[1]
        precision = self.spec.precision
        params, x = compute_cast(precision, (params, x))  # A no-op in float32.
        units, out_b = params[:layout.n_units], params[layout.n_units:, n_inputs:]
        first = units[:, :n_inputs]
        if self.form.fixed_features:
            first = jax.lax.stop_gradient(first)  # Random features: the first layer is fixed.
        z = jnp.einsum("ud,bd->ub", first, x)
        h = self.form.activation(z)
        # Mask after the activation so padded units get exactly zero gradient.
        n_slots, s = len(layout.slot_member), layout.slot_size
        h = (h * jnp.asarray(arrays.unit_scale, h.dtype)[:, None]).reshape(n_slots, s, x.shape[0])
        out_w = units[:, n_inputs:].reshape(n_slots, s, -1)
        per_slot = slot_readout(h, out_w)
        if precision == "bfloat16":  # Slots are added, and the loss taken, in float32.
            per_slot, out_b = per_slot.astype(jnp.float32), out_b.astype(jnp.float32)
        per_member = jax.ops.segment_sum(per_slot, jnp.asarray(arrays.slot_member), len(layout.widths),
                                         indices_are_sorted=True)
        return per_member + out_b[:, :, None]


def _base_optimizer(name: str, momentum: float) -> optax.GradientTransformation:
    # Learning rates differ per member, so they are applied after the base transformation, as optax does.
    if name == "adam":
        return optax.scale_by_adam()
    if name == "momentum":
        return optax.trace(decay=momentum)
    return optax.identity()


def stream_init(packed: PackedModel, params: jax.Array, stream: Stream) -> PackedState:
    """Initial state of one stream."""
    spec = packed.spec
    k = len(packed.layout.widths)
    curves = jnp.full((k, len(CURVES), len(spec.eval_steps)), jnp.nan, stored_dtype(spec.precision))
    opt_state = _base_optimizer(spec.optimizer, spec.momentum).init(params)
    return PackedState(params, opt_state, jnp.full(k, -1, jnp.int32), curves)


def initial_states(packed: PackedModel, params: np.ndarray, streams: Stream) -> PackedState:
    """`stream_init` of every stream, built on the host: no program to compile.

    Every optimizer state used here (Adam's moments and count, momentum's trace) starts at zero, so the state is
    zeros in `stream_init`'s shapes (tested against it) with the parameters, divergence flags and NaN curves set.
    """
    shapes = jax.eval_shape(jax.vmap(functools.partial(stream_init, packed)), params, streams)
    state = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    return state._replace(params=np.asarray(params), diverged_step=np.full(shapes.diverged_step.shape, -1, np.int32),
                          curves=np.full(shapes.curves.shape, np.nan, shapes.curves.dtype))


def stream_direction(spec: Any, logits: Callable, state: PackedState, stream, data: PackedData, step,
                     weight_decay: Callable | None = None):
    """The members' losses [K] on this step's batch, the optimizer's direction (to be scaled by each member's
    learning rate) and the new optimizer state, for a stream whose `logits(params, x, part)` are [K, C, B].

    `weight_decay(grads, params)`, given where `spec.weight_decay`, adds each member's L2 gradient
    (`ddjax.training.trainer.add_weight_decay`) before the optimizer."""
    x, index, weights = training_batch(spec, data, stream.seed, stream.n_train, step)
    x = bias_input(spec, x)
    y = stream.labels[:, :data.x_train.shape[0]] if index is None else stream.labels[:, index]

    def member_losses(params):
        return jnp.sum(weights * example_losses(logits(params, x, stream.part), y, spec.loss, axis=1), axis=1)

    losses, vjp = jax.vjp(member_losses, state.params)
    (grads,) = vjp(jnp.ones_like(losses))
    if spec.weight_decay:
        grads = weight_decay(grads, state.params)
    direction, opt_state = _base_optimizer(spec.optimizer, spec.momentum).update(grads, state.opt_state, state.params)
    return losses, direction, opt_state


def scheduled_rates(spec: Any, rates: jax.Array, step) -> jax.Array:
    """Learning rates at `step` under the spec's schedule (`ddjax.training.schedules`)."""
    factor = learning_rate_factor(spec.lr_schedule, spec.lr_schedule_steps, step)
    return rates if factor is None else rates * factor


def stream_step(packed: PackedModel, state: PackedState, stream: Stream, data: PackedData, step) -> PackedState:
    """One optimizer step of every member of a stream; members whose update goes non-finite stop updating."""
    spec, k = packed.spec, len(packed.layout.widths)
    losses, direction, opt_state = stream_direction(
        spec, packed.logits, state, stream, data, step,
        lambda grads, params: add_weight_decay(grads, params, stream.row_weight_decay[:, None]))
    params = state.params - scheduled_rates(spec, stream.row_learning_rate, step)[:, None] * direction
    non_finite_rows = jnp.sum(jnp.where(jnp.isfinite(params), 0.0, 1.0), axis=1)
    row_member = jnp.asarray(packed.layout_arrays(stream.part).row_member)
    non_finite = jax.ops.segment_sum(non_finite_rows, row_member, k)
    alive = state.diverged_step < 0
    keep = alive & jnp.isfinite(losses) & (non_finite == 0)
    # A stopped member keeps its last finite parameters and never updates again, so its optimizer moments
    # (which may hold the non-finite step) are never read: only the parameters need the select.
    params = jnp.where(keep[row_member][:, None], params, state.params)
    diverged_step = jnp.where(alive & ~keep, step, state.diverged_step).astype(jnp.int32)
    return PackedState(params, opt_state, diverged_step, state.curves)


def stream_record(packed: PackedModel, state: PackedState, stream: Stream, data: PackedData, index) -> PackedState:
    """Writes every member's evaluation into column `index` of its curves (NaN once diverged).

    Training and test examples go through the model as one batch.
    """
    spec, n_train_rows = packed.spec, data.x_train.shape[0]
    x = bias_input(spec, model_inputs(spec, data.x_eval))
    logits = packed.logits(state.params, x, stream.part)  # [K, C, N + N_test]
    per_example = jnp.stack([logits.argmax(1) != stream.labels,
                             example_losses(logits, stream.labels, spec.loss, axis=1)])
    in_train = train_weights(n_train_rows, stream.n_train)
    train = jnp.sum(per_example[:, :, :n_train_rows] * in_train, axis=2)  # [metric (error, loss), K]
    test = jnp.mean(per_example[:, :, n_train_rows:], axis=2)
    values = jnp.stack([train[0], test[0], train[1], test[1]], axis=1)  # [K, CURVES]
    diverged = state.diverged_step >= 0
    curves = state.curves.at[:, :, index].set(jnp.where(diverged[:, None], jnp.nan, values))
    return state._replace(curves=curves)
