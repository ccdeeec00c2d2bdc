"""The block-packed model of MLPs of any depth: width buckets of block-diagonal hidden-to-hidden layers.

It extends `ddjax.training.packed.model` (one hidden layer) to deeper MLPs, trained by the same stream engine
(`ddjax.training.streams`). Members that share a batch stream also share its inputs, so the first layer of the
whole stream is one `[units, D + 1]` matmul over every member's units side by side. A hidden-to-hidden layer is
block-diagonal: each member only reads its own units. Members are sorted into a few width buckets
(`ddjax.training.blockpacked.layout`), each padded to its widest member, and each bucket's blocks are one batched
matmul `[count, P, P] x [count, P, batch]`. The read-out is one batched matmul per bucket as well. Activations are
kept feature-major (`[units, batch]`), so a bucket's units are a contiguous slice. The whole sweep is one program
with one set of shapes, tested against serial training of each member.
"""

from __future__ import annotations

import fnmatch
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import Config
from ddjax.data.datasets import Dataset
from ddjax.training.blockpacked.layout import (BlockLayout, member_cost, pack_params, part_layouts, plan_buckets,
                                               worthwhile_parts)
from ddjax.training.costs import padding_efficiency
from ddjax.training.spec import TrainSpec, compute_cast
from ddjax.training.streams import StreamSetup, slot_widths, stream_setup

EXAMPLES_PER_PASS = 256


class BlockModel(NamedTuple):
    """Static description of block-packed streams: their layouts (one per part, equal shapes) and training spec."""

    layouts: tuple[BlockLayout, ...]
    spec: TrainSpec
    depth: int  # Hidden layers.

    @property
    def layout(self) -> BlockLayout:
        """The first part's layout: its buckets are every part's."""
        return self.layouts[0]

    @property
    def efficiency(self) -> float:
        """Useful / executed multiply-accumulates over all parts (`ddjax.training.costs.padding_efficiency`; a
        hidden-to-hidden block's padding costs quadratically, so this is below the fraction of real units)."""
        shape = (self.depth, self.spec.input_dim, self.spec.n_classes)
        executed = [b.size for _ in self.layouts for b in self.layout.buckets for _ in range(b.count)]
        return padding_efficiency(lambda w: member_cost(w, *shape),
                                  [w for part in self.layouts for w in part.widths if w > 0], executed)

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

    def member_sums(self, part: jax.Array, leaves: dict) -> jax.Array:
        """[K] sums over each member's entries of a tree shaped like the parameters."""
        per_unit = jnp.sum(leaves["first"], axis=1) + jnp.sum(leaves["out"], axis=1)
        total = jnp.concatenate([u.sum(axis=1) for u in self._bucket_units(per_unit)]) + leaves["out_b"].sum(axis=1)
        for layer in leaves["hidden"]:
            total += jnp.concatenate([block["w"].sum(axis=(1, 2)) + block["b"].sum(axis=1) for block in layer])
        return total

    def per_entry(self, part: jax.Array, values: jax.Array) -> dict:
        """Member values [K] broadcast onto every leaf of the stream's parameters (every part has the same buckets,
        so `part` does not matter)."""
        hidden = [[{name: self.per_member(values, name, b) for name in ("w", "b")}
                   for b in range(len(self.layout.buckets))] for _ in range(self.depth - 1)]
        return {"first": self.per_member(values, "first"), "hidden": hidden, "out": self.per_member(values, "out"),
                "out_b": self.per_member(values, "out_b")}

    def group_mask(self, pattern: str) -> dict:
        """Whether each entry of the stream's parameters is, in its member, a parameter whose path matches
        `pattern` ("hidden/0/w" and "hidden/0/b" share the first layer's columns)."""
        def match(path):
            return fnmatch.fnmatchcase(path, pattern)

        first = np.array([match("hidden/0/w")] * self.spec.input_dim + [match("hidden/0/b")])
        hidden = [[{"w": match(f"hidden/{level + 1}/w"), "b": match(f"hidden/{level + 1}/b")}
                   for _ in self.layout.buckets] for level in range(self.depth - 1)]
        return {"first": first, "hidden": hidden, "out": match("out/w"), "out_b": match("out/b")}

    def pack(self, member_params: list, part: int) -> dict:
        """The stream's blocks from its members' parameters in layout order (None: an extra member)."""
        return pack_params(member_params, self.layouts[part])


def examples_per_step(spec, config) -> int:
    """Examples one member trains on in a step: the batch, or its largest training set for full batches."""
    return spec.batch_size or max(config.n_train)


def useful_parts(config, spec, coords: dict[str, np.ndarray], n_parts: int) -> int:
    """How many parts `block_setup` should cut each stream into, given `n_parts` wanted to fill the devices:
    fewer where parts would execute much more padding (`ddjax.training.blockpacked.layout.worthwhile_parts`)."""
    widths = slot_widths(coords)
    return worthwhile_parts(widths, min(n_parts, len(widths)), depth=config.depth, input_dim=spec.input_dim,
                            n_classes=spec.n_classes, examples_per_step=examples_per_step(spec, config))


def block_setup(config: Config, dataset: Dataset, spec: TrainSpec, coords: dict[str, np.ndarray],
                n_parts: int = 1) -> StreamSetup:
    """Lays out a cartesian MLP sweep as block-packed streams: every batch stream's members bucketed by width
    (`ddjax.training.blockpacked.layout.plan_buckets`) and dealt over `n_parts` parts."""
    def arrange(widths, n_parts):
        buckets = plan_buckets(widths, depth=config.depth, input_dim=spec.input_dim, n_classes=spec.n_classes,
                               n_parts=n_parts, examples_per_step=examples_per_step(spec, config))
        index, layouts = part_layouts(widths, buckets, n_parts)
        return index, BlockModel(layouts, spec, config.depth)

    return stream_setup(config, dataset, spec, coords, n_parts, arrange)
