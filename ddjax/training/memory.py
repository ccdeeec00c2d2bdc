"""Memory planning: what a sweep needs on a device, what the device has, and how many members one program holds.

Estimated from shapes before anything is allocated or compiled. A member of width w needs (float32, 4 bytes a
value): its parameters P(w) three times over (the parameters, their gradient, the updated parameters) plus the
optimizer state twice (old and new: 2 P for Adam, P for momentum, 0 for SGD); the activations of one training
batch (kept for the backward pass, and their gradient); the activations of its evaluation, which runs on the
training and test rows as one batch (convolutional families: in chunks of `eval_batch` rows, whose logits are
gathered for every row); its labels and its curves. Every device also holds a copy of the shared data
(twice: the packed layout keeps training rows and evaluation rows apart). P(w) and the activations of one example
come from the family's cost model (`ddjax.training.costs.MemberCost`, read from the model registry). Members padded to a
wider width are counted at the width they execute at. The estimate is meant to be an upper bound of what XLA
allocates (tested against the compiled program's `memory_analysis()`), so a sweep that fits by it fits.

The device's memory: `memory_stats()["bytes_limit"]` of a GPU or TPU; a CPU reports none, so a CPU's devices
(which share one host) get `HOST_FRACTION` of the host's physical RAM (`os.sysconf`) between them. The config key
`memory_budget_bytes` replaces either (bytes per device).
"""

from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ddjax.config import Config, ConfigError, INT32_MAX
from ddjax.optimizers import OPTIMIZERS
from ddjax.training.costs import MemberCost

VALUE_BYTES = 4  # float32 parameters, optimizer state, activations; int32 labels (bfloat16 is counted as float32).
HOST_FRACTION = 0.5  # Of a CPU host's RAM, for the program: the rest is the host copy of the data, Python, XLA.


class Needs(NamedTuple):
    """A sweep's memory needs: bytes every device holds once, and bytes of one member by the width it runs at."""

    shared_bytes: int
    member_bytes: Callable[[int], int]


class Budget(NamedTuple):
    """Bytes a program may use on each of `n_devices` devices, and where that figure comes from."""

    per_device: int
    n_devices: int
    source: str


def sweep_needs(config: Config, cost: MemberCost, *, n_classes: int, example_bytes: int, n_train_rows: int,
                n_test_rows: int, batch_size: int, n_evals: int, eval_rows: int | None = None) -> Needs:
    """The memory needs of `config`'s members, from the family's cost model (`ddjax.training.costs`) and the
    data's shapes (`example_bytes`: one stored example); `eval_rows`: the rows an evaluation takes at once (None:
    all of them)."""
    shared = 2 * (n_train_rows + n_test_rows) * (example_bytes + VALUE_BYTES) + n_test_rows * VALUE_BYTES
    batch = batch_size or n_train_rows
    rows = n_train_rows + n_test_rows
    rows_at_once = rows if eval_rows is None else min(rows, eval_rows)
    gathered_logits = n_classes * rows if rows_at_once < rows else 0  # Chunks' logits, gathered for every row.

    def member_bytes(width: int) -> int:
        params, activations = cost.parameters(width), cost.activations(width)
        values = (3 * params + 2 * OPTIMIZERS[config.optimizer].state_copies * params + 2 * batch * activations
                  + rows_at_once * activations + rows + gathered_logits + 4 * n_evals)
        return values * VALUE_BYTES

    return Needs(shared, member_bytes)


def host_memory_bytes() -> int | None:
    """The host's physical RAM (POSIX `os.sysconf`), or None where it is not reported."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def device_budget(devices: Sequence, override: int = 0) -> Budget:
    """What a program may use on each of `devices`: `override` bytes if > 0, else the devices' own limit.

    GPU/TPU: the smallest `memory_stats()["bytes_limit"]`. CPU (no memory stats): `HOST_FRACTION` of the host's
    RAM shared by all of its devices; unknown RAM gives no limit.
    """
    devices = list(devices)
    if override > 0:
        return Budget(override, len(devices), f"memory_budget_bytes={override}")
    # In a multi-host job only this process's devices can be asked; every host is taken to be alike.
    local = [device for device in devices if device.process_index == devices[0].client.process_index()] or devices
    limits = [(device.memory_stats() or {}).get("bytes_limit") for device in local]
    if all(limit for limit in limits):
        return Budget(min(limits), len(devices), f"the memory of {devices[0].device_kind} ({_gib(min(limits))})")
    ram = host_memory_bytes()
    if ram is None:
        return Budget(2**62, len(devices), "no limit (the host reports no memory)")
    share = int(ram * HOST_FRACTION) // len(local)
    return Budget(share, len(devices), f"{HOST_FRACTION:.0%} of the host's {_gib(ram)} RAM over {len(local)} "
                                       f"CPU device{'s' * (len(local) > 1)}")


def member_capacity(needs: Needs, budget: Budget) -> int:
    """Bytes of members one program may hold over all of its devices (each device also holds the shared data)."""
    return budget.n_devices * max(budget.per_device - needs.shared_bytes, 0)


def refuse_oversize(config: Config, needs: Needs, budget: Budget) -> None:
    """Raises ConfigError (one line) if the widest member cannot fit on one device even alone, or if a width
    overflows the int32 widths of the program."""
    widest = max(config.width)
    alone = needs.shared_bytes + needs.member_bytes(widest)
    if alone > budget.per_device:
        raise ConfigError(f"width={widest} is not allowed: one member of that width needs about {_gib(alone)} of "
                          f"device memory, more than the {_gib(budget.per_device)} of {budget.source}")
    if widest > INT32_MAX:
        raise ConfigError(f"width={widest} is not allowed: at most {INT32_MAX} (widths are int32 in the program)")


def chunks_needed(counts: Sequence[int], bytes_each: Sequence[int], capacity: int, max_members: int) -> int | None:
    """The fewest programs s such that one chunk of each group (ceil(count / s) members of each group, side by
    side) fits in `capacity` bytes and in `max_members` members (0: any number); None if even s = max(counts)
    (one member of each group) does not."""
    for s in range(1, max(counts) + 1):
        sizes = [math.ceil(n / s) for n in counts]
        total = sum(size * b for size, b in zip(sizes, bytes_each))
        if total <= capacity and (max_members <= 0 or sum(sizes) <= max_members):
            return s
    return None


def chunk_indices(n: int, n_programs: int) -> list[np.ndarray]:
    """Positions 0..n-1 cut into `n_programs` chunks of equal size ceil(n / n_programs); the last ones are padded
    with copies of their own last position (results of copies are dropped), so every chunk has the same shapes."""
    size = math.ceil(n / n_programs)
    chunks = []
    for j in range(n_programs):
        chunk = np.arange(j * size, min((j + 1) * size, n))
        if len(chunk) == 0:
            chunk = np.array([n - 1])
        chunks.append(np.concatenate([chunk, np.full(size - len(chunk), chunk[-1])]))
    return chunks


def _gib(n_bytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} B"
