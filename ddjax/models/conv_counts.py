"""Counts of the convolutional families (`ddjax.models.conv`), from their layers' shapes, for the cost model
(multiply-accumulates of one forward pass of one example) and memory planning (`ddjax.training.memory`):
parameters with BatchNorm's running statistics, and the activations one example keeps for the backward pass. A
convolution keeps its input patches (taps x input channels a position: the CPU's patch matmuls) and its output;
BatchNorm its normalized and scaled outputs; ReLU one array; pooling its output. Each family's layers are walked
in one place.
"""

from __future__ import annotations


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


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
