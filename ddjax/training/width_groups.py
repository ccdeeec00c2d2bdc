"""Grouping members by width so that one program pads each group only to its own widest member."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ddjax.training.costs import padding_efficiency


class GroupPlan(NamedTuple):
    """Member indices of each group (ascending width) and the width each group is padded to."""

    indices: tuple[np.ndarray, ...]
    max_widths: tuple[int, ...]
    efficiency: float  # Useful cost / executed cost.


def partition(n_items: int, segment_cost: Callable[[int, int], float],
              max_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-cost cuts of items 0..n_items-1 (sorted) into contiguous segments, for every segment count.

    Dynamic programming: best[g, j] is the least total `segment_cost(i, j)` (items i..j-1 in one segment) of
    covering items[:j] with g segments, cut[g, j] the start of the last one; `segments(cut, g, n_items)` reads a
    plan back. The one width-partition routine of the grouped and block-packed layouts.
    """
    best = np.full((max_segments + 1, n_items + 1), np.inf)
    cut = np.zeros((max_segments + 1, n_items + 1), dtype=int)
    best[0, 0] = 0.0
    for g in range(1, max_segments + 1):
        for j in range(1, n_items + 1):
            for i in range(g - 1, j):
                total = best[g - 1, i] + segment_cost(i, j)
                if total < best[g, j]:
                    best[g, j], cut[g, j] = total, i
    return best, cut


def segments(cut: np.ndarray, g: int, n_items: int) -> list[tuple[int, int]]:
    """The (start, end) bounds of the g segments `partition` chose for items[:n_items], in order."""
    bounds, j = [], n_items
    for level in range(g, 0, -1):
        bounds.append((int(cut[level, j]), j))
        j = cut[level, j]
    return bounds[::-1]


def plan_groups(widths: np.ndarray, *, cost: Callable[[int], float], target_efficiency: float = 0.85,
                max_groups: int = 8, group_cost: float | None = None) -> GroupPlan:
    """The fewest contiguous width groups whose padding efficiency reaches `target_efficiency`.

    For each group count g, `partition` over the sorted distinct widths finds the split that executes the least
    cost (a member padded to width W costs cost(W)); the smallest g reaching the target wins, else the best plan
    with `max_groups` groups. With `group_cost` (what one more group costs, in units of `cost`: e.g. its compile
    time against the run's arithmetic), the count from there to `max_groups` with the least executed cost +
    count * group_cost wins.
    """
    widths = np.asarray(widths)
    distinct = np.unique(widths)
    counts = np.array([np.sum(widths == w) for w in distinct])
    unit = np.array([cost(int(w)) for w in distinct])
    useful = float(np.sum(counts * unit))
    k = len(distinct)
    prefix = np.concatenate([[0], np.cumsum(counts)])
    n_groups = min(max_groups, k)
    best, cut = partition(k, lambda i, j: (prefix[j] - prefix[i]) * unit[j - 1], n_groups)
    chosen = next((g for g in range(1, n_groups + 1) if useful / best[g, k] >= target_efficiency), n_groups)
    if group_cost is not None:
        counts_from = np.arange(chosen, n_groups + 1)
        chosen = int(counts_from[np.argmin(best[chosen:, k] + counts_from * group_cost)])
    bounds = segments(cut, chosen, k)
    indices = tuple(np.flatnonzero(np.isin(widths, distinct[i:j])) for i, j in bounds)
    max_widths = tuple(int(distinct[j - 1]) for _, j in bounds)
    executed = np.concatenate([np.full(len(index), width) for index, width in zip(indices, max_widths)])
    return GroupPlan(indices, max_widths, padding_efficiency(cost, widths[np.concatenate(indices)], executed))
