"""Several hosts (processes) training one sweep: start-up, gathering members to host, and process 0's decisions.

A multi-host job runs the same command on every host; `initialize` joins them (`jax.distributed.initialize`), after
which `jax.devices()` lists every host's devices and the member axis is split over all of them
(`ddjax.training.sharding`). Training needs no communication; only outside the loop do the hosts exchange data:
`gather` copies every member's state to each host (a checkpoint holds every host's members), and `from_main` runs
a step that touches the run folder on process 0 alone and hands its outcome (or its ConfigError) to every
process, so the other hosts write nothing and agree with process 0 on whether to go on. With one process every
function here is a no-op or a plain call.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from ddjax.config import ConfigError


class Cluster(NamedTuple):
    """How to join a multi-host job; None fields are left to JAX's own detection (Cloud TPU, Slurm, Open MPI)."""

    coordinator_address: str | None
    num_processes: int | None
    process_id: int | None
    reason: str  # What asked for it: "--distributed", or the environment variable that did.


def detect_cluster(distributed: bool = False, *, coordinator_address: str | None = None,
                   num_processes: int | None = None, process_id: int | None = None,
                   environ: dict[str, str] | None = None) -> Cluster | None:
    """The multi-host job this process belongs to, or None for a single-process run.

    A job is recognized by `distributed` (the `--distributed` flag), by `JAX_COORDINATOR_ADDRESS` (with
    `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`), or by a Cloud TPU pod slice's `TPU_WORKER_HOSTNAMES` or
    `TPU_PROCESS_ADDRESSES` naming more than one host. Explicit arguments win over the variables.
    """
    environ = os.environ if environ is None else environ
    coordinator_address = coordinator_address or environ.get("JAX_COORDINATOR_ADDRESS") or None
    num_processes = num_processes if num_processes is not None else _env_int(environ, "JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int(environ, "JAX_PROCESS_ID")
    pod_hosts = environ.get("TPU_PROCESS_ADDRESSES") or environ.get("TPU_WORKER_HOSTNAMES") or ""
    if distributed:
        reason = "--distributed"
    elif environ.get("JAX_COORDINATOR_ADDRESS"):
        reason = "JAX_COORDINATOR_ADDRESS"
    elif len([h for h in pod_hosts.split(",") if h.strip()]) > 1:
        reason = "TPU_PROCESS_ADDRESSES" if environ.get("TPU_PROCESS_ADDRESSES") else "TPU_WORKER_HOSTNAMES"
    else:
        return None
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"invalid number of processes {num_processes}; allowed: a whole number >= 1")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ConfigError(f"invalid process id {process_id}; allowed: 0 .. {num_processes - 1} "
                          f"(one per process of {num_processes})")
    return Cluster(coordinator_address, num_processes, process_id, reason)


def _env_int(environ, name: str) -> int | None:
    text = environ.get(name)
    if text is None or text == "":
        return None
    if not text.strip().isdigit():
        raise ConfigError(f"invalid {name}={text!r}; allowed: a whole number >= 0")
    return int(text)


def initialize(cluster: Cluster) -> None:
    """Joins the job (`jax.distributed.initialize`); must run before JAX touches a device in this process."""
    try:
        jax.distributed.initialize(coordinator_address=cluster.coordinator_address,
                                   num_processes=cluster.num_processes, process_id=cluster.process_id)
    except (RuntimeError, ValueError, TypeError) as error:
        reason = " ".join(str(error).split()).rstrip(".")
        hint = ("; give --coordinator HOST:PORT, --num-processes N and --process-id I (or JAX_COORDINATOR_ADDRESS, "
                "JAX_NUM_PROCESSES, JAX_PROCESS_ID), or run where JAX detects the job (Cloud TPU, Slurm, Open MPI)"
                if isinstance(error, ValueError) else "")
        raise ConfigError(f"cannot join the multi-host job ({cluster.reason}): {reason}{hint}") from None


def is_main() -> bool:
    """True on the process that writes the run folder (process 0; the only one in a single-process run)."""
    return jax.process_index() == 0


def gather(tree: Any) -> Any:
    """`tree` with every leaf whole on this host: arrays split over several hosts' devices are gathered (every
    process must call it); anything else is returned as it is."""
    leaves = jax.tree.leaves(tree)
    if all(getattr(leaf, "is_fully_addressable", True) for leaf in leaves):
        return tree
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def from_main(work: Callable[[], Any]) -> Any:
    """Runs `work` on process 0 only and returns its value on every process (JSON round-tripped elsewhere).

    A ConfigError (or any other failure) of `work` is raised on every process, so all of them stop together.
    """
    if jax.process_count() == 1:
        return work()
    outcome, payload = None, b""
    if is_main():
        try:
            outcome = work()
            payload = b"o" + json.dumps(outcome).encode()
        except ConfigError as error:
            payload = b"e" + str(error).encode()
        except Exception as error:  # Shared so the other hosts stop too; raised here as it is.
            payload = b"x" + f"process 0 failed: {type(error).__name__}: {error}".encode()
            share_bytes(payload)
            raise
    payload = share_bytes(payload)
    if payload[:1] != b"o":
        raise ConfigError(" ".join(payload[1:].decode().split()))
    return outcome if is_main() else json.loads(payload[1:])


def share_bytes(payload: bytes) -> bytes:
    """Process 0's `payload` on every process (the others' argument is ignored); every process must call it.

    Sent in pieces of at most 1 GiB, the size as two int32 (JAX arrays are 32-bit unless x64 is on).
    """
    from jax.experimental import multihost_utils

    high, low = divmod(len(payload), _PIECE)
    high, low = (int(v) for v in multihost_utils.broadcast_one_to_all(np.array([high, low], np.int32)))
    size, pieces = high * _PIECE + low, []
    for begin in range(0, max(size, 1), _PIECE):  # At least one piece: a zero-size broadcast carries nothing.
        buffer = np.zeros(max(min(_PIECE, size - begin), 1), np.uint8)
        if is_main() and size:
            buffer[:] = np.frombuffer(payload[begin:begin + buffer.size], np.uint8)
        pieces.append(np.asarray(multihost_utils.broadcast_one_to_all(buffer)).tobytes())
    return b"".join(pieces)[:size]


_PIECE = 1 << 30
