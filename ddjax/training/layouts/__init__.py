"""Layouts: the ways a sweep's members are placed in programs, one module each (see `base.Layout`).

- `packed`: one-hidden-layer families, every member of a batch stream in one wide layer;
- `blockpacked`: MLPs of any depth, width buckets of block-diagonal layers;
- `grouped` (and `padded`, one group): members padded to the widest of a few width groups, any family;
- `mapped`: the grouped layout with evaluations one member after another on XLA's convolution (`cnn1d` on a CPU);
- `serial`: one member at a time at its own width, the reference.

A new layout is one new module here and one entry in `LAYOUTS`.
"""

from __future__ import annotations

from ddjax.errors import ConfigError
from ddjax.training.layouts.base import (Context, Layout, MemberCurves, Plan, Record, SolvedProgram, TrainedProgram,
                                        method_refusal, trained_record)
from ddjax.training.layouts.blockpacked import BLOCKPACKED
from ddjax.training.layouts.grouped import GROUPED, PADDED
from ddjax.training.layouts.mapped import MAPPED
from ddjax.training.layouts.packed import PACKED
from ddjax.training.layouts.serial import SERIAL

# Every layout by name; "auto" takes the first of AUTO that can hold the config (the benchmarks measured this order
# for the trained ones). The closed-form solvers register theirs here (`ddjax.solvers.layouts`), ahead in AUTO.
LAYOUTS = {layout.name: layout for layout in (PACKED, BLOCKPACKED, GROUPED, PADDED, MAPPED, SERIAL)}
AUTO = [PACKED, BLOCKPACKED, MAPPED, GROUPED]  # `mapped` refuses every family but the ones measured faster there.

__all__ = ["AUTO", "LAYOUTS", "Context", "Layout", "MemberCurves", "Plan", "Record", "SERIAL", "SolvedProgram",
           "TrainedProgram", "choose_layout", "method_refusal", "register", "schemes", "trained_record"]


def register(layout: Layout) -> None:
    """Adds `layout` to `LAYOUTS` and ahead of the others in `AUTO` (a solver's layout holds only its method)."""
    LAYOUTS[layout.name] = layout
    AUTO.insert(0, layout)


def schemes() -> tuple[str, ...]:
    """The names a sweep's `scheme` may take: "auto" and every layout's."""
    return ("auto", *LAYOUTS)


def choose_layout(config, scheme: str = "auto", mode: str | None = None) -> Layout:
    """The layout of `scheme`, or for "auto" the first of `AUTO` that can hold `config`; `mode="serial"` (or the
    config's) is shorthand for scheme "serial".

    Raises ValueError for an unknown scheme, and ConfigError (one line) for a layout that cannot hold `config`.
    """
    if scheme not in LAYOUTS and scheme != "auto":
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(schemes())}")
    if (mode or config.mode) == "serial":
        scheme = "serial"
    if scheme == "auto":
        return next(layout for layout in AUTO if layout.refusal(config) is None)
    layout = LAYOUTS[scheme]
    refusal = layout.refusal(config)
    if refusal is not None:
        raise ConfigError(refusal)
    return layout
