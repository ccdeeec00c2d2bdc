"""The convolution primitive, chosen per backend: patch matmuls on a CPU, XLA's convolution elsewhere.

Measured on the 2-core Intel Xeon: for the `cnn1d` sweep, XLA:CPU's `lax.conv_general_dilated` ran at about
5 GFLOP/s, while the same convolution written as patch matmuls (the kernel's k shifted, strided slices of the
padded input stacked, then one einsum against the kernel) ran at 33-44 GFLOP/s; on a GPU cuDNN's convolution is
the right primitive. `patch_conv` has `lax.conv_general_dilated`'s signature for channels-last inputs, so flax's
`nn.Conv(conv_general_dilated=...)` takes either. `DDJAX_CONV=patches|lax` overrides the choice.
"""

from __future__ import annotations

import itertools
import os
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

CONV_FORMS = ("patches", "lax")
CONV_ENV = "DDJAX_CONV"


def patch_conv(lhs: jax.Array, rhs: jax.Array, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
               dimension_numbers=None, feature_group_count: int = 1, precision=None, **_) -> jax.Array:
    """`lax.conv_general_dilated` for channels-last `lhs` [N, *spatial, C_in] and `rhs` [*kernel, C_in, C_out]
    (flax's layout), as one matmul of stacked input patches against the flattened kernel.

    Dilation and feature groups are not supported (ValueError); `padding` is "SAME", "VALID" or (low, high) pairs.
    """
    if any(d not in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ()))) or feature_group_count != 1:
        raise ValueError("patch_conv supports neither dilation nor feature groups")
    kernel = rhs.shape[:-2]
    strides = tuple(window_strides)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:-1], kernel, strides, padding)
    x = jnp.pad(lhs, [(0, 0), *[tuple(p) for p in padding], (0, 0)])
    out = [(x.shape[1 + i] - kernel[i]) // strides[i] + 1 for i in range(len(kernel))]
    slices = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        limit = [o + (n - 1) * s + 1 for o, n, s in zip(offset, out, strides)]
        slices.append(lax.slice(x, (0, *offset, 0), (x.shape[0], *limit, x.shape[-1]), (1, *strides, 1)))
    patches = jnp.stack(slices, axis=-2)  # [N, *out, K, C_in], K = prod(kernel) in row-major kernel order.
    weights = rhs.reshape(-1, rhs.shape[-2], rhs.shape[-1])  # [K, C_in, C_out], the same kernel order.
    return jnp.einsum("...kc,kco->...o", patches, weights, precision=precision)


def conv_form(form: str | None = None) -> str:
    """The convolution form to use: `form` if given, else $DDJAX_CONV, else "patches" on a CPU, "lax" elsewhere."""
    form = form or os.environ.get(CONV_ENV) or ("patches" if jax.default_backend() == "cpu" else "lax")
    if form not in CONV_FORMS:
        raise ValueError(f"unknown convolution form {form!r} (from {CONV_ENV} or the caller); "
                         f"allowed: {', '.join(CONV_FORMS)}")
    return form


def conv_function(form: str | None = None) -> Callable:
    """The function flax's `nn.Conv` should call for `conv_form(form)`."""
    return patch_conv if conv_form(form) == "patches" else lax.conv_general_dilated
