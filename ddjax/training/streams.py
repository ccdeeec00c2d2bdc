"""One stream engine for the packed layouts: members that share a batch stream train side by side in one model.

Members that share a batch stream (the same seed and n_train, so the same minibatches) differ only in width,
label noise, learning rate and weight decay. A stream model holds all of them in one set of parameters and
computes every member's logits at once: `ddjax.training.packed.model` puts one-hidden-layer members' units side
by side in one wide layer, `ddjax.training.blockpacked.model` puts deeper MLPs in width buckets of
block-diagonal layers. This module is what the two share: the stream's state, its initial value, one training
step (losses, the optimizer, each member's rate and weight decay, the divergence freeze) and one evaluation, and
the host-side setup that packs a sweep into streams. Streams are stacked with `jax.vmap`, so a whole sweep is one
program with one set of shapes.

A stream model (`StreamModel`) says where members sit; everything here reads it only through `logits`,
`map_members` (a function of each member's value over every parameter leaf), `member_sums` and `pack`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import Config
from ddjax.data.datasets import Dataset, member_labels
from ddjax.training.inputs import model_inputs, training_batch
from ddjax.training.metrics import example_losses, train_weights
from ddjax.training.rules import add_weight_decay, base_optimizer, diverged_steps, scheduled_rates
from ddjax.training.spec import CURVES, SharedData, TrainSpec, stored_dtype
from ddjax.training.trainer import build_program

# The axes that tell apart the members of one batch stream (seed, n_train): each distinct point is one slot key.
SLOT_AXES = ("width", "label_noise", "learning_rate", "weight_decay")


class Stream(NamedTuple):
    """What the members of one stream share or hold per member (stacked over streams by vmap)."""

    seed: jax.Array  # uint32: batch order.
    n_train: jax.Array  # int32
    labels: jax.Array  # int32 [K, N + N_test]: each member's (noisy) training labels, then the test labels.
    learning_rate: jax.Array  # float32 [K]: 0 for extra members, which never update.
    part: jax.Array  # int32: which part of the members (which of the model's layouts) the stream holds.
    weight_decay: jax.Array | None = None  # float32 [K]; None without weight decay (`TrainSpec.weight_decay`).


class PackedData(NamedTuple):
    """The stream layouts' device data: flat inputs with a constant 1 appended (the first layer's bias input), or
    stored images (uint8 [.., H, W, C]) that get their 1 after standardizing (`bias_input`)."""

    x_train: jax.Array  # [N, D + 1] or [N, H, W, C]
    x_eval: jax.Array  # [N + N_test, ...]: the training rows, then the test rows, evaluated as one batch.


def packed_data(data: SharedData) -> PackedData:
    """`data` with the bias input appended (flat data), and training and test inputs stacked for evaluation."""
    def with_ones(x):
        x = np.asarray(x)
        return x if x.ndim > 2 else np.concatenate([x, np.ones((len(x), 1), x.dtype)], axis=1)

    train = with_ones(data.x_train)
    return PackedData(jnp.asarray(train), jnp.asarray(np.concatenate([train, with_ones(data.x_test)])))


def bias_input(spec: TrainSpec, x: jax.Array) -> jax.Array:
    """Model inputs [B, D + 1] of a stream's first layer: flat data carry their 1 already; standardized images get
    it."""
    return x if spec.image is None else jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)


class StreamState(NamedTuple):
    """Training state of one stream: parameters, optimizer state, and per member diverged_step [K] and curves
    [K, len(CURVES), n_eval_steps]."""

    params: Any
    opt_state: Any
    diverged_step: jax.Array
    curves: jax.Array


class StreamModel(Protocol):
    """Where the members of a stream sit: what the engine asks of `PackedModel` and `BlockModel`."""

    spec: TrainSpec
    layouts: tuple  # One per part, of equal shapes; each has `widths` [K] (0: an extra member).

    def logits(self, params: Any, x: jax.Array, part: jax.Array) -> jax.Array:
        """Logits [K, C, B] of every member for a batch x [B, D + 1]."""

    def map_members(self, part: jax.Array, fn: Callable, values: jax.Array, *trees: Any) -> Any:
        """fn(member values [K] broadcast onto a leaf, *leaves) over every leaf of parameter-shaped trees of the
        stream holding `part`."""

    def member_sums(self, part: jax.Array, tree: Any) -> jax.Array:
        """[K] sums over each member's entries of a parameter-shaped tree."""

    def pack(self, member_params: list, part: int) -> Any:
        """One stream's parameters from member parameters in part `part`'s layout order (None: an extra member)."""


def stream_init(model: StreamModel, params: Any, stream: Stream) -> StreamState:
    """Initial state of one stream."""
    spec, k = model.spec, len(model.layouts[0].widths)
    curves = jnp.full((k, len(CURVES), len(spec.eval_steps)), jnp.nan, stored_dtype(spec.precision))
    opt_state = base_optimizer(spec.optimizer, spec.momentum).init(params)
    return StreamState(params, opt_state, jnp.full(k, -1, jnp.int32), curves)


def initial_states(model: StreamModel, params: Any, streams: Stream) -> StreamState:
    """`stream_init` of every stream, built on the host: no program to compile.

    Every optimizer state used here (Adam's moments and count, momentum's trace) starts at zero, so the state is
    zeros in `stream_init`'s shapes (tested against it) with the parameters, divergence flags and NaN curves set.
    """
    shapes = jax.eval_shape(jax.vmap(functools.partial(stream_init, model)), params, streams)
    state = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    return state._replace(params=jax.tree.map(np.asarray, params),
                          diverged_step=np.full(shapes.diverged_step.shape, -1, np.int32),
                          curves=np.full(shapes.curves.shape, np.nan, shapes.curves.dtype))


def stream_step(model: StreamModel, state: StreamState, stream: Stream, data: PackedData, step) -> StreamState:
    """One optimizer step of every member of a stream; members whose update goes non-finite stop updating."""
    spec = model.spec
    x, index, weights = training_batch(spec, data, stream.seed, stream.n_train, step)
    x = bias_input(spec, x)
    y = stream.labels[:, :data.x_train.shape[0]] if index is None else stream.labels[:, index]

    def member_losses(params):
        return jnp.sum(weights * example_losses(model.logits(params, x, stream.part), y, spec.loss, axis=1), axis=1)

    losses, vjp = jax.vjp(member_losses, state.params)
    (grads,) = vjp(jnp.ones_like(losses))
    if spec.weight_decay:
        grads = model.map_members(stream.part, lambda decay, g, p: add_weight_decay(g, p, decay),
                                  stream.weight_decay, grads, state.params)
    # Learning rates differ per member, so they scale the optimizer's direction afterwards, as optax does.
    direction, opt_state = base_optimizer(spec.optimizer, spec.momentum).update(grads, state.opt_state, state.params)
    rates = scheduled_rates(spec, stream.learning_rate, step)
    params = model.map_members(stream.part, lambda rate, p, d: p - rate * d, rates, state.params, direction)
    non_finite = model.member_sums(stream.part, jax.tree.map(lambda p: jnp.where(jnp.isfinite(p), 0.0, 1.0),
                                                             params))
    alive = state.diverged_step < 0
    keep = alive & jnp.isfinite(losses) & (non_finite == 0)
    # A stopped member keeps its last finite parameters and never updates again, so its optimizer moments
    # (which may hold the non-finite step) are never read: only the parameters need the select.
    params = model.map_members(stream.part, jnp.where, keep, params, state.params)
    diverged_step = diverged_steps(alive, keep, step, state.diverged_step)
    return StreamState(params, opt_state, diverged_step, state.curves)


def stream_record(model: StreamModel, state: StreamState, stream: Stream, data: PackedData, index) -> StreamState:
    """Writes every member's evaluation into column `index` of its curves (NaN once diverged).

    Training and test examples go through the model as one batch.
    """
    spec, n_train_rows = model.spec, data.x_train.shape[0]
    x = bias_input(spec, model_inputs(spec, data.x_eval))
    logits = model.logits(state.params, x, stream.part)  # [K, C, N + N_test]
    per_example = jnp.stack([logits.argmax(1) != stream.labels,
                             example_losses(logits, stream.labels, spec.loss, axis=1)])
    in_train = train_weights(n_train_rows, stream.n_train)
    train = jnp.sum(per_example[:, :, :n_train_rows] * in_train, axis=2)  # [metric (error, loss), K]
    test = jnp.mean(per_example[:, :, n_train_rows:], axis=2)
    values = jnp.stack([train[0], test[0], train[1], test[1]], axis=1)  # [K, CURVES]
    diverged = state.diverged_step >= 0
    curves = state.curves.at[:, :, index].set(jnp.where(diverged[:, None], jnp.nan, values))
    return state._replace(curves=curves)


def stream_program(model: StreamModel):
    """The one-program trainer over streams of `model` (`ddjax.training.trainer.build_program`)."""
    return build_program(model.spec, functions=tuple(functools.partial(f, model)
                                                     for f in (stream_init, stream_step, stream_record)))


class StreamSetup(NamedTuple):
    """A sweep laid out as streams (seed, n_train, part) x members (width, label noise, learning rate, decay)."""

    model: Any  # A StreamModel.
    params: Any  # Stream parameters stacked over streams.
    streams: Stream
    stream_of: np.ndarray  # [member] stream index.
    slot_of: np.ndarray  # [member] member index within its stream.


def batch_stream_keys(coords: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """Each member's batch stream: (seed, n_train), the pair that fixes its minibatches."""
    return list(zip(coords["seed"].tolist(), coords["n_train"].tolist()))


def slot_keys(coords: dict[str, np.ndarray]) -> list[tuple]:
    """Each member's slot key: its values of `SLOT_AXES` (width first)."""
    return list(zip(*(coords[axis].tolist() for axis in SLOT_AXES)))


def slot_widths(coords: dict[str, np.ndarray]) -> np.ndarray:
    """The width of each distinct slot key, in first-seen order: what a stream's layout places."""
    return np.array([key[0] for key in dict.fromkeys(slot_keys(coords))])


# arrange(widths [slots], n_parts) -> (each part's slot indices in layout order, -1 for an extra member; the model).
Arrange = Callable[[np.ndarray, int], tuple[list[np.ndarray], Any]]


def stream_setup(config: Config, dataset: Dataset, spec: TrainSpec, coords: dict[str, np.ndarray], n_parts: int,
                 arrange: Arrange) -> StreamSetup:
    """Lays out a cartesian sweep as streams: every batch stream (seed, n_train) holds the same slots (width,
    label noise, learning rate, weight decay), placed by `arrange` into `n_parts` parts of equal shapes, one
    stream per batch stream and part. An extra member (index -1) trains nothing: its rate is 0."""
    stream_keys, member_slots = batch_stream_keys(coords), slot_keys(coords)
    batch_streams, slots = list(dict.fromkeys(stream_keys)), list(dict.fromkeys(member_slots))
    widths = np.array([key[0] for key in slots])
    rates, decays = (np.array([key[SLOT_AXES.index(axis)] for key in slots], np.float32)
                     for axis in ("learning_rate", "weight_decay"))
    index, model = arrange(widths, min(n_parts, len(slots)))
    n_parts = len(index)
    part_of, position = np.zeros(len(slots), np.int64), np.zeros(len(slots), np.int64)
    for p, members in enumerate(index):
        real = members >= 0
        part_of[members[real]], position[members[real]] = p, np.flatnonzero(real)
    slot_index = np.array([slots.index(key) for key in member_slots])  # [member] its slot key's index.
    stream_of = np.array([batch_streams.index(key) for key in stream_keys]) * n_parts + part_of[slot_index]
    params, labels, member_rates, member_decays = [], [], [], []
    for seed, n_train in batch_streams:
        for p, members in enumerate(index):
            params.append(model.pack([None if m < 0 else spec.model.init(seed, int(widths[m]), int(widths[m]),
                                                                         spec.input_dim, spec.n_classes)["params"]
                                      for m in members], p))
            first_real = members[members >= 0][0]  # An extra member reads the first member's labels.
            labels.append([np.concatenate([member_labels(dataset, n_train, slots[m if m >= 0 else first_real][1], seed,
                                                         config.data_seed)[:max(config.n_train)], dataset.y_test])
                           for m in members])
            member_rates.append(np.where(members >= 0, rates[members], 0.0))
            member_decays.append(np.where(members >= 0, decays[members], 0.0))
    n_streams = len(batch_streams) * n_parts
    streams = Stream(seed=jnp.asarray(np.repeat([s for s, _ in batch_streams], n_parts), jnp.uint32),
                     n_train=jnp.asarray(np.repeat([n for _, n in batch_streams], n_parts), jnp.int32),
                     labels=jnp.asarray(np.array(labels), jnp.int32),
                     learning_rate=jnp.asarray(np.array(member_rates), jnp.float32),
                     weight_decay=jnp.asarray(np.array(member_decays), jnp.float32) if spec.weight_decay else None,
                     part=jnp.asarray(np.arange(n_streams) % n_parts, jnp.int32))
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *params)
    return StreamSetup(model, stacked, streams, stream_of, position[slot_index])
