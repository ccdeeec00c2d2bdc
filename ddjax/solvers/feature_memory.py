"""Memory plan of a staged random-features solve (`ddjax.solvers.feature_blocks`), from shapes alone.

Every value is float64 (8 bytes). A stage holds, with n = n_fit fitted rows, e = n_eval evaluated rows, d inputs:

- the inputs, (n + e) d;
- its carry: the sample-side products n^2 + e n while a stage on that side remains, and the values of the
  first F features on every row, F (n + e), while a stage on the feature side remains (F: the widest of them);
- while adding features, a block of B features: its values (n + e) B (unless they go into the carry) and its
  projections, 2 B d, plus one generator chunk of the draw, 2 CHUNK d;
- while solving, on the side of order m (N + 1 or n): the matrix factorized, m^2, the feature side's Gram N^2,
  and an eigendecomposition's eigenvectors and workspace, 3 m^2, for a strength that is not safely positive
  definite; logits and right-hand sides, 4 (n + e) c;
- when its carry is checkpointed (`save_checkpoint` serializes every leaf in memory before writing), the carry
  it returns a second time (of its feature values, the N rows filled so far).

These are the computation's arrays; the interpreter, the libraries and the data set as loaded come on top (about
0.6 GB measured), in the other half of the host's RAM that ddjax's budget leaves them.

The peak of a run is the largest stage's. `plan_block` picks the block: `MAX_BLOCK` features (where the
products run at full speed) or fewer if that does not fit the budget, which is ddjax's host budget for a
program, `HOST_FRACTION` of the machine's RAM; if even one feature does not fit it refuses in one line.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ddjax.config import ConfigError
from ddjax.models.feature_draws import CHUNK
from ddjax.solvers.feature_blocks import Stage
from ddjax.training.memory import HOST_FRACTION, host_memory_bytes

VALUE_BYTES = 8
MAX_BLOCK = 2048


class MemoryPlan(NamedTuple):
    block: int
    peak_bytes: int
    budget_bytes: int
    largest_stage: int  # the width of the stage that sets the peak


def stage_bytes(stage: Stage, block: int, *, n_fit: int, n_eval: int, input_dim: int, n_classes: int,
                checkpoint: bool = True) -> int:
    """Peak bytes of one stage (see the module's docstring)."""
    rows = n_fit + n_eval
    grams = stage.side == "samples" or stage.keep_grams
    features = max(stage.width if stage.side == "features" else 0, stage.keep_features)
    carry = (n_fit * rows if grams else 0) + features * rows
    stored = stage.width <= features
    adding = (0 if stored else rows * block) + 2 * block * input_dim + 2 * CHUNK * input_dim
    order = stage.width + 1 if stage.side == "features" else n_fit
    solving = 4 * order**2 + (stage.width**2 if stage.side == "features" else 0) + 4 * rows * n_classes
    products_after = n_fit * rows if stage.keep_grams else 0
    held = products_after + (features * rows if stage.keep_features else 0)  # the buffer of features stays whole
    saved = products_after + (stage.width * rows if stage.keep_features else 0)  # its filled rows are written
    values = rows * input_dim + max(carry + max(adding, solving), held + saved if checkpoint else 0)
    return VALUE_BYTES * values


def budget_bytes(override: int = 0) -> int:
    """`override` if given, else `HOST_FRACTION` of the host's RAM (`ddjax.training.memory`)."""
    if override:
        return override
    host = host_memory_bytes()
    if host is None:
        raise ConfigError("the host's RAM is not reported here: give memory_budget_bytes")
    return int(HOST_FRACTION * host)


def plan_block(stages: Sequence[Stage], *, n_fit: int, n_eval: int, input_dim: int, n_classes: int,
               budget: int = 0, max_block: int = MAX_BLOCK, checkpoint: bool = True) -> MemoryPlan:
    """The largest block up to `max_block` with which every stage fits `budget` bytes (0: ddjax's host budget).

    Raises ConfigError (one line) if a stage does not fit even with a block of one feature.
    """
    budget = budget_bytes(budget)
    shapes = dict(n_fit=n_fit, n_eval=n_eval, input_dim=input_dim, n_classes=n_classes, checkpoint=checkpoint)
    worst = max(stages, key=lambda s: stage_bytes(s, 1, **shapes))
    need = stage_bytes(worst, 1, **shapes)
    if need > budget:
        raise ConfigError(f"the random-features solve needs {need / 2**30:.1f} GiB at N = {worst.width} even in "
                          f"blocks of one feature (n_fit {n_fit}, {n_eval} rows evaluated), over its budget of "
                          f"{budget / 2**30:.1f} GiB; use fewer rows or give memory_budget_bytes")
    block = max_block
    while block > 1 and max(stage_bytes(s, block, **shapes) for s in stages) > budget:
        block = max(1, block * 3 // 4)
    peak = max(stages, key=lambda s: stage_bytes(s, block, **shapes))
    return MemoryPlan(block, stage_bytes(peak, block, **shapes), budget, peak.width)
