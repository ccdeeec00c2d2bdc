"""Model families by name, each written for ONE member (on one example, or on a batch for the stateful,
convolutional ones); `registry` is the table of them."""

from ddjax.models.families import ModelFamily, Params, mlp, padded_normal, random_features, unit_mask
from ddjax.models.stateful import StatefulFamily
from ddjax.models.registry import MODELS, ModelInfo, PackedForm, forward_macs, get_model, model_info, packed_form

__all__ = ["MODELS", "ModelFamily", "ModelInfo", "PackedForm", "Params", "forward_macs", "get_model", "mlp",
           "model_info", "packed_form", "padded_normal", "random_features", "StatefulFamily", "unit_mask"]
