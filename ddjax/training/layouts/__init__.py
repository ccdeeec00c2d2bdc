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
from ddjax.training.layouts.base import Context, Layout, MemberCurves, Plan, ProgramInputs
from ddjax.training.layouts.blockpacked import BLOCKPACKED
from ddjax.training.layouts.grouped import GROUPED, PADDED
from ddjax.training.layouts.mapped import MAPPED
from ddjax.training.layouts.packed import PACKED
from ddjax.training.layouts.serial import SERIAL

# vmap mode's layouts; "auto" takes the first that can hold the config (the benchmarks measured this order).
LAYOUTS = {layout.name: layout for layout in (PACKED, BLOCKPACKED, GROUPED, PADDED, MAPPED)}
AUTO = (PACKED, BLOCKPACKED, MAPPED, GROUPED)  # `mapped` refuses every family but the ones measured faster there.
SCHEMES = ("auto", *LAYOUTS)

__all__ = ["AUTO", "LAYOUTS", "SCHEMES", "Context", "Layout", "MemberCurves", "Plan", "ProgramInputs", "SERIAL",
           "choose_layout"]


def choose_layout(config, scheme: str = "auto", mode: str = "vmap") -> Layout:
    """The layout of `scheme` (serial mode: `SERIAL`), or for "auto" the first of `AUTO` that can hold `config`.

    Raises ValueError for an unknown scheme, and ConfigError (one line) for a layout that cannot hold `config`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if mode == "serial":
        return SERIAL
    if scheme == "auto":
        return next(layout for layout in AUTO if layout.refusal(config) is None)
    layout = LAYOUTS[scheme]
    refusal = layout.refusal(config)
    if refusal is not None:
        raise ConfigError(refusal)
    return layout
