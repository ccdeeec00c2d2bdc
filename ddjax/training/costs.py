"""What a member costs, from the model registry: the one cost model every layout plans and reports with."""

from __future__ import annotations

from ddjax.config import Config
from ddjax.models.registry import forward_macs
from ddjax.training.spec import TrainSpec


def member_macs(config: Config, spec: TrainSpec, width: int) -> float:
    """Multiply-accumulates of one forward pass of one example through a member of `config`'s family at `width`
    (`ddjax.models.registry.forward_macs`)."""
    shape = spec.image.shape if spec.image is not None else (spec.input_dim,)
    return float(forward_macs(config.model, int(width), spec.input_dim, spec.n_classes, config.depth,
                              input_shape=shape))
