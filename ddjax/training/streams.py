"""The packed layouts' view of a stream (`ddjax.training.engine.MemberView`): members that share a batch stream
train side by side in one model.

Members that share a batch stream (the same seed and n_train, so the same minibatches) differ only in the other
axes (width, label noise, learning rate, ...). A stream model holds all of them in one set of parameters and
computes every member's logits at once: `ddjax.training.packed.model` puts one-hidden-layer members' units side
by side in one wide layer, `ddjax.training.blockpacked.model` puts deeper MLPs in width buckets of block-diagonal
layers. The engine (`ddjax.training.engine`) trains a stream through `StreamView`, which reads the model only
through `logits`, `per_entry` (member values [K] broadcast onto every parameter entry) and `member_sums`; this
module also holds the host-side setup that packs a sweep into streams. Streams are stacked with `jax.vmap`, so a
whole sweep is one program with one set of shapes.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import AXES, AXIS, BATCH_STREAM_AXES, Config, validation_size
from ddjax.data.datasets import Dataset, member_labels
from ddjax.training import engine
from ddjax.training.inputs import model_inputs
from ddjax.training.members import member_variables
from ddjax.training.spec import Members, SharedData, TrainSpec
from ddjax.training.trainer import build_program

# A stream's members: one `Members` whose per-member axis fields are [K] and whose seed, n_train, n_val and part
# are the stream's.
Stream = Members


class PackedData(NamedTuple):
    """The stream layouts' device data: flat inputs with a constant 1 appended (the first layer's bias input), or
    stored images (uint8 [.., H, W, C]) that get their 1 after standardizing (`bias_input`)."""

    x_train: jax.Array  # [N, D + 1] or [N, H, W, C]
    x_eval: jax.Array  # [N + N_test, ...]: the training rows, then the test rows, evaluated as one batch.
    y_test: jax.Array


def packed_data(data: SharedData) -> PackedData:
    """`data` with the bias input appended (flat data), and training and test inputs stacked for evaluation."""
    def with_ones(x):
        x = np.asarray(x)
        return x if x.ndim > 2 else np.concatenate([x, np.ones((len(x), 1), x.dtype)], axis=1)

    train = with_ones(data.x_train)
    return PackedData(jnp.asarray(train), jnp.asarray(np.concatenate([train, with_ones(data.x_test)])),
                      jnp.asarray(data.y_test))


def bias_input(spec: TrainSpec, x: jax.Array) -> jax.Array:
    """Model inputs [B, D + 1] of a stream's first layer: flat data carry their 1 already; standardized images get
    it."""
    return x if spec.image is None else jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)


class StreamModel(Protocol):
    """Where the members of a stream sit: what the engine asks of `PackedModel` and `BlockModel`."""

    spec: TrainSpec
    layouts: tuple  # One per part, of equal shapes; each has `widths` [K] (0: an extra member).

    def logits(self, params: Any, x: jax.Array, part: jax.Array) -> jax.Array:
        """Logits [K, C, B] of every member for a batch x [B, D + 1]."""

    def per_entry(self, part: jax.Array, values: jax.Array) -> Any:
        """Member values [K] broadcast onto every parameter entry of the stream holding `part` (a tree like the
        parameters, each leaf broadcasting against its parameter)."""

    def member_sums(self, part: jax.Array, tree: Any) -> jax.Array:
        """[K] sums over each member's entries of a parameter-shaped tree."""

    def group_mask(self, pattern: str) -> Any:
        """Whether each entry of a stream's parameters is, in its member, a parameter whose path ("hidden/0/w", ...)
        matches the glob `pattern` (a tree like the parameters, each leaf broadcasting)."""

    def pack(self, member_params: list, part: int) -> Any:
        """One stream's parameters from member parameters in part `part`'s layout order (None: an extra member)."""


class StreamView(NamedTuple):
    """The engine's view of one stream of `model` holding `part` (see the module docstring)."""

    model: Any  # A StreamModel.
    part: jax.Array
    class_axis: int = -2  # Logits are [K, C, B].

    @property
    def spec(self) -> TrainSpec:
        return self.model.spec

    def logits(self, params, model_state, x, train, example_mask=None):
        return self.model.logits(params, bias_input(self.spec, x), self.part), model_state

    def per_example(self, params, model_state, labels, data: PackedData):
        """Training and test rows through the model, and their metrics, as one batch."""
        logits = self.model.logits(params, bias_input(self.spec, model_inputs(self.spec, data.x_eval)), self.part)
        test = jnp.broadcast_to(data.y_test, labels.shape[:-1] + data.y_test.shape[-1:])
        all_labels = jnp.concatenate([labels, test], axis=-1)
        metrics = engine.per_example(self.spec, logits, all_labels, self.class_axis)
        n_train_rows = data.x_train.shape[0]
        return metrics[..., :n_train_rows], metrics[..., n_train_rows:]

    def per_entry(self, values, tree):
        return self.model.per_entry(self.part, values)

    def member_sums(self, tree):
        return self.model.member_sums(self.part, tree)

    def group_mask(self, params):
        return self.model.group_mask(self.spec.layer_group)

    def entry_mask(self, params):
        return None  # A stream's padded units get zero gradient: their activations are masked.


def stream_init(model: StreamModel, params: Any, stream: Stream) -> engine.State:
    """Initial state of one stream."""
    return engine.init(StreamView(model, stream.part), params, {}, stream)


def initial_states(model: StreamModel, params: Any, streams: Stream) -> engine.State:
    """`stream_init` of every stream, built on the host: no program to compile.

    Every optimizer state used here (Adam's moments and count, momentum's trace) starts at zero, so the state is
    zeros in `stream_init`'s shapes (tested against it) with the parameters, divergence flags and NaN curves set.
    """
    shapes = jax.eval_shape(jax.vmap(functools.partial(stream_init, model)), params, streams)
    state = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    return state._replace(params=jax.tree.map(np.asarray, params),
                          diverged_step=np.full(shapes.diverged_step.shape, -1, np.int32),
                          curves={k: np.full(v.shape, np.nan, v.dtype) for k, v in shapes.curves.items()})


def stream_step(model: StreamModel, state: engine.State, stream: Stream, data: PackedData, step) -> engine.State:
    """One optimizer step of every member of a stream (`ddjax.training.engine.step`)."""
    return engine.step(StreamView(model, stream.part), state, stream, data, step)


def stream_record(model: StreamModel, state: engine.State, stream: Stream, data: PackedData,
                  index) -> engine.State:
    """Writes every member's evaluation into column `index` of its curves (`ddjax.training.engine.record`)."""
    return engine.record(StreamView(model, stream.part), state, stream, data, index)


def stream_program(model: StreamModel):
    """The one-program trainer over streams of `model` (`ddjax.training.trainer.build_program`)."""
    return build_program(model.spec, functions=tuple(functools.partial(f, model)
                                                     for f in (stream_init, stream_step, stream_record)))


class StreamSetup(NamedTuple):
    """A sweep laid out as streams (batch stream x part) of members (every other axis: `SLOT_AXES`)."""

    model: Any  # A StreamModel.
    params: Any  # Stream parameters stacked over streams.
    streams: Stream
    stream_of: np.ndarray  # [member] stream index.
    slot_of: np.ndarray  # [member] member index within its stream.


# The axes that tell apart the members of one batch stream: each distinct point is one slot key (width first).
SLOT_AXES = tuple(axis.name for axis in AXES if not axis.batch_stream)


def batch_stream_keys(coords: dict[str, np.ndarray]) -> list[tuple]:
    """Each member's batch stream: its values of the batch-stream axes (seed, n_train), which fix its minibatches."""
    return list(zip(*(coords[axis].tolist() for axis in BATCH_STREAM_AXES)))


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
    """Lays out a cartesian sweep as streams: every batch stream holds the same slots (one per point of
    `SLOT_AXES`), placed by `arrange` into `n_parts` parts of equal shapes, one stream per batch stream and part.
    An extra member (index -1) trains nothing: its per-member values, its learning rate among them, are 0. A
    stream's members train on the first n_train - n_val of its n_train rows and hold out the rest (`n_val`)."""
    stream_keys, member_slots = batch_stream_keys(coords), slot_keys(coords)
    batch_streams, slots = list(dict.fromkeys(stream_keys)), list(dict.fromkeys(member_slots))
    slot_values = {axis: np.array([key[i] for key in slots]) for i, axis in enumerate(SLOT_AXES)}
    index, model = arrange(slot_values["width"], min(n_parts, len(slots)))
    n_parts = len(index)
    part_of, position = np.zeros(len(slots), np.int64), np.zeros(len(slots), np.int64)
    for p, members in enumerate(index):
        real = members >= 0
        part_of[members[real]], position[members[real]] = p, np.flatnonzero(real)
    slot_index = np.array([slots.index(key) for key in member_slots])  # [member] its slot key's index.
    stream_of = np.array([batch_streams.index(key) for key in stream_keys]) * n_parts + part_of[slot_index]
    per_member = [axis for axis in spec.member_axes if axis in SLOT_AXES]
    params, labels, values = [], [], {axis: [] for axis in per_member}
    for key in batch_streams:
        seed, n_train = (key[BATCH_STREAM_AXES.index(axis)] for axis in ("seed", "n_train"))
        for p, members in enumerate(index):
            widths = slot_values["width"]
            params.append(model.pack([None if m < 0 else member_variables(
                spec, seed, int(widths[m]), int(widths[m]), float(slot_values["layer_init_scale"][m]))["params"]
                for m in members], p))
            first_real = members[members >= 0][0]  # An extra member reads the first member's labels.
            labels.append([member_labels(dataset, n_train, slot_values["label_noise"][m if m >= 0 else first_real],
                                         seed, config.data_seed,
                                         slot_values["target_noise"][m if m >= 0 else first_real])[
                                             ..., :max(config.n_train)] for m in members])
            for axis in per_member:
                values[axis].append(np.where(members >= 0, slot_values[axis][members], 0))
    n_streams = len(batch_streams) * n_parts
    repeat = {axis: np.repeat([key[i] for key in batch_streams], n_parts) for i, axis in enumerate(BATCH_STREAM_AXES)}
    n_val = np.array([validation_size(int(n), config.validation_fraction) for n in repeat["n_train"]])
    streams = Stream(seed=jnp.asarray(repeat["seed"], AXIS["seed"].dtype),
                     n_train=jnp.asarray(repeat["n_train"] - n_val, AXIS["n_train"].dtype),
                     labels=jnp.asarray(np.array(labels)),
                     n_val=jnp.asarray(n_val, jnp.int32) if spec.validation else None,
                     part=jnp.asarray(np.arange(n_streams) % n_parts, jnp.int32),
                     **{axis: jnp.asarray(np.array(v), AXIS[axis].dtype) for axis, v in values.items()})
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *params)
    return StreamSetup(model, stacked, streams, stream_of, position[slot_index])
