"""What a member costs: the one cost model of a family, from its row of the model registry.

`MemberCost` answers, for one member at a width, the three counts of the family's registry row: multiply-accumulates
of one forward pass of one example, stored parameter values, and activation values one example keeps for the
backward pass (`ddjax.models.registry`). Memory planning (`ddjax.training.memory`), width grouping and the group
cost of the grouped and mapped layouts, the block-packed layout's buckets and every layout's padding efficiency
read it, and `padding_efficiency` is the one definition of the last.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

from ddjax.config import Config
from ddjax.models.registry import activation_count, forward_macs, parameter_count


class MemberCost(NamedTuple):
    """A family's counts for one member of a width (each `width -> int`)."""

    macs: Callable[[int], int]
    parameters: Callable[[int], int]
    activations: Callable[[int], int]


def member_cost(config: Config, input_shape: tuple[int, ...], n_classes: int) -> MemberCost:
    """The cost model of `config`'s family for examples of `input_shape` (a flat example: `(features,)`)."""
    shape = dict(input_dim=int(_product(input_shape)), n_classes=n_classes, depth=config.depth,
                 input_shape=tuple(input_shape))
    return MemberCost(lambda width: forward_macs(config.model, int(width), **shape),
                      lambda width: parameter_count(config.model, int(width), **shape),
                      lambda width: activation_count(config.model, int(width), **shape))


def padding_efficiency(macs: Callable[[int], float], true_widths: Sequence[int],
                       executed_widths: Sequence[int]) -> float:
    """Useful multiply-accumulates over executed ones: each member counted at its true width and at the width its
    layout executes it at (`macs`: `MemberCost.macs`); 1.0 when nothing is padded."""
    useful = sum(float(macs(int(w))) for w in true_widths)
    executed = sum(float(macs(int(w))) for w in executed_widths)
    return useful / executed


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for d in shape:
        total *= int(d)
    return total
