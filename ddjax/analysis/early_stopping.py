"""Early stopping: each member's curves read at its best evaluation step instead of its last (Nakkiran et al. 2019).

A member's best step is the first eval step with its lowest error on a selection curve: `val_error` (examples
carved from its own training set and never trained on, config `validation_fraction`) is early stopping as one
would run it; `test_error` is the oracle, which chooses on the very numbers it reports and so flatters the
early-stopped curve. Both read-outs are model-wise curves like the final-step one, analysed by the same
calibrated verdict.
"""

from __future__ import annotations

import numpy as np

SELECTIONS = {"validation": "val_error", "oracle": "test_error"}  # Read-out -> the curve that picks the step.


def best_steps(selection: np.ndarray) -> np.ndarray:
    """Per member (rows of [member, eval_step]), the index of the first eval step with the lowest finite value;
    -1 for a member without any."""
    selection = np.asarray(selection, dtype=float)
    finite = np.isfinite(selection)
    index = np.argmin(np.where(finite, selection, np.inf), axis=1)
    return np.where(finite.any(axis=1), index, -1)


def read_at(curve: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """curve[m, steps[m]] for every member m; NaN where steps[m] is -1."""
    curve = np.asarray(curve, dtype=float)
    values = curve[np.arange(curve.shape[0]), np.maximum(steps, 0)]
    return np.where(steps >= 0, values, np.nan)
