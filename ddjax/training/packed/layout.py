"""Where each member's hidden units sit in a packed stream: slots, parts, and the packed parameter rows.

Host-side planning for `ddjax.training.packed.model` (numpy only, nothing traced): a stream's members take
whole slots of `slot_size` units side by side (`make_layout`, with the slot size chosen by `choose_slot_size`);
members may be cut into parts of nearly equal units with equal shapes (`balanced_parts`, `part_layouts`), one
stream per part, as many parts as the devices need (`parts_per_stream`); extra members of a part never train
(their learning rate is 0, `ddjax.training.streams.stream_setup`); `pack_params` and `unpack_member` convert
between member parameters and a stream's parameter rows.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ddjax.models.family import Params


class Layout(NamedTuple):
    """Where each member of a stream lives in its packed layer (host arrays; every stream's have equal shapes)."""

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
    last member; extra members have width 0, no slot, and a zero learning rate (`ddjax.training.streams.stream_setup`).
    """
    layouts = [make_layout(np.asarray(widths)[part], slot_size) for part in parts]
    n_slots, n_members = max(len(lay.slot_member) for lay in layouts), max(len(part) for part in parts)

    def padded(layout):
        extra = n_slots - len(layout.slot_member)
        slot_member = np.concatenate([layout.slot_member, np.full(extra, layout.slot_member[-1])])
        return Layout(np.pad(layout.widths, (0, n_members - len(layout.widths))), slot_size, slot_member,
                      np.repeat(slot_member, slot_size), np.pad(layout.unit_mask, (0, extra * slot_size)))

    return tuple(padded(layout) for layout in layouts)


def parts_per_stream(n_streams: int, n_devices: int) -> int:
    """Into how many parts the packed path cuts each stream's members so that the streams fill every device.

    1 when the streams alone give every device at least one; else the fewest parts p for which the
    `n_streams * p` streams split evenly over the devices (with 1 stream and 2 devices: 2 halves).
    """
    return 1 if n_streams >= n_devices else n_devices // math.gcd(n_streams, n_devices)


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


def unpack_member(params: np.ndarray, layout: Layout, k: int, n_classes: int) -> dict[str, np.ndarray]:
    """Member k's first-layer and read-out weights at its true width, from one stream's packed parameters."""
    params = np.asarray(params)
    units = params[:layout.n_units][(layout.unit_member == k) & (layout.unit_mask > 0)]
    input_dim = params.shape[1] - 1 - n_classes
    return {"first_w": units[:, :input_dim].T, "first_b": units[:, input_dim], "out_w": units[:, input_dim + 1:],
            "out_b": params[layout.n_units + k, input_dim + 1:]}
