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
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddjax.models import Params
from ddjax.train import CURVES, SharedData, example_losses, train_weights, training_batch

PACKABLE_MODELS = ("mlp", "random_relu_features", "random_fourier_features")


class Layout(NamedTuple):
    """Where each member of a stream lives in the packed layer (host arrays, identical for every stream)."""

    widths: np.ndarray  # [K] true widths of the stream's members.
    slot_size: int
    slot_member: np.ndarray  # [n_slots] member of each slot (sorted).
    unit_member: np.ndarray  # [units] member of each unit.
    unit_mask: np.ndarray  # [units] 1.0 for real units, 0.0 for padding.

    @property
    def n_units(self) -> int:
        return len(self.unit_member)

    @property
    def efficiency(self) -> float:
        """Real units / executed units."""
        return float(self.unit_mask.sum() / self.n_units)

    @property
    def row_member(self) -> np.ndarray:
        """Member of each parameter row: the unit rows, then one read-out bias row per member."""
        return np.concatenate([self.unit_member, np.arange(len(self.widths))])


def make_layout(widths: np.ndarray, slot_size: int) -> Layout:
    """Slots of `slot_size` units: member k takes ceil(widths[k] / slot_size) consecutive slots."""
    n_slots = np.array([math.ceil(w / slot_size) for w in widths])
    slot_member = np.repeat(np.arange(len(widths)), n_slots)
    unit_member = np.repeat(slot_member, slot_size)
    position = np.concatenate([np.arange(n * slot_size) for n in n_slots])
    unit_mask = (position < np.asarray(widths)[unit_member]).astype(np.float32)
    return Layout(np.asarray(widths), slot_size, slot_member, unit_member, unit_mask)


def balanced_parts(widths: np.ndarray, slot_size: int, n_parts: int) -> list[np.ndarray]:
    """Member indices of `n_parts` parts holding nearly equal numbers of slots, each in ascending order.

    Largest members first, each to the part with the fewest slots so far (longest-processing-time scheduling).
    """
    n_slots = [math.ceil(w / slot_size) for w in widths]
    parts, loads = [[] for _ in range(n_parts)], [0] * n_parts
    for k in sorted(range(len(widths)), key=lambda k: -n_slots[k]):
        emptiest = loads.index(min(loads))
        parts[emptiest].append(k)
        loads[emptiest] += n_slots[k]
    return [np.array(sorted(part), dtype=np.int64) for part in parts]


def part_layouts(widths: np.ndarray, slot_size: int, parts: list[np.ndarray]) -> tuple[Layout, ...]:
    """One layout per part of the members, padded to equal shapes so that the parts stack as streams.

    Every part gets the largest part's slot and member counts: extra slots are masked and belong to the part's
    last member; extra members have width 0, no slot, and (see `ddjax.sweep.packed_setup`) a zero learning rate.
    """
    layouts = [make_layout(np.asarray(widths)[part], slot_size) for part in parts]
    n_slots, n_members = max(len(lay.slot_member) for lay in layouts), max(len(part) for part in parts)

    def padded(layout):
        extra = n_slots - len(layout.slot_member)
        slot_member = np.concatenate([layout.slot_member, np.full(extra, layout.slot_member[-1])])
        return Layout(np.pad(layout.widths, (0, n_members - len(layout.widths))), slot_size, slot_member,
                      np.repeat(slot_member, slot_size), np.pad(layout.unit_mask, (0, extra * slot_size)))

    return tuple(padded(layout) for layout in layouts)


SLOT_OVERHEAD_UNITS = 16  # Measured on the 2-core CPU: a slot's read-out costs about as much as 16 units' do.
MIN_EFFICIENCY = 0.8


def choose_slot_size(widths: np.ndarray, input_dim: int, n_classes: int) -> int:
    """The slot size with the least estimated cost among those that keep padding efficiency >= 0.8.

    Cost: executed units in both layers plus a per-slot read-out overhead. Small slots waste fewer units but
    sum more slots; on the benchmark grid (15 widths 1..256, 2000 steps) the 2-core CPU's run phase took 2.0 s
    with slots of 8 and 1.8 s with slots of 16, which is what `SLOT_OVERHEAD_UNITS` encodes.
    """
    layouts = {size: make_layout(widths, size) for size in (4, 8, 16, 32, 64)}

    def cost(size):
        layout = layouts[size]
        return layout.n_units * (input_dim + n_classes) + SLOT_OVERHEAD_UNITS * len(layout.slot_member) * n_classes

    efficient = [size for size, layout in layouts.items() if layout.efficiency >= MIN_EFFICIENCY]
    return min(efficient or [4], key=cost)


class Stream(NamedTuple):
    """What the members of one stream share or hold per member (stacked over streams by vmap)."""

    seed: jax.Array  # uint32: batch order.
    n_train: jax.Array  # int32
    labels: jax.Array  # int32 [K, N + N_test]: each member's (noisy) training labels, then the test labels.
    row_learning_rate: jax.Array  # float32 [rows]: each parameter row's member's learning rate.
    part: jax.Array  # int32: which part of the members (which of `PackedModel.layouts`) the stream holds.


class PackedData(NamedTuple):
    """The packed path's device data: inputs with a constant 1 appended (the first layer's bias input)."""

    x_train: jax.Array  # [N, D + 1]
    x_eval: jax.Array  # [N + N_test, D + 1]: the training rows, then the test rows, evaluated as one batch.


def packed_data(data: SharedData) -> PackedData:
    """`data` with the bias input appended, and training and test inputs stacked for evaluation."""
    def with_ones(x):
        return np.concatenate([np.asarray(x), np.ones((len(x), 1), np.float32)], axis=1)

    train = with_ones(data.x_train)
    return PackedData(jnp.asarray(train), jnp.asarray(np.concatenate([train, with_ones(data.x_test)])))


class PackedState(NamedTuple):
    """Training state of one stream: parameter rows, optimizer state, and per member diverged_step [K] and
    curves [K, len(CURVES), n_eval_steps]."""

    params: jax.Array
    opt_state: Any
    diverged_step: jax.Array
    curves: jax.Array


def pack_params(member_params: list[Params], layout: Layout, feature_key: str) -> np.ndarray:
    """Packs unpadded one-hidden-layer member parameters (`feature_key` layer, then "out") into one stream.

    Returns [units + K, D + 1 + C] rows: a unit's input weights, bias and read-out weights, then per member a
    row holding its read-out bias in the read-out columns (zeros elsewhere, never used). The layout's extra slots
    and members (`part_layouts`), if any, get rows of zeros.
    """
    s = layout.slot_size
    rows = []
    for params, width in zip(member_params, layout.widths):
        layer = params[feature_key][0] if feature_key == "hidden" else params[feature_key]
        member_rows = np.concatenate([np.asarray(layer["w"])[:, :width].T, np.asarray(layer["b"])[:width, None],
                                      np.asarray(params["out"]["w"])[:width]], axis=1)
        rows.append(np.pad(member_rows, ((0, math.ceil(width / s) * s - width), (0, 0))))
    units = np.concatenate(rows)
    out_b = np.stack([np.asarray(p["out"]["b"]) for p in member_params])
    out_rows = np.zeros((len(layout.widths), units.shape[1]))
    out_rows[:len(out_b), -out_b.shape[1]:] = out_b
    return np.concatenate([units, np.zeros((layout.n_units - len(units), units.shape[1])), out_rows]).astype(np.float32)


def unpack_member(params: jax.Array, layout: Layout, k: int, n_classes: int) -> dict[str, np.ndarray]:
    """Member k's first-layer and read-out weights at its true width, from one stream's packed parameters."""
    params = np.asarray(params)
    units = params[:layout.n_units][(layout.unit_member == k) & (layout.unit_mask > 0)]
    input_dim = params.shape[1] - 1 - n_classes
    return {"first_w": units[:, :input_dim].T, "first_b": units[:, input_dim], "out_w": units[:, input_dim + 1:],
            "out_b": params[layout.n_units + k, input_dim + 1:]}


@jax.custom_vjp
def slot_readout(h: jax.Array, out_w: jax.Array) -> jax.Array:
    """Each slot's read-out, [n_slots, C, B], from activations [n_slots, s, B] and weights [n_slots, s, C].

    Written as sums of broadcast products over the few units (and, backwards, classes) of a slot, which XLA fuses
    into one loop over contiguous batch vectors; as a batched matmul of dozens of tiny blocks it ran ~2x slower on
    the 2-core CPU.
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

    model: str
    layouts: tuple[Layout, ...]
    spec: Any  # ddjax.train.TrainSpec

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
        if self.model == "mlp":
            return layout.unit_mask
        widths = np.maximum(layout.widths, 1).astype(np.float32)  # Extra members (width 0) own no unit.
        return (layout.unit_mask / np.sqrt(widths)[layout.unit_member]).astype(np.float32)

    def logits(self, params: jax.Array, x: jax.Array, part: jax.Array) -> jax.Array:
        """Logits of every member of a stream for a batch x [B, D + 1] (bias input last): shape [K, C, B]."""
        layout, arrays, n_inputs = self.layout, self.layout_arrays(part), x.shape[1]
        units, out_b = params[:layout.n_units], params[layout.n_units:, n_inputs:]
        first = units[:, :n_inputs]
        if self.model != "mlp":
            first = jax.lax.stop_gradient(first)  # Random features: the first layer is fixed.
        z = jnp.einsum("ud,bd->ub", first, x)
        h = jnp.sqrt(2.0) * jnp.cos(z) if self.model == "random_fourier_features" else jax.nn.relu(z)
        # Mask after the activation so padded units get exactly zero gradient.
        n_slots, s = len(layout.slot_member), layout.slot_size
        h = (h * jnp.asarray(arrays.unit_scale)[:, None]).reshape(n_slots, s, x.shape[0])
        out_w = units[:, n_inputs:].reshape(n_slots, s, -1)
        per_slot = slot_readout(h, out_w)
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
    curves = jnp.full((k, len(CURVES), len(spec.eval_steps)), jnp.nan, jnp.float32)
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
                          curves=np.full(shapes.curves.shape, np.nan, np.float32))


def stream_step(packed: PackedModel, state: PackedState, stream: Stream, data: PackedData, step) -> PackedState:
    """One optimizer step of every member of a stream; members whose update goes non-finite stop updating."""
    spec, k = packed.spec, len(packed.layout.widths)
    x, index, weights = training_batch(spec, data, stream.seed, stream.n_train, step)
    y = stream.labels[:, :data.x_train.shape[0]] if index is None else stream.labels[:, index]

    def member_losses(params):
        logits = packed.logits(params, x, stream.part)  # [K, C, B]
        return jnp.sum(weights * example_losses(logits, y, spec.loss, axis=1), axis=1)  # [K]

    losses, vjp = jax.vjp(member_losses, state.params)
    (grads,) = vjp(jnp.ones_like(losses))
    direction, opt_state = _base_optimizer(spec.optimizer, spec.momentum).update(grads, state.opt_state, state.params)
    params = state.params - stream.row_learning_rate[:, None] * direction
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
    logits = packed.logits(state.params, data.x_eval, stream.part)  # [K, C, N + N_test]
    per_example = jnp.stack([logits.argmax(1) != stream.labels,
                             example_losses(logits, stream.labels, spec.loss, axis=1)])
    in_train = train_weights(n_train_rows, stream.n_train)
    train = jnp.sum(per_example[:, :, :n_train_rows] * in_train, axis=2)  # [metric (error, loss), K]
    test = jnp.mean(per_example[:, :, n_train_rows:], axis=2)
    values = jnp.stack([train[0], test[0], train[1], test[1]], axis=1)  # [K, CURVES]
    diverged = state.diverged_step >= 0
    curves = state.curves.at[:, :, index].set(jnp.where(diverged[:, None], jnp.nan, values))
    return state._replace(curves=curves)
