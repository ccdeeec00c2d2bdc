"""The data cache folder, and files fetched into it: downloaded with a progress bar, checksummed, moved atomically.

A file appears in the cache only complete and verified: it is written to a temporary name in its own folder,
its md5 compared with the published one, then renamed into place. A file whose md5 differs (downloaded, or put
there by hand) is renamed `NAME.bad-<its md5>` and never used. Every failure is a `DataError`, one line that
says which file, from where, and where to put it by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pathlib
import tempfile
import urllib.error
import urllib.request

from ddjax.errors import ConfigError
from ddjax.data.image_sets import ImageSet, SourceFile

CACHE_VARIABLE = "DDJAX_DATA"
TIMEOUT_SECONDS = 30.0
CHUNK_BYTES = 1 << 20


class DataError(ConfigError):
    """A data set that cannot be made available (network, checksum, corrupt file, cache folder); one line."""


def cache_root() -> pathlib.Path:
    """The cache folder: $DDJAX_DATA, else $XDG_CACHE_HOME/ddjax, else ~/.cache/ddjax."""
    if os.environ.get(CACHE_VARIABLE):
        return pathlib.Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "ddjax"


def dataset_folder(image_set: ImageSet, root: pathlib.Path | None = None) -> pathlib.Path:
    """The data set's folder in the cache, created if missing; DataError if it cannot be."""
    folder = (root if root is not None else cache_root()) / image_set.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-")
        probe.close()
    except OSError as error:
        raise DataError(f"data cache folder {str(folder)!r} is not writable ({_reason(error)}); set "
                        f"{CACHE_VARIABLE} to a writable folder") from None
    return folder


def md5_of(path: pathlib.Path) -> str:
    """The md5 hex digest of the file at `path`."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def set_aside(path: pathlib.Path, md5: str) -> pathlib.Path:
    """Renames a file that must not be used to `NAME.bad-<md5>` beside it, and returns the new path."""
    bad = path.with_name(f"{path.name}.bad-{md5}")
    os.replace(path, bad)
    return bad


def fetch(image_set: ImageSet, file: SourceFile, folder: pathlib.Path) -> pathlib.Path:
    """The verified file in `folder`: the cached copy if its md5 is right, else downloaded from the mirrors.

    Raises:
      DataError: every address failed or served a file with another md5 (set aside, see the module docstring).
    """
    path = folder / file.name
    problems = []
    if path.exists():
        md5 = md5_of(path)
        if md5 == file.md5:
            return path
        problems.append(f"the cached copy had md5 {md5}, not {file.md5} (moved to {set_aside(path, md5).name})")
    for base in image_set.mirrors():
        url = base.rstrip("/") + "/" + file.name
        try:
            tmp, md5 = _download(url, folder, file.name)
        except (OSError, http.client.HTTPException, ValueError) as error:
            problems.append(f"{url}: {_reason(error)}")
            continue
        if md5 == file.md5:
            os.replace(tmp, path)
            return path
        bad = path.with_name(f"{path.name}.bad-{md5}")
        os.replace(tmp, bad)
        problems.append(f"{url} served md5 {md5}, not {file.md5} (moved to {bad.name})")
    details = "; ".join(problems).replace("\n", " ")
    raise DataError(f"cannot get {image_set.name} file {file.name}: {details}. Download it by hand (md5 "
                    f"{file.md5}) to {str(path)!r}, or list other folders in {image_set.mirror_variable}")


def _download(url: str, folder: pathlib.Path, label: str) -> tuple[pathlib.Path, str]:
    """Downloads `url` to a temporary file in `folder`; returns its path and the md5 of what arrived.

    The progress bar (bytes, rate, time left) shows on a terminal only.
    """
    from tqdm.auto import tqdm

    digest = hashlib.md5()
    tmp = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{label}.", suffix=".part", delete=False)
    try:
        with tmp, urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=None, leave=False) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    tmp.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if total is not None and tmp.tell() != total:
                raise OSError(f"the transfer ended after {tmp.tell()} of {total} bytes")
            tmp.flush()
            os.fsync(tmp.fileno())
    except BaseException:
        pathlib.Path(tmp.name).unlink(missing_ok=True)
        raise
    return pathlib.Path(tmp.name), digest.hexdigest()


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror + (f": {error.filename!r}" if error.filename else "")
    return str(error) or type(error).__name__
