"""Grouping members by width so that one program pads each group only to its own widest member."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np


class GroupPlan(NamedTuple):
    """Member indices of each group (ascending width) and the width each group is padded to."""

    indices: tuple[np.ndarray, ...]
    max_widths: tuple[int, ...]
    efficiency: float  # Useful cost / executed cost.


def plan_groups(widths: np.ndarray, *, cost: Callable[[int], float], target_efficiency: float = 0.85,
                max_groups: int = 8) -> GroupPlan:
    """The fewest contiguous width groups whose padding efficiency reaches `target_efficiency`.

    For each group count g, dynamic programming over the sorted distinct widths finds the split that executes
    the least cost (a member padded to width W costs cost(W)); the smallest g reaching the target wins, else the
    best plan with `max_groups` groups.
    """
    widths = np.asarray(widths)
    distinct = np.unique(widths)
    counts = np.array([np.sum(widths == w) for w in distinct])
    unit = np.array([cost(int(w)) for w in distinct])
    useful = float(np.sum(counts * unit))
    k = len(distinct)
    prefix = np.concatenate([[0], np.cumsum(counts)])
    # best[g][j]: least executed cost of covering distinct[:j] with g groups; cut[g][j]: start of the last group.
    best = np.full((max_groups + 1, k + 1), np.inf)
    cut = np.zeros((max_groups + 1, k + 1), dtype=int)
    best[0, 0] = 0.0
    chosen = None
    for g in range(1, min(max_groups, k) + 1):
        for j in range(1, k + 1):
            for i in range(g - 1, j):
                total = best[g - 1, i] + (prefix[j] - prefix[i]) * unit[j - 1]
                if total < best[g, j]:
                    best[g, j], cut[g, j] = total, i
        chosen = g
        if useful / best[g, k] >= target_efficiency:
            break
    bounds, j = [], k
    for g in range(chosen, 0, -1):
        bounds.append((cut[g, j], j))
        j = cut[g, j]
    bounds.reverse()
    indices = tuple(np.flatnonzero(np.isin(widths, distinct[i:j])) for i, j in bounds)
    max_widths = tuple(int(distinct[j - 1]) for _, j in bounds)
    return GroupPlan(indices, max_widths, useful / float(best[chosen, k]))
