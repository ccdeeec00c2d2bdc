"""Model families by name, each a `Family` written for ONE member (`family`: the one interface); `registry` is the
table of them."""

from ddjax.models.families import mlp, padded_normal, random_features
from ddjax.models.family import Family, ModelState, Params, Variables, stateless_family, unit_mask
from ddjax.models.registry import MODELS, ModelInfo, PackedForm, forward_macs, get_model, model_info, packed_form

__all__ = ["MODELS", "Family", "ModelInfo", "ModelState", "PackedForm", "Params", "Variables", "forward_macs",
           "get_model", "mlp", "model_info", "packed_form", "padded_normal", "random_features", "stateless_family",
           "unit_mask"]
