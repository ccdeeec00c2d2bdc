"""Every model family by name, in one table: the only place that tells families apart by their names.

Config validation, the sweep (which layout can hold a family), the cost model of width groups, the packed layout
and the closed-form solvers all ask `model_info(name)`. The table is open: `register(name, info)` adds a row, and
the built-in families register through it as a user's do (`ddjax.models.user.register_model` makes the row of a
user's flax module or `Family`). To add a built-in: write it for one member as a `Family`
(`ddjax.models.family`: per example with `stateless_family`, or a flax module with
`ddjax.models.module_family.module_family`), then register one `ModelInfo` row below.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from ddjax.models.conv import conv_family
from ddjax.models.conv_counts import (cnn1d_activations, cnn1d_macs, cnn1d_parameters, cnn5_activations, cnn5_macs,
                                      cnn5_parameters, resnet18_activations, resnet18_macs, resnet18_parameters)
from ddjax.models.families import cosine_features, mlp, random_features
from ddjax.errors import ConfigError
from ddjax.models.family import Family
from ddjax.registration import add_row


class PackedForm(NamedTuple):
    """How the packed layout holds a one-hidden-layer family (`ddjax.training.packed`)."""

    first_layer: str  # Key of the hidden layer in the family's params ("hidden" holds a list of layers).
    activation: Callable[[jax.Array], jax.Array]
    # True for random features: the first layer is not trained and each unit is scaled by 1 / sqrt(width).
    fixed_features: bool


class ModelInfo(NamedTuple):
    """What ddjax asks of a model family, answered once."""

    # depth -> the family, written for one member (families built for the shape of one example, `by_shape`:
    # (depth, input_shape, n_classes, widths, loss) -> the family of members of those widths); None: nothing to
    # train, the read-out is solved in closed form on the data set's own design (`linear`).
    build: Callable[..., Family] | None
    # Multiply-accumulates of one forward pass of one example: (width, input_dim, n_classes, depth) -> int.
    forward_macs: Callable[[int, int, int, int], int]
    packed: PackedForm | None = None  # How the packed layout holds it at depth 1; None: it cannot.
    # An MLP of any depth that the block-packed layout holds (`ddjax.training.blockpacked`).
    block_packed: bool = False
    closed_form: bool = False  # A linear read-out with a minimum-norm least-squares solution (method="min_norm").
    datasets: tuple[str, ...] | None = None  # The data sets it applies to; None: any that has shared data.
    # For memory planning (`ddjax.training.memory`), (width, input_dim, n_classes, depth) -> int: stored parameter
    # values, and activation values one example keeps for the backward pass. None: forward_macs, an upper bound
    # (every weight and every activation takes at least one multiply-accumulate), loose for convolutions.
    parameters: Callable[[int, int, int, int], int] | None = None
    activations: Callable[[int, int, int, int], int] | None = None
    # Built for the shape of one example (a module family: `ddjax.models.conv`, a user's module): `build` takes the
    # shape, the sweep's widths and the loss, and `forward_macs`, `parameters` and `activations` are (width,
    # input_shape, n_classes, depth) -> int.
    by_shape: bool = False
    # On a CPU split into host devices, its members train on one device, whose matmuls then use every core
    # (measured faster for the convolutional families: `ddjax.sweep._devices`).
    one_device_on_cpu: bool = False
    # Rows evaluated at once (`lax.map` over chunks of them), so that no activation of a whole split is held;
    # 0: every row in one batch (the per-example families, whose evaluation is one matmul per layer).
    eval_batch: int = 0
    # (depth, input_shape, n_classes, widths, loss) -> the family the mapped layout evaluates with, one member at a
    # time (XLA's convolution: `ddjax.training.layouts.mapped`); None: that layout refuses the family (not
    # measured faster).
    mapped_evaluation: Callable[..., Family] | None = None
    # At depth 1 a two-layer ReLU network with parameter groups hidden/0 and out: paired initialization and the
    # linearized two-layer theory (`ddjax.solvers.two_layer`) apply to it.
    two_layer_relu: bool = False
    # Random features: the fixed first layer's map ("fourier", "relu"; `ddjax.models.feature_draws`), and `build`
    # takes the draw as well, (depth, draw) -> the family; their read-outs are solved in stages over one draw
    # (`ddjax.solvers.feature_stages`). None: not a random-features family.
    feature_map: str | None = None


def _mlp_macs(width: int, input_dim: int, n_classes: int, depth: int) -> int:
    return input_dim * width + (depth - 1) * width * width + width * n_classes


def _readout_macs(width: int, input_dim: int, n_classes: int, depth: int) -> int:
    return input_dim * width + width * n_classes


def _mlp_parameters(width: int, input_dim: int, n_classes: int, depth: int) -> int:
    return _mlp_macs(width, input_dim, n_classes, depth) + depth * width + n_classes  # Weights and biases.


def _mlp_activations(width: int, input_dim: int, n_classes: int, depth: int) -> int:
    return 2 * depth * width + n_classes  # Each hidden layer's pre-activation and activation, then the logits.


def _readout_parameters(width: int, input_dim: int, n_classes: int, depth: int) -> int:
    return _readout_macs(width, input_dim, n_classes, depth) + width + n_classes  # Projection, phases, read-out.


# Convolutional members evaluate 1000 rows at a time: one layer's activations of a whole split run to gigabytes
# (ResNet18 at k = 64: 2.6 GB for 10000 CIFAR-10 images).
CONV_EVAL_BATCH = 1000


def _conv_info(name: str, macs, parameters, activations, datasets: tuple[str, ...], *,
               mapped: bool = False) -> ModelInfo:
    """The row of a convolutional family: its counts take (width, input_shape, n_classes); depth is unused.
    `mapped`: the mapped layout may evaluate it on XLA's convolution."""
    def by_shape(count):
        return lambda width, shape, classes, depth: count(width, shape, classes)

    def build(conv=None):
        return lambda depth, shape, classes, widths=(1, 2), loss="cross_entropy": conv_family(
            name, shape, classes, conv=conv, widths=widths, loss=loss)

    return ModelInfo(build(), by_shape(macs), parameters=by_shape(parameters), activations=by_shape(activations),
                     datasets=datasets, by_shape=True, one_device_on_cpu=True, eval_batch=CONV_EVAL_BATCH,
                     mapped_evaluation=build("lax") if mapped else None)


MODELS: dict[str, ModelInfo] = {}
BUILT_IN: set[str] = set()  # Names ddjax registers itself: a user's family cannot take them.
REGISTERED_IN: dict[str, str | None] = {}  # A user's family -> the .py file that registered it (None: unknown).


def register(name: str, info: ModelInfo, *, built_in: bool = False, origin: str | None = None) -> None:
    """Adds family `name` to the table (`ddjax.registration.add_row`: a built-in name cannot be taken)."""
    add_row(MODELS, BUILT_IN, REGISTERED_IN, name, info, kind="model", noun="family", built_in=built_in,
            origin=origin)


register("mlp", ModelInfo(mlp, _mlp_macs, PackedForm("hidden", jax.nn.relu, fixed_features=False),
                          parameters=_mlp_parameters, activations=_mlp_activations, block_packed=True,
                          two_layer_relu=True),
         built_in=True)
register("random_relu_features",
         ModelInfo(lambda depth, draw="common": random_features("relu", draw), _readout_macs,
                   PackedForm("features", jax.nn.relu, fixed_features=True), closed_form=True,
                   parameters=_readout_parameters, activations=_mlp_activations, feature_map="relu"), built_in=True)
register("random_fourier_features",
         ModelInfo(lambda depth, draw="common": random_features("fourier", draw), _readout_macs,
                   PackedForm("features", cosine_features, fixed_features=True), closed_form=True,
                   parameters=_readout_parameters, activations=_mlp_activations, feature_map="fourier"),
         built_in=True)
register("cnn1d", _conv_info("cnn1d", cnn1d_macs, cnn1d_parameters, cnn1d_activations, ("mnist1d",), mapped=True),
         built_in=True)
register("cnn5", _conv_info("cnn5", cnn5_macs, cnn5_parameters, cnn5_activations, ("cifar10",)), built_in=True)
register("resnet18", _conv_info("resnet18", resnet18_macs, resnet18_parameters, resnet18_activations,
                                ("mnist", "fashion_mnist", "cifar10")), built_in=True)
# Minimum-norm least squares on x ~ N(0, I_p) itself: the design is drawn per member by the data set.
# On multiscale_regression it is trained by full-batch gradient descent (method="gradient_descent").
register("linear", ModelInfo(None, _readout_macs, closed_form=True,
                             datasets=("gaussian_regression", "multiscale_regression")), built_in=True)


def model_info(name: str) -> ModelInfo:
    """The table row of model family `name`; ConfigError naming the allowed names if there is none."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}, or a name given to "
                          f"ddjax.register_model")
    return MODELS[name]


def get_model(name: str, *, depth: int = 1, input_shape: tuple[int, ...] | None = None, n_classes: int = 10,
              widths: tuple[int, ...] = (1, 2), loss: str = "cross_entropy", feature_draw: str = "common") -> Family:
    """The model family called `name`, with `depth` hidden layers where the family has a depth; module families
    (`by_shape`) are built for one example of `input_shape` (H, W, C images; (L,) signals), `n_classes`, and members
    of `widths` trained with `loss` (their padding is checked for those: `ddjax.models.module_family`); random
    features (`feature_map`) drawn by `feature_draw`."""
    info = model_info(name)
    if info.build is None:
        trainable = ", ".join(k for k, v in MODELS.items() if v.build is not None)
        raise ValueError(f"model {name!r} has no trainable family: its read-out is solved in closed form "
                         f"(method=min_norm) on the data set's design; trainable: {trainable}")
    if info.by_shape:
        if input_shape is None:
            raise ValueError(f"model {name!r} is built for the shape of one example: give the input_shape of one example")
        return info.build(depth, tuple(input_shape), n_classes, tuple(widths), loss)
    if info.feature_map is not None:
        return info.build(depth, feature_draw)
    return info.build(depth)


def packed_form(name: str, depth: int = 1) -> PackedForm | None:
    """How the packed layout holds `name` at `depth` hidden layers, or None where it cannot (deeper models)."""
    return model_info(name).packed if depth == 1 else None


def parameter_count(name: str, width: int, input_dim: int, n_classes: int, depth: int = 1, *,
                    input_shape: tuple[int, ...] | None = None) -> int:
    """Stored parameter values of one member of `width` (an upper bound where the family gives none)."""
    info = model_info(name)
    if info.parameters is None:
        return forward_macs(name, width, input_dim, n_classes, depth, input_shape=input_shape)
    return info.parameters(width, _input(info, input_dim, input_shape), n_classes, depth)


def activation_count(name: str, width: int, input_dim: int, n_classes: int, depth: int = 1, *,
                     input_shape: tuple[int, ...] | None = None) -> int:
    """Activation values one example of one member keeps for the backward pass (an upper bound where the family
    gives none)."""
    info = model_info(name)
    if info.activations is None:
        return forward_macs(name, width, input_dim, n_classes, depth, input_shape=input_shape)
    return info.activations(width, _input(info, input_dim, input_shape), n_classes, depth)


def forward_macs(name: str, width: int, input_dim: int, n_classes: int, depth: int = 1, *,
                 input_shape: tuple[int, ...] | None = None) -> int:
    """Multiply-accumulates of one forward pass of one example through a member of `width` (convolutional
    families count from `input_shape`, default (input_dim,))."""
    info = model_info(name)
    return info.forward_macs(width, _input(info, input_dim, input_shape), n_classes, depth)


def _input(info: ModelInfo, input_dim: int, input_shape: tuple[int, ...] | None):
    """What a family's counts take: the shape of one example for a convolutional family, else input_dim."""
    return tuple(input_shape or (input_dim,)) if info.by_shape else input_dim
