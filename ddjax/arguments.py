"""Argument types shared by the command line (`ddjax.run`) and the scripts in benchmarks/."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1, else a one-line error naming the value."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; allowed: a whole number >= 1")
    return int(text)
