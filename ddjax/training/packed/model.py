"""The packed model of one-hidden-layer families: all members' hidden units side by side in ONE wide layer.

A stream's members (see `ddjax.training.streams`, the engine that trains them) have their hidden units laid out
in slots of `slot_size` units (a member takes ceil(width / slot_size) slots, the unused units of its last slot are
masked padding), so the first layer of the whole stream is one `[units, D + 1]` matmul (the inputs carry a
constant 1 for the bias). A stream's parameters are one `[units + K, D + 1 + C]` matrix: per unit its input
weights, bias and read-out weights, then per member a row holding its read-out bias, so the optimizer, the
finiteness check and the keep-select are one kernel each. Activations are kept feature-major (`[units, batch]`):
slots are contiguous blocks, each slot's read-out is one fused loop over batch vectors, and a sorted segment sum
adds the slots of each member. It executes almost only useful arithmetic and gives the same numbers as training
each member alone (tested against serial mode). Where the units sit (slots, parts, parameter rows) is planned on
the host by `ddjax.training.packed.layout`.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import Config
from ddjax.data.datasets import Dataset
from ddjax.models.registry import PackedForm, packed_form
from ddjax.training.packed.layout import Layout, balanced_parts, choose_slot_size, pack_params, part_layouts
from ddjax.training.costs import member_cost, padding_efficiency
from ddjax.training.spec import TrainSpec, compute_cast
from ddjax.training.streams import StreamSetup, stream_setup


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
    spec: TrainSpec
    macs: Callable[[int], int]  # The family's multiply-accumulates at a width (`ddjax.training.costs`).

    @property
    def layout(self) -> Layout:
        """The first part's layout: its shapes are every part's."""
        return self.layouts[0]

    @property
    def efficiency(self) -> float:
        """Useful / executed multiply-accumulates over all parts (`ddjax.training.costs.padding_efficiency`): each
        member executes the units of its slots (a part's extra slots are its last member's)."""
        true = [w for lay in self.layouts for w in lay.widths if w > 0]
        executed = [n for lay in self.layouts for n in np.bincount(lay.unit_member) if n > 0]
        return padding_efficiency(self.macs, true, executed)

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

    def _row_member(self, part: jax.Array) -> jax.Array:
        return jnp.asarray(self.layout_arrays(part).row_member)

    def per_entry(self, part: jax.Array, values: jax.Array) -> jax.Array:
        """Member values [K] broadcast onto the parameter rows [rows, 1] of the stream holding `part`."""
        return values[self._row_member(part)][:, None]

    def member_sums(self, part: jax.Array, rows: jax.Array) -> jax.Array:
        """[K] sums over each member's parameter rows."""
        return jax.ops.segment_sum(jnp.sum(rows, axis=1), self._row_member(part), len(self.layout.widths))

    def group_mask(self, pattern: str) -> np.ndarray:
        """[rows, columns] True where the entry is, in its member, a parameter whose path matches `pattern`: a unit
        row's input weights (`first_layer`/0/w or /w), bias and read-out weights (out/w), a member row's read-out
        bias (out/b)."""
        n_units, n_inputs = self.layout.n_units, self.spec.input_dim
        layer = f"{self.form.first_layer}/0" if self.form.first_layer == "hidden" else self.form.first_layer
        columns = [(f"{layer}/w", n_inputs), (f"{layer}/b", 1), ("out/w", self.spec.n_classes)]
        unit_row = np.concatenate([np.full(n, fnmatch.fnmatchcase(path, pattern)) for path, n in columns])
        member_row = np.zeros_like(unit_row)
        member_row[n_inputs + 1:] = fnmatch.fnmatchcase("out/b", pattern)
        return np.concatenate([np.broadcast_to(unit_row, (n_units, len(unit_row))),
                               np.broadcast_to(member_row, (len(self.layout.widths), len(unit_row)))])

    def pack(self, member_params: list, part: int) -> np.ndarray:
        """The stream's parameter rows from its members' parameters (the extra members, last, own none)."""
        return pack_params([p for p in member_params if p is not None], self.layouts[part], self.form.first_layer)


def packed_setup(config: Config, dataset: Dataset, spec: TrainSpec, coords: dict[str, np.ndarray],
                 n_parts: int = 1) -> StreamSetup:
    """Lays out a cartesian sweep of a one-hidden-layer family as packed streams, each batch stream's slots cut
    into `n_parts` parts of nearly equal units (`layout.balanced_parts`)."""
    form = packed_form(config.model, config.depth)

    def arrange(widths, n_parts):
        slot_size = choose_slot_size(widths, spec.input_dim, spec.n_classes)
        parts = balanced_parts(widths, slot_size, n_parts)
        layouts = part_layouts(widths, slot_size, parts)
        index = [np.concatenate([part, np.full(len(layout.widths) - len(part), -1)]) for part, layout in
                 zip(parts, layouts)]
        return index, PackedModel(form, layouts, spec, member_cost(config, (spec.input_dim,), spec.n_classes).macs)

    return stream_setup(config, dataset, spec, coords, n_parts, arrange)
