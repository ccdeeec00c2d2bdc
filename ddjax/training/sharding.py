"""The member axis split over the devices: members train independently, so each device runs its share.

Every leaf of the trainer's per-member inputs and states carries the member axis (or, packed, the stream axis)
first. `spread` pads that axis to a multiple of the device count by repeating the first member (the copies
train alongside the others and `unpad` drops them) and splits it over a one-axis mesh of up to one device per
member; the shared data is replicated. The compiled program holds no collective operation (tested): no device
waits for another. With a single device, or a single member per group, nothing is placed and nothing changes.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MEMBER_AXIS = "members"


def split_cpu(n_devices: int) -> None:
    """Makes JAX's CPU platform `n_devices` devices; must run before JAX executes anything in this process."""
    if hasattr(jax.config, "jax_num_cpu_devices"):  # A recent option; an older jax keeps one CPU device.
        jax.config.update("jax_num_cpu_devices", n_devices)


def member_mesh(devices: Sequence[jax.Device], n_members: int) -> Mesh | None:
    """A one-axis mesh over as many of `devices` as there are members to split, or None when that is one.

    More devices than members would only train padding copies (on a CPU split into host devices they share the
    same cores and slow the real members down, measured). A multi-host job keeps every device: each process
    must hold a share of the programs it runs.
    """
    devices = list(devices)
    if jax.process_count() == 1:
        devices = devices[:n_members]
    return Mesh(np.array(devices), (MEMBER_AXIS,)) if len(devices) > 1 else None


def padded_size(n: int, n_devices: int) -> int:
    """The smallest multiple of `n_devices` that holds `n` members."""
    return -(-n // n_devices) * n_devices


def leading_size(tree: Any) -> int:
    """The length of the member axis shared by every leaf of `tree`."""
    return int(np.shape(jax.tree.leaves(tree)[0])[0])


def pad_members(tree: Any, multiple: int) -> Any:
    """`tree` as host arrays, the member axis padded to a multiple of `multiple` with copies of the first member."""
    extra = padded_size(leading_size(tree), multiple) - leading_size(tree)

    def pad(leaf):
        leaf = np.asarray(leaf)
        return np.concatenate([leaf, np.repeat(leaf[:1], extra, axis=0)]) if extra else leaf

    return jax.tree.map(pad, tree)


def spread(tree: Any, mesh: Mesh) -> Any:
    """`tree` with every leaf's leading axis padded to a multiple of the mesh size and split over the mesh."""
    return split(pad_members(tree, mesh.size), mesh)


def spread_each(trees: tuple[Any, ...], mesh: Mesh) -> tuple[Any, ...]:
    """`spread` of each tree (each group of members has its own member axis)."""
    return tuple(spread(tree, mesh) for tree in trees)


def split(tree: Any, mesh: Mesh) -> Any:
    """`tree` (leading axes already a multiple of the mesh size) split over the mesh; a no-op if it already is."""
    return place(tree, NamedSharding(mesh, PartitionSpec(MEMBER_AXIS)))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """`tree` with a full copy on every device of the mesh."""
    return place(tree, NamedSharding(mesh, PartitionSpec()))


def place(tree: Any, sharding: NamedSharding) -> Any:
    """`tree` laid out by `sharding`. In a multi-host job every process holds the whole host value and builds
    only its own devices' shards from it (`device_put` would compare the hosts' values, and NaN != NaN)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def place_leaf(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return jax.device_put(leaf, sharding)  # Already global: a no-op, or a reshard.
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place_leaf, tree)


def unpad(tree: Any, n: int) -> Any:
    """The first `n` members of every leaf (drops the copies `spread` added)."""
    return tree if leading_size(tree) == n else jax.tree.map(lambda leaf: leaf[:n], tree)
