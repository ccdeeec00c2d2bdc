"""Learning-rate schedules: a factor of each member's own learning rate that depends on the step alone.

Every layout (grouped, packed, block-packed, serial) multiplies its members' updates by the same factor, so a
schedule never tells members apart; "constant" multiplies by nothing at all, leaving the compiled step as it was.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def learning_rate_factor(schedule: str, period: int, step) -> jax.Array | None:
    """The factor of every member's learning rate at optimizer `step` (0-based), or None for "constant".

    "inverse_sqrt" is 1 / sqrt(1 + step // period), the schedule of Nakkiran et al. (2019)'s CNN runs (SGD at
    0.1 / sqrt(1 + step // 512)). The names are validated in `ddjax.config` (LR_SCHEDULES).
    """
    if schedule == "constant":
        return None
    if schedule == "inverse_sqrt":
        return jax.lax.rsqrt(1.0 + (jnp.asarray(step) // period).astype(jnp.float32))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; allowed: constant, inverse_sqrt")
