"""A run's own family and data set (a user's, registered by a .py file): recorded when it starts, checked on resume.

config.json records, for the model and the data set a user registered, the file that registered it
(`registered_in`) and that file's sha256 (`registered_sha256`). Nothing here runs a file: opening a run folder
never runs code. A resumed run needs its names registered in this process, by files the user named
(`python -m ddjax.run --resume DIR --registered-in FILE`, or the experiment argument) or in a notebook; a named
file whose sha256 differs from the recorded one is refused before it runs, and so is a registering file that
has changed since the run began.
"""

from __future__ import annotations

from typing import Any

from ddjax.data import registry as datasets
from ddjax.data.arrays import is_npz
from ddjax.errors import ConfigError
from ddjax.models import registry as models
from ddjax.registration import file_sha256

# Config key -> (the table of names, the built-in names, a user's name -> the file that registered it).
TABLES = {"model": (models.MODELS, models.BUILT_IN, models.REGISTERED_IN),
          "dataset": (datasets.DATASETS, datasets.BUILT_IN, datasets.REGISTERED_IN)}


def recorded_registrations(config: Any) -> dict[str, dict[str, str | None]]:
    """The config.json entries of `config`'s user-registered family and data set: `registered_in` (key -> file,
    None for a notebook cell) and `registered_sha256` (key -> the file's sha256 now); {} if both are built in."""
    files = {key: registered_in[getattr(config, key)] for key, (_, _, registered_in) in TABLES.items()
             if getattr(config, key) in registered_in}
    if not files:
        return {}
    hashes = {key: file_sha256(file) for key, file in files.items() if file is not None}
    return {"registered_in": files, "registered_sha256": {k: v for k, v in hashes.items() if v is not None}}


def user_names(meta: dict[str, Any]) -> dict[str, str]:
    """Config key -> name, for the run's family and data set that are not built in (nor an npz:PATH file)."""
    config = meta.get("config", {})
    return {key: config[key] for key, (_, built_in, _) in TABLES.items()
            if isinstance(config.get(key), str) and config[key] not in built_in
            and not (key == "dataset" and is_npz(config[key]))}


def check_named_files(meta: dict[str, Any], files: list[str], folder: str) -> None:
    """Refuses, in one line and before any of them runs, files named to register a run's names that the run
    cannot use: a run with nothing to register, an unreadable file, or one whose sha256 is not one the run
    recorded (a run without recorded hashes takes the named files as they are)."""
    if files and not user_names(meta):
        raise ConfigError(f"--registered-in: the family and data set of {folder!r} are built in; it needs no file")
    recorded = meta.get("registered_sha256") or {}
    for file in files:
        digest = file_sha256(file)
        if digest is None:
            raise ConfigError(f"--registered-in {file!r}: no such file, or it cannot be read")
        if recorded and digest not in recorded.values():
            expected = ", ".join(f"{key} from {_file(meta, key)!r}: {value[:16]}" for key, value in recorded.items())
            raise ConfigError(f"cannot resume {folder!r} with {file!r}: its sha256 {digest[:16]} is not the one "
                              f"the run recorded ({expected}): another file, or this one changed since the run began")


def check_registrations(meta: dict[str, Any], folder: str) -> None:
    """Raises ConfigError (one line) unless the run's own family and data set are registered in this process,
    each by a file whose sha256 is the recorded one (or without a file, as in a notebook cell)."""
    for key, name in user_names(meta).items():
        table, _, registered_in = TABLES[key]
        recorded = _file(meta, key)
        if name not in table:
            if recorded is None:
                raise ConfigError(f"cannot resume {folder!r}: its {key} {name!r} is not registered, and its "
                                  f"config.json names no file that registers it (a notebook cell); call "
                                  f"ddjax.register_{key}({name!r}, ...) and then ddjax.resume_experiment")
            raise ConfigError(f"cannot resume {folder!r}: its {key} {name!r} is registered by {recorded!r}, which "
                              f"runs only when named: {resume_command(meta, folder)}")
        expected = (meta.get("registered_sha256") or {}).get(key)
        origin = registered_in.get(name)
        if expected and origin is not None and file_sha256(origin) != expected:
            raise ConfigError(f"cannot resume {folder!r}: its {key} {name!r} is registered here by {origin!r}, "
                              f"whose sha256 {(file_sha256(origin) or 'unreadable')[:16]} is not the one the run "
                              f"recorded ({expected[:16]}); the file has changed since the run began")


def resume_command(meta: dict[str, Any], folder: str) -> str:
    """The command that resumes the run: `python -m ddjax.run --resume DIR`, naming each file config.json records
    for its own family and data set."""
    files = dict.fromkeys(_file(meta, key) for key in user_names(meta))
    return " ".join([f"python -m ddjax.run --resume {folder}", *(f"--registered-in {f}" for f in files if f)])


def _file(meta: dict[str, Any], key: str) -> str | None:
    """The file config.json records for `key` (None: none)."""
    files = meta.get("registered_in")
    return files.get(key) if isinstance(files, dict) else None
