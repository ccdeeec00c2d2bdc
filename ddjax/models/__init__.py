"""Model families by name, each written for ONE member on ONE example."""

from ddjax.models.families import (ModelFamily, Params, forward_macs, get_model, mlp, padded_normal, random_features,
                                   unit_mask)

__all__ = ["ModelFamily", "Params", "forward_macs", "get_model", "mlp", "padded_normal", "random_features",
           "unit_mask"]
