"""The block-packed path for MLPs of any depth: width buckets of block-diagonal hidden-to-hidden layers.

It extends `ddjax.training.packed.streams` (one hidden layer) to deeper MLPs. Members that share a batch stream also share its
inputs, so the first layer of the whole stream is one `[units, D + 1]` matmul over every member's units side by
side. A hidden-to-hidden layer is block-diagonal: each member only reads its own units. Members are sorted into a
few width buckets (`ddjax.training.block_layout`), each padded to its widest member, and each bucket's blocks are one
batched matmul `[count, P, P] x [count, P, batch]`. The read-out is one batched matmul per bucket as well.
Activations are kept feature-major (`[units, batch]`), so a bucket's units are a contiguous slice. Streams are
stacked with `jax.vmap` as in `ddjax.training.packed.streams` (whose `Stream`, `PackedData` and `stream_record` are reused): the
whole sweep is one program with one set of shapes, tested against serial training of each member.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.data.datasets import member_labels
from ddjax.training.block_layout import (BlockLayout, member_cost, pack_params, part_layouts, plan_buckets,
                                         worthwhile_parts)
from ddjax.training.packed.streams import (PackedData, PackedState, _base_optimizer, scheduled_rates, stream_direction,
                                          stream_record)
from ddjax.training.packed.layout import SLOT_AXES, slot_keys
from ddjax.training.trainer import CURVES, add_weight_decay, build_program, compute_cast, stored_dtype


EXAMPLES_PER_PASS = 256


class BlockStream(NamedTuple):
    """What the members of one stream share or hold per member (stacked over streams by vmap)."""

    seed: jax.Array  # uint32: batch order.
    n_train: jax.Array  # int32
    labels: jax.Array  # int32 [K, N + N_test]: each member's (noisy) training labels, then the test labels.
    learning_rate: jax.Array  # float32 [K]: 0 for extra members.
    part: jax.Array  # int32: which of `BlockModel.layouts` the stream holds.
    weight_decay: jax.Array | None = None  # float32 [K]: 0 for extra members; None without weight decay.


class BlockModel(NamedTuple):
    """Static description of block-packed streams: their layouts (one per part, equal shapes) and training spec."""

    layouts: tuple[BlockLayout, ...]
    spec: Any  # ddjax.train.TrainSpec
    depth: int  # Hidden layers.

    @property
    def layout(self) -> BlockLayout:
        """The first part's layout: its buckets are every part's."""
        return self.layouts[0]

    @property
    def efficiency(self) -> float:
        """Useful / executed multiply-accumulates per example, over all parts (like the grouped layout's: a
        hidden-to-hidden block's padding costs quadratically, so this is below the fraction of real units)."""
        shape = (self.depth, self.spec.input_dim, self.spec.n_classes)
        useful = sum(member_cost(int(w), *shape) for part in self.layouts for w in part.widths if w > 0)
        executed = len(self.layouts) * sum(b.count * member_cost(b.size, *shape) for b in self.layout.buckets)
        return useful / executed

    def unit_mask(self, part: jax.Array) -> jax.Array:
        """[units] mask of the stream holding `part`: a constant with a single layout, else picked by `part`."""
        if len(self.layouts) == 1:
            return jnp.asarray(self.layout.unit_mask)
        return jnp.asarray(np.stack([lay.unit_mask for lay in self.layouts]))[part]

    def _bucket_units(self, h: jax.Array):
        """Each bucket's slice of feature-major h [units, ...], shaped [count, P, ...]."""
        return [h[b.offset:b.offset + b.size * b.count].reshape(b.count, b.size, *h.shape[1:])
                for b in self.layout.buckets]

    def logits(self, params: dict, x: jax.Array, part: jax.Array) -> jax.Array:
        """Logits of every member of a stream for a batch x [B, D + 1] (bias input last): shape [K, C, B].

        A batch of more than `EXAMPLES_PER_PASS` examples (an evaluation of the whole data set) goes through in
        consecutive chunks of that many: `[units, chunk]` activations stay in cache, where those of thousands of
        examples did not (measured about 2x faster on the 2-core CPU, 5000 examples at depth 2).
        """
        n = x.shape[0]
        if n <= EXAMPLES_PER_PASS:
            return self._logits(params, x, part)
        chunks = -(-n // EXAMPLES_PER_PASS)
        x = jnp.pad(x, ((0, chunks * EXAMPLES_PER_PASS - n), (0, 0))).reshape(chunks, EXAMPLES_PER_PASS, -1)
        out = jax.lax.map(lambda chunk: self._logits(params, chunk, part), x)  # [chunks, K, C, chunk]
        return jnp.moveaxis(out, 0, 2).reshape(*out.shape[1:3], -1)[:, :, :n]

    def _logits(self, params: dict, x: jax.Array, part: jax.Array) -> jax.Array:
        params, x = compute_cast(self.spec.precision, (params, x))  # bfloat16 copies, or a no-op in float32.
        mask = self.unit_mask(part)[:, None].astype(x.dtype)
        # Mask after each activation so padded units get exactly zero gradient.
        h = jax.nn.relu(jnp.einsum("ud,bd->ub", params["first"], x)) * mask
        for layer in params["hidden"]:
            z = [jnp.einsum("npq,nqb->npb", block["w"], hb) + block["b"][:, :, None]
                 for block, hb in zip(layer, self._bucket_units(h))]
            h = jax.nn.relu(jnp.concatenate([zb.reshape(-1, x.shape[0]) for zb in z])) * mask
        per_member = [jnp.einsum("npc,npb->ncb", wb, hb)
                      for wb, hb in zip(self._bucket_units(params["out"]), self._bucket_units(h))]
        logits = jnp.concatenate(per_member) + params["out_b"][:, :, None]
        return logits.astype(jnp.float32) if self.spec.precision == "bfloat16" else logits  # Loss in float32.

    def per_member(self, values: jax.Array, leaf_path: str, bucket: int | None = None) -> jax.Array:
        """Broadcasts member values [K] onto a parameter leaf's leading axes."""
        if leaf_path in ("first", "out"):
            return values[jnp.asarray(self.layout.unit_member)][:, None]
        if leaf_path == "out_b":
            return values[:, None]
        b = self.layout.buckets[bucket]
        return values[b.first:b.first + b.count].reshape(-1, *([1] * (2 if leaf_path == "w" else 1)))

    def member_sums(self, leaves: dict) -> jax.Array:
        """[K] sums over each member's entries of a tree shaped like the parameters."""
        per_unit = jnp.sum(leaves["first"], axis=1) + jnp.sum(leaves["out"], axis=1)
        total = jnp.concatenate([u.sum(axis=1) for u in self._bucket_units(per_unit)]) + leaves["out_b"].sum(axis=1)
        for layer in leaves["hidden"]:
            total += jnp.concatenate([block["w"].sum(axis=(1, 2)) + block["b"].sum(axis=1) for block in layer])
        return total

    def map_members(self, fn, values: jax.Array, *trees: dict) -> dict:
        """fn(member values broadcast onto a leaf, *leaves) over every leaf of parameter-shaped `trees`."""
        def top(name):
            return fn(self.per_member(values, name), *(t[name] for t in trees))

        hidden = [[{name: fn(self.per_member(values, name, b), *(t["hidden"][level][b][name] for t in trees))
                    for name in ("w", "b")} for b in range(len(self.layout.buckets))]
                  for level in range(len(trees[0]["hidden"]))]
        return {"first": top("first"), "hidden": hidden, "out": top("out"), "out_b": top("out_b")}


def stream_init(model: BlockModel, params: dict, stream: BlockStream) -> PackedState:
    """Initial state of one stream."""
    k, spec = len(model.layout.widths), model.spec
    curves = jnp.full((k, len(CURVES), len(spec.eval_steps)), jnp.nan, stored_dtype(spec.precision))
    opt_state = _base_optimizer(spec.optimizer, spec.momentum).init(params)
    return PackedState(params, opt_state, jnp.full(k, -1, jnp.int32), curves)


def initial_states(model: BlockModel, params: dict, streams: BlockStream) -> PackedState:
    """`stream_init` of every stream, built on the host (optimizer states start at zero): no program to compile."""
    shapes = jax.eval_shape(jax.vmap(functools.partial(stream_init, model)), params, streams)
    state = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    return state._replace(params=jax.tree.map(np.asarray, params),
                          diverged_step=np.full(shapes.diverged_step.shape, -1, np.int32),
                          curves=np.full(shapes.curves.shape, np.nan, shapes.curves.dtype))


def stream_step(model: BlockModel, state: PackedState, stream: BlockStream, data: PackedData, step) -> PackedState:
    """One optimizer step of every member of a stream; members whose update goes non-finite stop updating."""
    def weight_decay(grads, params):
        return model.map_members(lambda decay, g, p: add_weight_decay(g, p, decay), stream.weight_decay, grads, params)

    losses, direction, opt_state = stream_direction(model.spec, model.logits, state, stream, data, step, weight_decay)
    rates = scheduled_rates(model.spec, stream.learning_rate, step)
    params = model.map_members(lambda rate, p, d: p - rate * d, rates, state.params, direction)
    non_finite = model.member_sums(jax.tree.map(lambda p: jnp.where(jnp.isfinite(p), 0.0, 1.0), params))
    alive = state.diverged_step < 0
    keep = alive & jnp.isfinite(losses) & (non_finite == 0)
    # A stopped member keeps its last finite parameters and never updates again, so its optimizer moments
    # (which may hold the non-finite step) are never read: only the parameters need the select.
    params = model.map_members(jnp.where, keep, params, state.params)
    diverged_step = jnp.where(alive & ~keep, step, state.diverged_step).astype(jnp.int32)
    return PackedState(params, opt_state, diverged_step, state.curves)


class BlockSetup(NamedTuple):
    """A sweep laid out as streams (seed, n_train, part) x members (width, label noise, learning rate)."""

    model: BlockModel
    params: dict  # Block parameters stacked over streams.
    streams: BlockStream
    stream_of: np.ndarray  # [member] stream index.
    slot_of: np.ndarray  # [member] member index within its stream.


def examples_per_step(spec, config) -> int:
    """Examples one member trains on in a step: the batch, or its largest training set for full batches."""
    return spec.batch_size or max(config.n_train)


def useful_parts(config, spec, coords: dict[str, np.ndarray], n_parts: int) -> int:
    """How many parts `block_setup` should cut each stream into, given `n_parts` wanted to fill the devices:
    fewer where parts would execute much more padding (`ddjax.training.block_layout.worthwhile_parts`)."""
    widths = np.array([key[0] for key in dict.fromkeys(slot_keys(coords))])
    return worthwhile_parts(widths, min(n_parts, len(widths)), depth=config.depth, input_dim=spec.input_dim,
                            n_classes=spec.n_classes, examples_per_step=examples_per_step(spec, config))


def block_setup(config, dataset, spec, coords: dict[str, np.ndarray], n_parts: int = 1) -> BlockSetup:
    """Lays out a cartesian MLP sweep: every batch stream (seed, n_train) holds the same members, bucketed by
    width (`ddjax.training.block_layout.plan_buckets`) and dealt over `n_parts` parts, one stream per batch stream and part."""
    stream_keys = list(zip(coords["seed"].tolist(), coords["n_train"].tolist()))
    member_slots = slot_keys(coords)
    batch_streams, slots = list(dict.fromkeys(stream_keys)), list(dict.fromkeys(member_slots))
    widths = np.array([key[0] for key in slots])
    rates, decays = (np.array([key[SLOT_AXES.index(axis)] for key in slots], np.float32)
                     for axis in ("learning_rate", "weight_decay"))
    n_parts = min(n_parts, len(slots))
    buckets = plan_buckets(widths, depth=config.depth, input_dim=spec.input_dim, n_classes=spec.n_classes,
                           n_parts=n_parts, examples_per_step=examples_per_step(spec, config))
    index, layouts = part_layouts(widths, buckets, n_parts)
    part_of, position = np.zeros(len(slots), np.int64), np.zeros(len(slots), np.int64)
    for p, members in enumerate(index):
        real = members >= 0
        part_of[members[real]], position[members[real]] = p, np.flatnonzero(real)
    slot_index = np.array([slots.index(key) for key in member_slots])  # [member] its slot key's index.
    stream_of = np.array([batch_streams.index(key) for key in stream_keys]) * n_parts + part_of[slot_index]
    params, labels, member_rates, member_decays = [], [], [], []
    for seed, n_train in batch_streams:
        for members, layout in zip(index, layouts):
            params.append(pack_params([None if m < 0 else spec.model.init(seed, int(widths[m]), int(widths[m]),
                                                                          spec.input_dim, spec.n_classes)["params"]
                                       for m in members], layout))
            first_real = members[members >= 0][0]
            labels.append([np.concatenate([member_labels(dataset, n_train, slots[m if m >= 0 else first_real][1], seed,
                                                         config.data_seed)[:max(config.n_train)], dataset.y_test])
                           for m in members])
            member_rates.append(np.where(members >= 0, rates[members], 0.0))  # Extra members never update.
            member_decays.append(np.where(members >= 0, decays[members], 0.0))
    n_streams = len(batch_streams) * n_parts
    streams = BlockStream(seed=jnp.asarray(np.repeat([s for s, _ in batch_streams], n_parts), jnp.uint32),
                          n_train=jnp.asarray(np.repeat([n for _, n in batch_streams], n_parts), jnp.int32),
                          labels=jnp.asarray(np.array(labels), jnp.int32),
                          learning_rate=jnp.asarray(np.array(member_rates), jnp.float32),
                          weight_decay=(jnp.asarray(np.array(member_decays), jnp.float32) if spec.weight_decay
                                        else None),
                          part=jnp.asarray(np.arange(n_streams) % n_parts, jnp.int32))
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *params)
    return BlockSetup(BlockModel(layouts, spec, config.depth), stacked, streams, stream_of, position[slot_index])


def block_program(setup: BlockSetup):
    """The one-program trainer over the streams of `setup`."""
    functions = tuple(functools.partial(f, setup.model) for f in (stream_init, stream_step, stream_record))
    return build_program(setup.model.spec, functions=functions)
