"""Test entry point: `python tests/paused_run.py PHASE:SECONDS ARGS...` is `python -m ddjax.run ARGS` with a pause
at every checkpoint, so a test can SIGKILL the run at that moment.

PHASE "write" pauses between writing checkpoint.npz.tmp and renaming it into place; "after" pauses after each
complete checkpoint. The pause is installed by wrapping the checkpoint functions here, in the test's process
only: the library has no test hook of its own.
"""

import pathlib
import sys
import time

from ddjax.run import main
from ddjax.runs import checkpoint
from ddjax.runs.files import CHECKPOINT_FILE


def install_pause(phase: str, seconds: float) -> None:
    """Wraps the checkpoint writer so that every checkpoint pauses `seconds` at `phase`."""
    write_atomically, save_checkpoint = checkpoint.write_atomically, checkpoint.save_checkpoint

    def write_then_pause(path, entries, *, before_rename=None):
        if pathlib.Path(path).name == CHECKPOINT_FILE:  # Not curves.npz, written the same way.
            before_rename = lambda: time.sleep(seconds)  # noqa: E731
        write_atomically(path, entries, before_rename=before_rename)

    def save_then_pause(*args, **kwargs):
        save_checkpoint(*args, **kwargs)
        time.sleep(seconds)

    if phase == "write":
        checkpoint.write_atomically = write_then_pause
    elif phase == "after":
        checkpoint.save_checkpoint = save_then_pause
    else:
        raise SystemExit(f"unknown pause phase {phase!r}; allowed: write, after")


if __name__ == "__main__":
    phase, _, seconds = sys.argv[1].partition(":")
    install_pause(phase, float(seconds))
    sys.exit(main(sys.argv[2:], own_process=True))
