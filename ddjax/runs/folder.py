"""The run folder's life: created holding config.json, checkpointed while training, finished by report.json.

A folder is one of: absent or empty (a new run may start there), an unfinished run (config.json, perhaps
checkpoint.npz, no report.json; `--resume` continues it), a finished run (report.json, written last), or
something else (a file, or a folder that is not a run), which is never touched without `--force`.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import uuid
from typing import Any, NamedTuple

from ddjax.config import ConfigError
from ddjax.runs.files import CONFIG_FILE, REPORT_FILE


class NewRun(NamedTuple):
    """A run folder created by `create`, and what to remove to leave no trace of it."""

    path: pathlib.Path
    existed: bool  # The folder was there (empty) before; discarding empties it instead of removing it.
    created_parents: tuple[pathlib.Path, ...]  # Deepest first.


def status(path: str | os.PathLike) -> str:
    """One of "absent", "empty", "file", "other" (a folder that is not a run), "unfinished", "finished"."""
    path = pathlib.Path(path)
    if not path.exists():
        return "absent"
    if not path.is_dir():
        return "file"
    if not any(path.iterdir()):
        return "empty"
    try:
        read_meta(path)
    except ConfigError:
        return "other"
    return "finished" if (path / REPORT_FILE).exists() else "unfinished"


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The run's config.json; ConfigError if it is missing or is not a ddjax run's."""
    file = pathlib.Path(path) / CONFIG_FILE
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        reason = "no config.json" if isinstance(error, FileNotFoundError) else f"unreadable config.json: {error}"
        raise ConfigError(f"{str(path)!r} is not a ddjax run ({' '.join(reason.split())})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or "ddjax_version" not in meta:
        raise ConfigError(f"{str(path)!r} is not a ddjax run (its config.json has no ddjax config)")
    return meta


def create(out: str | os.PathLike, meta: dict[str, Any], *, force: bool = False) -> NewRun:
    """Creates run folder `out` holding config.json (atomically: it appears complete or not at all).

    An existing non-empty folder is replaced only with `force`. Raises ConfigError, having created nothing, if
    `out` is taken or cannot be written.
    """
    out = pathlib.Path(out)
    state = status(out)
    if state == "file":
        raise ConfigError(f"output folder {str(out)!r} exists and is a file; choose another --out")
    refusals = {"other": "exists and is not a ddjax run", "unfinished": "is an unfinished run (continue it with "
                "--resume)", "finished": "is a finished run"}
    if state in refusals and not force:
        raise ConfigError(f"output folder {str(out)!r} {refusals[state]}; pass --force to replace it")
    cwd = pathlib.Path.cwd().resolve()
    if state in refusals and out.resolve() in (cwd, *cwd.parents):
        raise ConfigError(f"output folder {str(out)!r} holds the current folder; --force will not replace it")
    parent = out.absolute().parent
    ancestors = (parent, *parent.parents)
    existing = next(p for p in ancestors if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"output folder {str(out)!r} is not writable: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {str(out)!r} is not writable: no write permission in {str(existing)!r}")
    missing = tuple(p for p in ancestors if not p.exists())
    staging = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        # mkdir, not mkdtemp, so the folder gets the usual permissions (mkdtemp's are owner-only).
        staging = parent / f".{out.absolute().name}.{uuid.uuid4().hex[:12]}.tmp"
        staging.mkdir()
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        if state == "empty":
            out.rmdir()
        elif state != "absent":
            shutil.rmtree(out)  # Only with force, and only once the new folder is known to be writable.
        staging.rename(out)
    except OSError as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(missing)
        reason = f"{error.strerror}: {error.filename!r}" if error.strerror and error.filename else str(error)
        raise ConfigError(f"output folder {str(out)!r} is not writable ({reason})") from None
    return NewRun(out, state == "empty", missing)


def discard(run: NewRun) -> None:
    """Removes everything `create` made, for a run refused after its folder was created."""
    if run.existed:
        for child in run.path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    else:
        shutil.rmtree(run.path, ignore_errors=True)
    _remove_empty(run.created_parents)


def unfinished_run(path: str | os.PathLike) -> dict[str, Any]:
    """The config.json of the unfinished run at `path`; ConfigError if `path` is not one."""
    state = status(path)
    if state == "absent":
        raise ConfigError(f"cannot resume {str(path)!r}: no such folder")
    if state == "finished":
        raise ConfigError(f"cannot resume {str(path)!r}: it is a finished run (it has {REPORT_FILE}); start a new run "
                          f"with --out, or replace it with --force")
    if state == "file":
        raise ConfigError(f"cannot resume {str(path)!r}: it is a file, not a run folder")
    if state != "unfinished":
        try:
            read_meta(path)
        except ConfigError as error:
            raise ConfigError(f"cannot resume: {error}") from None
    return read_meta(path)


def write_text_atomically(path: pathlib.Path, text: str) -> None:
    """Writes `path` via a temporary file and a rename, so it is never seen half-written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _remove_empty(folders: tuple[pathlib.Path, ...]) -> None:
    for folder in folders:  # Deepest first, so each is empty once its child is gone.
        try:
            folder.rmdir()
        except OSError:
            return
