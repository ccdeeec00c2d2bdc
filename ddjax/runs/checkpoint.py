"""Checkpoints of a sweep's training state: one file per run folder, written atomically, verified on load.

`checkpoint.npz` is a zip of `meta.npy` (a JSON string: step, config, the state's pytree signature, elapsed time)
and one `leaf_NNNNN.npy` per leaf of the state pytree, stored as raw bytes so any dtype round-trips exactly.
Nothing here knows what the state holds: it is flattened with `jax.tree`, and on restore the saved signature
(tree structure, leaf shapes and dtypes) must equal that of a template built by the trainer, else the
checkpoint is refused. Files are written to `NAME.tmp` and renamed into place, so a reader (or a resumed run)
sees the old checkpoint or the new one, never half of one; zip CRCs catch a file corrupted afterwards.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import zipfile
from typing import Any, Callable, NamedTuple

import numpy as np

from ddjax.config import ConfigError, config_differences
from ddjax.runs.files import CHECKPOINT_FILE

# The layout of the saved state: the one engine's `ddjax.training.engine.State` for a trained program, and for a
# run of several programs every member's curves, divergence steps and the plan's carry. A checkpoint of another
# format is refused in one line naming it.
FORMAT = 3
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # A fixed timestamp keeps the bytes of a file a function of its content.


class Checkpoint(NamedTuple):
    """A loaded checkpoint: training resumes at loop step `step` from `leaves` (host arrays)."""

    step: int
    config: dict[str, Any]
    signature: dict[str, Any]
    leaves: list[np.ndarray]
    elapsed_seconds: float
    path: str


def state_signature(tree: Any) -> dict[str, Any]:
    """Tree structure plus (shape, dtype) of every leaf; leaves may be arrays or `jax.ShapeDtypeStruct`s."""
    import jax

    leaves, treedef = jax.tree.flatten(tree)
    return {"treedef": str(treedef),
            "leaves": [[list(np.shape(leaf)), np.dtype(leaf.dtype).name] for leaf in leaves]}


def write_atomically(path: str | os.PathLike, entries: dict[str, bytes], *,
                     before_rename: Callable[[], None] | None = None) -> None:
    """Writes a zip of `entries` (stored, fixed timestamps) to `path` via `path.tmp`, fsync and rename."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:
        with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
            for name, data in entries.items():
                archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data)
        file.flush()
        os.fsync(file.fileno())
    if before_rename is not None:
        before_rename()
    os.replace(tmp, path)
    # Make the rename itself durable, not only the file's bytes.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Like `np.savez`, but atomic and byte-for-byte reproducible (identical arrays give identical files)."""
    write_atomically(path, {f"{name}.npy": _npy(array) for name, array in arrays.items()})


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: Any, *, config: dict[str, Any],
                    elapsed_seconds: float = 0.0) -> None:
    """Atomically replaces `run_dir/checkpoint.npz` by `state` (any pytree of arrays) at loop step `step`."""
    import jax

    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(state)]
    meta = {"format": FORMAT, "step": int(step), "config": config, "signature": state_signature(state),
            "elapsed_seconds": float(elapsed_seconds)}
    entries = {"meta.npy": _npy(np.array(json.dumps(meta)))}
    for i, leaf in enumerate(leaves):
        # Raw bytes: the dtype comes back from the signature, so bfloat16 and friends round-trip too.
        entries[f"leaf_{i:05d}.npy"] = _npy(np.ascontiguousarray(leaf).reshape(-1).view(np.uint8))
    write_atomically(pathlib.Path(run_dir) / CHECKPOINT_FILE, entries)


def load_checkpoint(run_dir: str | os.PathLike) -> Checkpoint | None:
    """The checkpoint in `run_dir`, or None if there is none; a corrupt or truncated one raises ConfigError."""
    path = pathlib.Path(run_dir) / CHECKPOINT_FILE
    if not path.exists():
        return None
    return parse_checkpoint(path, str(path))


def parse_checkpoint(source: str | os.PathLike | bytes, path: str) -> Checkpoint:
    """The checkpoint in file `source` (or in its bytes, e.g. sent by another host); `path` names it in errors."""
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            meta = json.loads(str(np.lib.format.read_array(io.BytesIO(archive.read("meta.npy")))))
            if meta.get("format") != FORMAT:
                raise _OldFormat(meta.get("format"))
            step, signature = int(meta["step"]), meta["signature"]
            leaves = []
            for i, (shape, dtype) in enumerate(signature["leaves"]):
                raw = np.lib.format.read_array(io.BytesIO(archive.read(f"leaf_{i:05d}.npy")))
                leaves.append(raw.view(_dtype(dtype)).reshape(shape))
        return Checkpoint(step, dict(meta["config"]), signature, leaves, float(meta.get("elapsed_seconds", 0.0)),
                          path)
    except _OldFormat as error:
        raise ConfigError(f"checkpoint {str(path)!r} has format {error.args[0]}, and this version of ddjax reads "
                          f"format {FORMAT} only; delete it to restart the run from step 0") from None
    except Exception as error:  # Any failure to parse means the file cannot be trusted.
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise ConfigError(f"checkpoint {str(path)!r} is corrupt or truncated ({reason}); delete it to restart "
                          f"the run from step 0") from None


class _OldFormat(Exception):
    """A checkpoint written in another `FORMAT`."""


def check_config(checkpoint: Checkpoint, config: dict[str, Any]) -> None:
    """Raises ConfigError unless `checkpoint` was written by a run of `config`."""
    differences = config_differences(checkpoint.config, config)
    if differences:
        raise ConfigError(f"checkpoint {checkpoint.path!r} was written by another config (differing keys: "
                          f"{', '.join(differences)}); delete it to restart the run from step 0")


def restore_state(checkpoint: Checkpoint, template: Any, *, host: bool = False) -> Any:
    """The checkpoint's leaves in the structure of `template` (a pytree of arrays or `ShapeDtypeStruct`s), as jax
    arrays, or with `host` as writable numpy arrays (a staged solve's carry, `ddjax.solvers.feature_blocks`).

    Raises ConfigError if the saved signature differs from the template's, e.g. a checkpoint written by another
    version of the trainer, or by a packed sweep cut into parts for another device count.
    """
    import jax
    import jax.numpy as jnp

    expected = state_signature(template)
    if checkpoint.signature != expected:
        saved, wanted = checkpoint.signature, expected
        if saved["treedef"] != wanted["treedef"]:
            what = "its state has another tree structure"
        elif len(saved["leaves"]) != len(wanted["leaves"]):
            what = f"it has {len(saved['leaves'])} state leaves, expected {len(wanted['leaves'])}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(saved["leaves"], wanted["leaves"])) if a != b)
            what = f"state leaf {i} is {saved['leaves'][i]}, expected {wanted['leaves'][i]}"
        raise ConfigError(f"checkpoint {checkpoint.path!r} does not match this trainer's state ({what}; written by "
                          f"another ddjax version, or on another number of devices?); delete it to restart the run "
                          f"from step 0")
    treedef = jax.tree.structure(template)
    return jax.tree.unflatten(treedef, [np.array(leaf) if host else jnp.asarray(leaf) for leaf in checkpoint.leaves])


def discard_partial_write(run_dir: str | os.PathLike) -> None:
    """Removes a `checkpoint.npz.tmp` left by a run killed while writing; the previous checkpoint stays valid."""
    (pathlib.Path(run_dir) / (CHECKPOINT_FILE + ".tmp")).unlink(missing_ok=True)


def _dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:  # bfloat16 and other ml_dtypes are known to jax, not to numpy.
        import jax.numpy as jnp

        return np.dtype(jnp.dtype(name))
