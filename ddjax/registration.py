"""The open-table rule shared by the model and data-set registries: built-ins and users register through one door.

Each registry keeps its own table (name -> row), the names ddjax registers itself, and, for a user's entry, the
.py file that registered it (a run's config.json records it with its sha256, `file_sha256`, so a resumed run can
be checked against it); `add_row` is the one rule for all of them.
"""

from __future__ import annotations

import hashlib
import pathlib
import sys
from typing import Any

from ddjax.errors import ConfigError


def add_row(table: dict[str, Any], built_in_names: set[str], registered_in: dict[str, str | None], name: str,
            row: Any, *, kind: str, noun: str, built_in: bool = False, origin: str | None = None) -> None:
    """Adds `row` under `name` to `table` (a user's registration of a name replaces their earlier one).

    Args:
      kind: the config key a row is named by, for errors ("model", "dataset").
      noun: what a row is, for errors ("family", "data set").
      built_in: ddjax's own entry: its name is recorded in `built_in_names` and no user may take it.
      origin: a user's entry: the file that registered it, recorded in `registered_in`.

    Raises:
      ConfigError: `name` is not an identifier, or it is a built-in entry's name.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"{kind} name {name!r} is not allowed: letters, digits and underscores, not starting "
                          f"with a digit")
    if name in built_in_names or (built_in and name in table):
        raise ConfigError(f"{kind} name {name!r} is taken by a built-in {noun} ({', '.join(sorted(built_in_names))}); "
                          f"choose another")
    table[name] = row
    if built_in:
        built_in_names.add(name)
    else:
        registered_in[name] = origin


def caller_file(depth: int = 2) -> str | None:
    """The .py file of the code `depth` frames up (the caller of a register function), or None for a notebook
    cell or an interactive interpreter."""
    path = sys._getframe(depth).f_code.co_filename
    return str(pathlib.Path(path).resolve()) if path.endswith(".py") and pathlib.Path(path).is_file() else None


def file_sha256(path: str | pathlib.Path) -> str | None:
    """The hex sha256 of the file at `path`, or None if it cannot be read."""
    try:
        return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
