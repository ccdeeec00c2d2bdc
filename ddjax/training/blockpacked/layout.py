"""Where each member of a deep MLP sits in a block-packed stream: width buckets, parts, parameter blocks.

Host-side planning for `ddjax.training.blockpacked.model` (numpy only, nothing traced). A stream's members are sorted by width
and cut into a few contiguous buckets (`plan_buckets`); every member of a bucket is padded to the bucket's block
size (its widest member), so each hidden-to-hidden layer of a bucket is ONE batched matmul of `[count, P, P]`
blocks, while the first layer and the read-out take all members' units side by side. With several parts (one per
device when streams are few), every part holds the same buckets with the same counts (extra members of width 0
fill a bucket whose count is not a multiple of the parts), so the parts stack as streams of equal shapes.
`pack_params` and `unpack_member` convert between member parameters (`ddjax.models.families.mlp`) and a stream's
blocks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ddjax.models.family import Params
from ddjax.models.registry import forward_macs
from ddjax.training.width_groups import partition, segments

# A bucket's fixed cost per training step, in multiply-accumulates: its kernels' launches (about 30 more a step)
# and its share of the compile. Chosen by measurement on the quiet 2-core CPU (Intel Xeon), the benchmark grid at
# depth 2 (15 widths 1..256, batch 128, 2000 Adam steps), vmap total against the buckets this planned:
# 6 buckets (11..256, padding efficiency 0.94, 1 device) 8.0-9.3 s; 3 buckets (24, 116, 256; 0.63, 2 devices)
# 6.7 s; 2 buckets (53, 256; 0.42) 8.2-9.1 s; 1 bucket (0.13) 20 s. Kernel launches, not arithmetic, bound a step
# of these small matmuls, so a few wide buckets beat many tight ones there; with large batches the arithmetic
# dominates and the same constant, spread over more examples, plans tighter buckets.
BUCKET_OVERHEAD_STEP_MACS = 12_800_000
MAX_BUCKETS = 6


class Bucket(NamedTuple):
    """`count` members of one part, each padded to `size` units, starting at unit `offset` and member `first`."""

    size: int
    count: int
    offset: int
    first: int


class BlockLayout(NamedTuple):
    """One part's members in layout order (by bucket, ascending width; width 0 = an extra member that never trains).

    Every part of a sweep has the same buckets; only `widths` (and so `unit_mask`) differ.
    """

    widths: np.ndarray  # [K]
    buckets: tuple[Bucket, ...]

    @property
    def n_units(self) -> int:
        return sum(b.size * b.count for b in self.buckets)

    @property
    def unit_member(self) -> np.ndarray:
        """[units] the member (index in `widths`) of each unit."""
        return np.repeat(np.arange(len(self.widths)), np.repeat([b.size for b in self.buckets],
                                                                [b.count for b in self.buckets]))

    @property
    def unit_mask(self) -> np.ndarray:
        """[units] 1.0 for real units, 0.0 for padding."""
        position = np.concatenate([np.tile(np.arange(b.size), b.count) for b in self.buckets])
        return (position < self.widths[self.unit_member]).astype(np.float32)


def member_cost(size: int, depth: int, input_dim: int, n_classes: int) -> int:
    """Multiply-accumulates per example of one MLP member padded to `size` units: the registry's count
    (`ddjax.models.registry.forward_macs`), the one every layout plans and reports with."""
    return forward_macs("mlp", size, input_dim, n_classes, depth)


def plan_buckets(widths: np.ndarray, *, depth: int, input_dim: int, n_classes: int, examples_per_step: int,
                 n_parts: int = 1, max_buckets: int = MAX_BUCKETS) -> list[np.ndarray]:
    """Member indices of each bucket (ascending width), chosen to execute the least estimated cost.

    `ddjax.training.width_groups.partition` of the members sorted by width: a bucket of members i..j-1 costs
    its block size's `member_cost` for every member it holds across `n_parts` parts (its count rounded up to a
    multiple of the parts: the extra members are padding too) plus `BUCKET_OVERHEAD_STEP_MACS` spread over the
    `examples_per_step` examples of a step (the batch size, or the training set for full batches).
    """
    order = np.argsort(widths, kind="stable")
    sorted_widths = np.asarray(widths)[order]
    k = len(order)
    overhead = BUCKET_OVERHEAD_STEP_MACS / examples_per_step

    def cost(i, j):
        held = math.ceil((j - i) / n_parts) * n_parts
        return held * member_cost(int(sorted_widths[j - 1]), depth, input_dim, n_classes) + overhead

    best, cut = partition(k, cost, max_buckets)
    return [order[i:j] for i, j in segments(cut, int(np.argmin(best[:, k])), k)]


MAX_PART_OVERHEAD = 1.1  # Cut into parts only while that executes at most 10% more (see `worthwhile_parts`).


def planned_cost(widths: np.ndarray, n_parts: int, *, examples_per_step: int, **shape) -> float:
    """Executed multiply-accumulates per example of the planned buckets dealt over `n_parts` parts."""
    buckets = plan_buckets(widths, n_parts=n_parts, examples_per_step=examples_per_step, **shape)
    widths = np.asarray(widths)
    return float(sum(math.ceil(len(b) / n_parts) * n_parts * member_cost(int(widths[b].max()), **shape)
                     for b in buckets))


def worthwhile_parts(widths: np.ndarray, n_parts: int, **shape) -> int:
    """`n_parts`, or 1 where dealing buckets over the parts would execute over `MAX_PART_OVERHEAD` times more.

    Parts must hold equal shapes, so a bucket's members are paired across parts and the smaller of a pair is
    padded to the larger: on geometric widths (ratio 1.5) that executes about 1.3x the work of one part, more
    than 2 CPU devices gained over one device's threads in our (loaded) measurements.
    """
    if n_parts == 1:
        return 1
    overhead = planned_cost(widths, n_parts, **shape) / planned_cost(widths, 1, **shape)
    return n_parts if overhead <= MAX_PART_OVERHEAD else 1


def part_layouts(widths: np.ndarray, buckets: list[np.ndarray],
                 n_parts: int) -> tuple[list[np.ndarray], tuple[BlockLayout, ...]]:
    """Deals each bucket's members over `n_parts` parts of equal shapes.

    Returns each part's member indices in layout order (-1 for an extra member of width 0) and its layout. A
    bucket's members go to the parts in turn, widest first, so parts differ in real units by less than a member.
    """
    widths = np.asarray(widths)
    members: list[list[int]] = [[] for _ in range(n_parts)]
    shapes = []
    offset = first = 0
    for bucket in buckets:
        count, size = math.ceil(len(bucket) / n_parts), int(widths[bucket].max())
        descending = list(bucket[::-1]) + [-1] * (count * n_parts - len(bucket))
        for p in range(n_parts):
            dealt = descending[p::n_parts]
            members[p] += sorted(dealt, key=lambda m: (m < 0, widths[m]))  # Ascending, extra members last.
        shapes.append(Bucket(size, count, offset, first))
        offset, first = offset + size * count, first + count
    index = [np.array(part, dtype=np.int64) for part in members]
    layouts = tuple(BlockLayout(np.where(part >= 0, widths[part], 0), tuple(shapes)) for part in index)
    return index, layouts


def pack_params(member_params: list[Params | None], layout: BlockLayout) -> dict:
    """One stream's parameters from unpadded MLP member parameters in layout order (None: an extra member).

    Returns {"first": [units, D + 1] (input weights, then bias), "hidden": per layer after the first, per bucket,
    {"w": [count, P, P] (out, in), "b": [count, P]}, "out": [units, C], "out_b": [K, C]}; padding is zeros.
    """
    template = next(p for p in member_params if p is not None)
    input_dim, n_classes = np.shape(template["hidden"][0]["w"])[0], np.shape(template["out"]["w"])[1]
    depth = len(template["hidden"])
    first = np.zeros((layout.n_units, input_dim + 1), np.float32)
    out = np.zeros((layout.n_units, n_classes), np.float32)
    out_b = np.zeros((len(layout.widths), n_classes), np.float32)
    hidden = [[{"w": np.zeros((b.count, b.size, b.size), np.float32), "b": np.zeros((b.count, b.size), np.float32)}
               for b in layout.buckets] for _ in range(depth - 1)]
    for bucket_index, bucket in enumerate(layout.buckets):
        for j in range(bucket.count):
            params, width = member_params[bucket.first + j], int(layout.widths[bucket.first + j])
            if params is None:
                continue
            rows = slice(bucket.offset + j * bucket.size, bucket.offset + j * bucket.size + width)
            layer = params["hidden"][0]
            first[rows] = np.concatenate([np.asarray(layer["w"])[:, :width].T, np.asarray(layer["b"])[:width, None]], 1)
            out[rows] = np.asarray(params["out"]["w"])[:width]
            out_b[bucket.first + j] = np.asarray(params["out"]["b"])
            for level, layer in enumerate(params["hidden"][1:]):
                block = hidden[level][bucket_index]
                block["w"][j, :width, :width] = np.asarray(layer["w"])[:width, :width].T
                block["b"][j, :width] = np.asarray(layer["b"])[:width]
    return {"first": first, "hidden": hidden, "out": out, "out_b": out_b}


def unpack_member(params: dict, layout: BlockLayout, k: int) -> Params:
    """Member k's parameters at its true width, in `ddjax.models.families.mlp`'s structure, from one stream's
    blocks."""
    params = {"first": np.asarray(params["first"]), "out": np.asarray(params["out"]),
              "out_b": np.asarray(params["out_b"]), "hidden": params["hidden"]}
    bucket_index, bucket = next((i, b) for i, b in enumerate(layout.buckets) if b.first <= k < b.first + b.count)
    j, width = k - bucket.first, int(layout.widths[k])
    rows = slice(bucket.offset + j * bucket.size, bucket.offset + j * bucket.size + width)
    hidden = [{"w": params["first"][rows, :-1].T, "b": params["first"][rows, -1]}]
    for layer in params["hidden"]:
        block = layer[bucket_index]
        hidden.append({"w": np.asarray(block["w"])[j, :width, :width].T, "b": np.asarray(block["b"])[j, :width]})
    return {"hidden": hidden, "out": {"w": params["out"][rows], "b": params["out_b"][k]}}
