"""Convolutional families of width k, each a flax module of ONE member on a batch, written as a user writes one
(`ddjax.models.module_family`): the width is a field, and ddjax pads members to a group's widest.

- `cnn1d`: the MNIST-1D notebook's CNN: Conv1d(1 -> k, kernel 5, stride 2, padding 1), then twice
  Conv1d(k -> k, kernel 3, stride 2, padding 1) (40 -> 19 -> 10 -> 5 positions), ReLU after each, no
  normalization, then a linear layer from 5k to the classes.
- `cnn5`: Nakkiran et al.'s 5-layer CNN: four conv3x3 (with bias) - BatchNorm - ReLU layers of k, 2k, 4k, 8k
  channels, 2x2 max-pooling after the second, third and fourth, 4x4 max-pooling, a linear layer from 8k.
- `resnet18`: preactivation ResNet18 (He et al. 2016; the kuangliu/pytorch-cifar version Nakkiran et al. use):
  3x3 stem conv of k channels, four stages of two preactivation blocks (BatchNorm - ReLU - conv3x3, twice) of
  k, 2k, 4k, 8k channels with strides 1, 2, 2, 2, a 1x1 shortcut conv where the shape changes, global average
  pooling and a linear layer. Convolutions have no bias (BatchNorm follows). k = 64: 11,171,146 parameters.

Kernels are drawn N(0, gain / fan_in) at the member's width (He initialization, gain 2 before a ReLU; gain 1 for
the linear read-out), biases and BatchNorm offsets 0, scales 1. A padded channel has zero weights, bias, scale and
offset, so it stays 0 through convolution, BatchNorm (its batch statistics are 0) and ReLU, and its gradient is 0:
padding is exact (tested against members at their true widths). The convolution's form (patch matmuls or
`lax.conv_general_dilated`) is chosen per backend by `ddjax.models.conv_ops`.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddjax.models.conv_ops import conv_function
from ddjax.models.family import Family
from ddjax.models.module_family import ModuleMember, module_family

BN_MOMENTUM = 0.9  # flax's decay of the running averages: PyTorch's momentum 0.1.
BN_EPSILON = 1e-5  # PyTorch's default.
HE = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
LECUN = nn.initializers.variance_scaling(1.0, "fan_in", "normal")


class CNN1D(nn.Module):
    """The MNIST-1D notebook CNN on [B, L, 1] signals."""

    width: int
    n_classes: int
    conv: Callable

    @nn.compact
    def __call__(self, x):
        for i, (kernel, stride) in enumerate(((5, 2), (3, 2), (3, 2))):
            x = nn.Conv(self.width, (kernel,), (stride,), [(1, 1)], conv_general_dilated=self.conv, kernel_init=HE,
                        name="stem" if i == 0 else None)(x)
            x = nn.relu(x)
        return nn.DenseGeneral(self.n_classes, axis=(-2, -1), kernel_init=LECUN, name="head")(x)


def _norm_relu(x, train, example_mask, name=None):
    """BatchNorm (statistics of this member's counted rows only) then ReLU.

    With bfloat16 inputs (`precision="bfloat16"`), flax's BatchNorm reduces the batch statistics and normalizes in
    float32, keeps the running statistics float32, and returns bfloat16 (the dtype of its input and parameters).
    """
    x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(
        x, mask=None if example_mask is None else example_mask[:, None, None, None])
    return nn.relu(x)


class CNN5(nn.Module):
    """Nakkiran et al.'s 5-layer CNN on [B, H, W, C] images (32 x 32 for the pooling to reach 1 x 1)."""

    width: int
    n_classes: int
    conv: Callable

    @nn.compact
    def __call__(self, x, train, example_mask=None):
        for i, multiple in enumerate((1, 2, 4, 8)):
            x = nn.Conv(self.width * multiple, (3, 3), (1, 1), [(1, 1), (1, 1)], conv_general_dilated=self.conv,
                        kernel_init=HE, name="stem" if i == 0 else None)(x)
            x = _norm_relu(x, train, example_mask)
            if i > 0:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.max_pool(x, (4, 4), (4, 4))
        return nn.Dense(self.n_classes, kernel_init=LECUN, name="head")(x.reshape(x.shape[0], -1))


class PreActBlock(nn.Module):
    """BatchNorm - ReLU - conv3x3 (stride), BatchNorm - ReLU - conv3x3, plus the (1x1 conv) shortcut."""

    channels: int
    stride: int
    conv: Callable

    @nn.compact
    def __call__(self, x, train, example_mask):
        out = _norm_relu(x, train, example_mask)
        conv = dict(use_bias=False, conv_general_dilated=self.conv, kernel_init=HE)
        if self.stride != 1 or x.shape[-1] != self.channels:
            shortcut = nn.Conv(self.channels, (1, 1), (self.stride,) * 2, [(0, 0), (0, 0)], **conv)(out)
        else:
            shortcut = x
        out = nn.Conv(self.channels, (3, 3), (self.stride,) * 2, [(1, 1), (1, 1)], **conv)(out)
        out = _norm_relu(out, train, example_mask)
        out = nn.Conv(self.channels, (3, 3), (1, 1), [(1, 1), (1, 1)], **conv)(out)
        return out + shortcut


class PreActResNet18(nn.Module):
    """Preactivation ResNet18 of stage widths k, 2k, 4k, 8k on [B, H, W, C] images."""

    width: int
    n_classes: int
    conv: Callable

    @nn.compact
    def __call__(self, x, train, example_mask=None):
        x = nn.Conv(self.width, (3, 3), (1, 1), [(1, 1), (1, 1)], use_bias=False, conv_general_dilated=self.conv,
                    kernel_init=HE, name="stem")(x)
        for multiple, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            for block_stride in (stride, 1):
                x = PreActBlock(self.width * multiple, block_stride, self.conv)(x, train, example_mask)
        return nn.Dense(self.n_classes, kernel_init=LECUN, name="head")(jnp.mean(x, axis=(1, 2)))


MODULES = {"cnn1d": CNN1D, "cnn5": CNN5, "resnet18": PreActResNet18}


def conv_member(name: str, input_shape: tuple[int, ...], n_classes: int = 10, *,
                conv: str | None = None) -> ModuleMember:
    """The members of family `name` ("cnn1d", "cnn5", "resnet18") on examples of `input_shape` (a 1-D signal of
    length L is read as [L, 1]); `conv` picks the convolution's form ("patches" or "lax"; default per backend)."""
    shape = tuple(input_shape) + (1,) if len(input_shape) == 1 else tuple(input_shape)
    return ModuleMember(_maker(name, conv_function(conv)), shape, n_classes)


_MAKERS: dict = {}


def _maker(name: str, function: Callable) -> Callable[[int, int], nn.Module]:
    """One maker per (family, convolution form), so the module family's caches are shared by every sweep."""
    key = (name, function)
    if key not in _MAKERS:
        _MAKERS[key] = lambda width, n_classes: MODULES[name](width, n_classes, function)
    return _MAKERS[key]


def conv_family(name: str, input_shape: tuple[int, ...], n_classes: int = 10, *, conv: str | None = None,
                widths: tuple[int, ...] = (1, 2), loss: str = "cross_entropy") -> Family:
    """The family `name` for members of `widths` (`ddjax.models.module_family`); its padding is exact by
    construction (module docstring), so the float64 check is not run."""
    return module_family(conv_member(name, input_shape, n_classes, conv=conv), widths, loss, checked=True)


def parameter_count(family: Family, width: int, n_classes: int = 10) -> int:
    """Trainable parameters of a member of `width` (its variables at its true width)."""
    params = family.init(0, width, width, 0, n_classes)["params"]
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))

