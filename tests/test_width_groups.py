"""Width groups: the fewest groups reaching a padding target, and more where a group's cost is paid back."""

import itertools

import numpy as np
import pytest

from ddjax.training.width_groups import plan_groups

WIDTHS = np.array([2, 3, 5, 8, 8, 13, 21, 34, 55, 89])


def quadratic(width: int) -> float:
    return float(width * width + 10 * width)


def executed(plan) -> float:
    return sum(len(index) * quadratic(width) for index, width in zip(plan.indices, plan.max_widths))


def least_executed(n_groups: int) -> float:
    """Brute force: the least executed cost of any split of the sorted distinct widths into n_groups runs."""
    distinct = np.unique(WIDTHS)
    counts = {w: int(np.sum(WIDTHS == w)) for w in distinct}
    best = np.inf
    for cuts in itertools.combinations(range(1, len(distinct)), n_groups - 1):
        bounds = (0, *cuts, len(distinct))
        best = min(best, sum(sum(counts[w] for w in distinct[i:j]) * quadratic(distinct[j - 1])
                             for i, j in zip(bounds, bounds[1:])))
    return best


def test_fewest_groups_reaching_the_target_each_at_least_cost():
    plan = plan_groups(WIDTHS, cost=quadratic, target_efficiency=0.85, max_groups=9)
    g = len(plan.max_widths)
    useful = sum(quadratic(w) for w in WIDTHS)
    assert plan.efficiency >= 0.85 > useful / least_executed(g - 1)  # One group fewer misses the target.
    assert executed(plan) == pytest.approx(least_executed(g))
    assert sorted(np.concatenate(plan.indices)) == list(range(len(WIDTHS)))
    assert all(np.all(WIDTHS[index] <= width) for index, width in zip(plan.indices, plan.max_widths))


@pytest.mark.parametrize("group_cost", [0.0, 30.0, 300.0, 1e9])
def test_group_cost_takes_the_count_of_least_executed_plus_group_cost(group_cost):
    target = plan_groups(WIDTHS, cost=quadratic, target_efficiency=0.85, max_groups=9)
    plan = plan_groups(WIDTHS, cost=quadratic, target_efficiency=0.85, max_groups=9, group_cost=group_cost)
    counts = range(len(target.max_widths), 10)
    totals = [least_executed(g) + g * group_cost for g in counts]
    assert executed(plan) + len(plan.max_widths) * group_cost == pytest.approx(min(totals))
    assert len(plan.max_widths) >= len(target.max_widths)  # Never fewer groups than the target's.
    if group_cost == 0.0:
        assert plan.efficiency == 1.0  # Free groups: one a distinct width, nothing padded.
    if group_cost == 1e9:
        assert plan.max_widths == target.max_widths
