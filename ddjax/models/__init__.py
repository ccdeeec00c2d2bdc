"""Model families by name, each written for ONE member on ONE example; `registry` is the table of them."""

from ddjax.models.families import ModelFamily, Params, mlp, padded_normal, random_features, unit_mask
from ddjax.models.registry import MODELS, ModelInfo, PackedForm, forward_macs, get_model, model_info, packed_form

__all__ = ["MODELS", "ModelFamily", "ModelInfo", "PackedForm", "Params", "forward_macs", "get_model", "mlp",
           "model_info", "packed_form", "padded_normal", "random_features", "unit_mask"]
