"""Convolutional families of width k, written for ONE member on a batch (flax linen; see `ddjax.models.stateful`).

- `cnn1d`: the MNIST-1D notebook's CNN: Conv1d(1 -> k, kernel 5, stride 2, padding 1), then twice
  Conv1d(k -> k, kernel 3, stride 2, padding 1) (40 -> 19 -> 10 -> 5 positions), ReLU after each, no
  normalization, then a linear layer from 5k to the classes.
- `cnn5`: Nakkiran et al.'s 5-layer CNN: four conv3x3 (with bias) - BatchNorm - ReLU layers of k, 2k, 4k, 8k
  channels, 2x2 max-pooling after the second, third and fourth, 4x4 max-pooling, a linear layer from 8k.
- `resnet18`: preactivation ResNet18 (He et al. 2016; the kuangliu/pytorch-cifar version Nakkiran et al. use):
  3x3 stem conv of k channels, four stages of two preactivation blocks (BatchNorm - ReLU - conv3x3, twice) of
  k, 2k, 4k, 8k channels with strides 1, 2, 2, 2, a 1x1 shortcut conv where the shape changes, global average
  pooling and a linear layer. Convolutions have no bias (BatchNorm follows). k = 64: 11,171,146 parameters.

Every module is built at a padded `max_width` and masks each channel beyond the member's `width` (times the
stage's multiplier) after its activation (after BatchNorm + ReLU where there is one), so padded channels are
exactly 0 and get zero gradient. The convolution's form (patch matmuls or `lax.conv_general_dilated`) is chosen
per backend by `ddjax.models.conv_ops`.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddjax.models.conv_ops import conv_function
from ddjax.models.family import Family
from ddjax.models.family import unit_mask
from ddjax.models.stateful import flax_family

BN_MOMENTUM = 0.9  # flax's decay of the running averages: PyTorch's momentum 0.1.
BN_EPSILON = 1e-5  # PyTorch's default.


class CNN1D(nn.Module):
    """The MNIST-1D notebook CNN on [B, L, 1] signals."""

    max_width: int
    n_classes: int
    conv: Callable

    @nn.compact
    def __call__(self, x, width, train, example_mask=None):
        mask = unit_mask(width, self.max_width, x.dtype)  # The input's dtype is the compute dtype.
        for i, (kernel, stride) in enumerate(((5, 2), (3, 2), (3, 2))):
            x = nn.Conv(self.max_width, (kernel,), (stride,), [(1, 1)], conv_general_dilated=self.conv,
                        name="stem" if i == 0 else None)(x)
            # Mask after the activation so padded channels get exactly zero gradient.
            x = nn.relu(x) * mask
        return nn.DenseGeneral(self.n_classes, axis=(-2, -1), name="head")(x)


def stage_mask(x: jax.Array, width, max_width: int) -> jax.Array:
    """The channel mask of channels-last `x` (in its dtype), whose channel count is a multiple m of `max_width`: the
    member has m * width real channels there."""
    multiple = x.shape[-1] // max_width
    return unit_mask(width * multiple, max_width * multiple, x.dtype)


def _norm_relu(x, width_mask, train, example_mask, name=None):
    """BatchNorm (statistics of this member's counted rows only) then ReLU, then the channel mask (in `x`'s dtype).

    With bfloat16 inputs (`precision="bfloat16"`), flax's BatchNorm reduces the batch statistics and normalizes in
    float32, keeps the running statistics float32, and returns bfloat16 (the dtype of its input and parameters).
    """
    x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(
        x, mask=None if example_mask is None else example_mask[:, None, None, None])
    return nn.relu(x) * width_mask


class CNN5(nn.Module):
    """Nakkiran et al.'s 5-layer CNN on [B, H, W, C] images (32 x 32 for the pooling to reach 1 x 1)."""

    max_width: int
    n_classes: int
    conv: Callable

    @nn.compact
    def __call__(self, x, width, train, example_mask=None):
        for i, multiple in enumerate((1, 2, 4, 8)):
            x = nn.Conv(self.max_width * multiple, (3, 3), (1, 1), [(1, 1), (1, 1)], conv_general_dilated=self.conv,
                        name="stem" if i == 0 else None)(x)
            x = _norm_relu(x, unit_mask(width * multiple, self.max_width * multiple, x.dtype), train, example_mask)
            if i > 0:
                x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.max_pool(x, (4, 4), (4, 4))
        return nn.Dense(self.n_classes, name="head")(x.reshape(x.shape[0], -1))


class PreActBlock(nn.Module):
    """BatchNorm - ReLU - conv3x3 (stride), BatchNorm - ReLU - conv3x3, plus the (1x1 conv) shortcut."""

    channels: int
    stride: int
    max_width: int
    conv: Callable

    @nn.compact
    def __call__(self, x, width, train, example_mask):
        out = _norm_relu(x, stage_mask(x, width, self.max_width), train, example_mask)
        conv = dict(use_bias=False, conv_general_dilated=self.conv)
        if self.stride != 1 or x.shape[-1] != self.channels:
            shortcut = nn.Conv(self.channels, (1, 1), (self.stride,) * 2, [(0, 0), (0, 0)], **conv)(out)
        else:
            shortcut = x
        out = nn.Conv(self.channels, (3, 3), (self.stride,) * 2, [(1, 1), (1, 1)], **conv)(out)
        out = _norm_relu(out, stage_mask(out, width, self.max_width), train, example_mask)
        out = nn.Conv(self.channels, (3, 3), (1, 1), [(1, 1), (1, 1)], **conv)(out)
        return out + shortcut


class PreActResNet18(nn.Module):
    """Preactivation ResNet18 of stage widths k, 2k, 4k, 8k on [B, H, W, C] images."""

    max_width: int
    n_classes: int
    conv: Callable

    @nn.compact
    def __call__(self, x, width, train, example_mask=None):
        x = nn.Conv(self.max_width, (3, 3), (1, 1), [(1, 1), (1, 1)], use_bias=False,
                    conv_general_dilated=self.conv, name="stem")(x)
        for multiple, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            for block_stride in (stride, 1):
                x = PreActBlock(self.max_width * multiple, block_stride, self.max_width, self.conv)(
                    x, width, train, example_mask)
        # Padded channels are 0 here already (zero weights of masked inputs); the mask makes it explicit.
        x = jnp.mean(x * stage_mask(x, width, self.max_width), axis=(1, 2))
        return nn.Dense(self.n_classes, name="head")(x)


_MODULES = {"cnn1d": CNN1D, "cnn5": CNN5, "resnet18": PreActResNet18}


def conv_family(name: str, input_shape: tuple[int, ...], n_classes: int = 10, *,
                conv: str | None = None) -> Family:
    """The family `name` ("cnn1d", "cnn5", "resnet18") for one example of `input_shape` (a 1-D signal of length
    L is read as [L, 1]); `conv` picks the convolution's form ("patches" or "lax"; default per backend)."""
    shape = tuple(input_shape) + (1,) if len(input_shape) == 1 else tuple(input_shape)
    function = conv_function(conv)
    return flax_family(lambda max_width: _MODULES[name](max_width, n_classes, function), shape)


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


# Counts from each family's shapes, for the cost model (multiply-accumulates of one forward pass of one example)
# and for memory planning (`ddjax.training.memory`): parameters with BatchNorm's running statistics, and the
# activations one example keeps for the backward pass. A convolution keeps its input patches (taps x input
# channels a position: the CPU's patch matmuls) and its output; BatchNorm its normalized and scaled outputs; ReLU
# and the channel mask one array each; pooling its output. Each family's layers are walked in one place.


def _cnn1d_layers(width: int, input_shape: tuple[int, ...]):
    """(output positions, kernel taps, input channels, output channels) of each of `cnn1d`'s convolutions."""
    length, channels = input_shape[0], (input_shape[1] if len(input_shape) > 1 else 1)
    for kernel in (5, 3, 3):
        length = _out(length, kernel, 2, 1)
        yield length, kernel, channels, width
        channels = width


def cnn1d_macs(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Multiply-accumulates of one `cnn1d` forward pass of one example."""
    layers = list(_cnn1d_layers(width, input_shape))
    return sum(p * k * c_in * c_out for p, k, c_in, c_out in layers) + layers[-1][0] * width * n_classes


def cnn1d_parameters(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Parameters of one `cnn1d` member (kernels and biases; no BatchNorm)."""
    layers = list(_cnn1d_layers(width, input_shape))
    convs = sum(k * c_in * c_out + c_out for _, k, c_in, c_out in layers)
    return convs + layers[-1][0] * width * n_classes + n_classes


def cnn1d_activations(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Values one `cnn1d` example keeps for the backward pass: patches, convolution, ReLU and mask outputs."""
    return sum(p * k * c_in + 3 * p * c_out for p, k, c_in, c_out in _cnn1d_layers(width, input_shape)) + n_classes


def _cnn5_layers(width: int, input_shape: tuple[int, ...]):
    """(positions, input channels, output channels, positions after its 2x2 max-pooling or 0) of each of `cnn5`'s
    conv3x3 layers, and last the inputs of its linear layer (after the final 4x4 max-pooling) as (0, 0, n, 0)."""
    height, size_w, channels = input_shape
    for i, multiple in enumerate((1, 2, 4, 8)):
        pooled = (height // 2) * (size_w // 2) if i > 0 else 0
        yield height * size_w, channels, width * multiple, pooled
        channels = width * multiple
        if i > 0:
            height, size_w = height // 2, size_w // 2
    yield 0, 0, (height // 4) * (size_w // 4) * channels, 0


def cnn5_macs(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Multiply-accumulates of one `cnn5` forward pass of one example (convolutions and the linear layer)."""
    *convs, (_, _, features, _) = _cnn5_layers(width, input_shape)
    return sum(p * 9 * c_in * c_out for p, c_in, c_out, _ in convs) + features * n_classes


def cnn5_parameters(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Parameters of one `cnn5` member: kernels, biases, BatchNorm scales, offsets and running statistics."""
    *convs, (_, _, features, _) = _cnn5_layers(width, input_shape)
    return sum(9 * c_in * c_out + 5 * c_out for _, c_in, c_out, _ in convs) + features * n_classes + n_classes


def cnn5_activations(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Values one `cnn5` example keeps for the backward pass."""
    *convs, (_, _, features, _) = _cnn5_layers(width, input_shape)
    # Patches; conv, 2 BatchNorm, ReLU, mask outputs; the pooled output.
    return sum(p * (9 * c_in + 5 * c_out) + pooled * c_out for p, c_in, c_out, pooled in convs) + features + n_classes


def _resnet18_blocks(width: int, input_shape: tuple[int, ...]):
    """(input positions, output positions, input channels, output channels, stride) of each block."""
    height, size_w, channels = input_shape[0], input_shape[1], width
    for multiple, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
        for block_stride in (stride, 1):
            out_h, out_w = _out(height, 3, block_stride, 1), _out(size_w, 3, block_stride, 1)
            yield height * size_w, out_h * out_w, channels, width * multiple, block_stride
            height, size_w, channels = out_h, out_w, width * multiple


def _has_shortcut_conv(c_in: int, c_out: int, stride: int) -> bool:
    return stride != 1 or c_in != c_out


def resnet18_macs(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Multiply-accumulates of one `resnet18` forward pass of one example (convolutions and the linear layer)."""
    height, size_w, channels = input_shape
    macs = height * size_w * 9 * channels * width  # The stem.
    for _, out, c_in, c_out, stride in _resnet18_blocks(width, input_shape):
        macs += out * 9 * c_in * c_out + out * 9 * c_out * c_out
        macs += out * c_in * c_out if _has_shortcut_conv(c_in, c_out, stride) else 0
    return macs + 8 * width * n_classes


def resnet18_parameters(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Parameters of one `resnet18` member: kernels, BatchNorm scales, offsets and running statistics."""
    count = 9 * input_shape[-1] * width
    for _, _, c_in, c_out, stride in _resnet18_blocks(width, input_shape):
        count += 4 * c_in + 9 * c_in * c_out + 4 * c_out + 9 * c_out * c_out
        count += c_in * c_out if _has_shortcut_conv(c_in, c_out, stride) else 0
    return count + 8 * width * n_classes + n_classes


def resnet18_activations(width: int, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Values one `resnet18` example keeps for the backward pass."""
    height, size_w, channels = input_shape
    count = height * size_w * (9 * channels + width)  # The stem's patches and output.
    for positions, out, c_in, c_out, stride in _resnet18_blocks(width, input_shape):
        count += 4 * positions * c_in  # BatchNorm (2), ReLU, mask of the block's input.
        count += out * (9 * c_in + 5 * c_out)  # Patches; conv, BatchNorm (2), ReLU, mask.
        count += out * (9 * c_out + 2 * c_out)  # Patches; conv, the sum with the shortcut.
        count += out * (c_in + c_out) if _has_shortcut_conv(c_in, c_out, stride) else 0
    return count + 8 * width + n_classes


def parameter_count(family: Family, width: int, n_classes: int = 10) -> int:
    """Trainable parameters of a member of `width` (its variables at its true width)."""
    params = family.init(0, width, width, 0, n_classes)["params"]
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))

