"""The outcome of a sweep: every member's coordinates and stacked curves, and how they were computed."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepResult:
    """Coordinates and stacked curves of every member (built by keyword only).

    `coords[axis]` has shape [member]; `curves[name]` has shape [member, eval_step] with evaluations after
    `eval_steps[j]` steps (NaN after a member diverged); `diverged_step[m]` is -1 or the step it diverged at.
    """

    coords: dict[str, np.ndarray]
    eval_steps: np.ndarray
    curves: dict[str, np.ndarray]
    diverged_step: np.ndarray
    # What the layout padded to: each group's width (grouped, padded), each bucket's block size (blockpacked), the
    # units of a stream (packed), the distinct widths (serial).
    group_widths: tuple[int, ...]
    compile_seconds: float
    run_seconds: float
    n_compiles: int
    # The layout (`ddjax.training.layouts`): "packed", "blockpacked", "grouped", "padded", "mapped", "serial",
    # "closed_form" or "gradient_descent".
    scheme: str = "closed_form"
    # Useful multiply-accumulates / executed ones, both counted by the model registry (`forward_macs`) at the
    # members' true widths and at the widths the layout executes (1.0: nothing padded).
    padding_efficiency: float = 1.0
    n_devices: int = 1  # Devices the member axis was split over.
    n_programs: int = 1  # Consecutive programs over subsets of members (more than 1 where memory ran short).
    # A module family's padding (`ddjax.models.family.Padding`): {"exact", "reason", "check_seconds"}; None for a
    # family padded by construction.
    padding: dict | None = None

    def final(self, name: str) -> np.ndarray:
        """The last evaluation of curve `name`, shape [member]."""
        return self.curves[name][:, -1]
