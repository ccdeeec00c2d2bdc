"""A user's own model family, registered from an experiment file or a notebook cell: `register_model(name, X)`.

X is one of
- a flax linen `Module` class with a `width` field, written for ONE member applied to a batch `x [B, *input_shape]`
  (images: standardized float NHWC; flat data: [B, d]) and returning logits [B, n_classes]; an `n_classes` field
  is filled in from the data set, other fields from `register_model`'s keyword arguments;
- a function `(width, **kwargs) -> Module` making such a module;
- a `ddjax.models.family.Family`, which follows the padding rule of that interface itself.

A module is held the way the built-in convolutional families are (`ddjax.models.module_family`): its `__call__`
may take `train` (BatchNorm), `example_mask` (the rows that count, for BatchNorm's statistics) and `active_width`
(the member's true width when it is held at a larger one); it is initialized by its own initializers, from
`jax.random.key(seed)` of the member, at the member's width, and its members of different widths train padded to
their group's widest, in a few programs, once a float64 check has shown that exact for the module; where it is
not, each width trains as its own program and the run says why. Parameter count, multiply-accumulates and
activation size come from the module (`ddjax.models.derived`) unless given.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddjax.errors import ConfigError
from ddjax.models.derived import counted, derived_counts
from ddjax.models.family import Family
from ddjax.models.module_family import ModuleMember, calls_of, check_collections, module_family
from ddjax.models.registry import CONV_EVAL_BATCH, ModelInfo, register
from ddjax.registration import caller_file


def register_model(name: str, module_or_family: Any, *, parameters: Callable | None = None,
                   macs: Callable | None = None, activations: Callable | None = None,
                   eval_batch: int = CONV_EVAL_BATCH, datasets: tuple[str, ...] | None = None,
                   **module_kwargs: Any) -> ModelInfo:
    """Registers model family `name` (`model=name` in a config); see the module docstring for what it takes.

    Args:
      parameters, macs, activations: `(width, input_shape, n_classes) -> int`, replacing the derived counts
        (stored parameter values, multiply-accumulates of one example's forward pass, activation values one
        example keeps for the backward pass) that memory planning and width grouping read.
      eval_batch: rows evaluated at once.
      datasets: the only data sets it applies to (None: any).
      module_kwargs: the module's other fields.

    Raises:
      ConfigError (one line): a built-in family's name, or a module (or function) that takes no `width`.
    """
    origin = caller_file()
    if isinstance(module_or_family, Family):
        family = module_or_family
        probe = _family_probe(family)
        build = lambda depth, shape, classes, widths=(1, 2), loss="cross_entropy": family  # noqa: E731
    else:
        make = _module_maker(name, module_or_family, module_kwargs)
        probe = _module_probe(make)

        def build(depth, shape, classes, widths=(1, 2), loss="cross_entropy"):
            return module_family(ModuleMember(make, tuple(shape), classes), widths, loss)

    derived = derived_counts(probe)
    info = ModelInfo(build, counted(macs, derived.macs), parameters=counted(parameters, derived.parameters),
                     activations=counted(activations, derived.activations), datasets=datasets, by_shape=True,
                     eval_batch=eval_batch)
    register(name, info, origin=origin)
    return info


def _module_maker(name: str, module: Any, kwargs: dict[str, Any]) -> Callable[[int, int], nn.Module]:
    """(width, n_classes) -> the module of one member; ConfigError if `module` takes no width."""
    if isinstance(module, type) and issubclass(module, nn.Module):
        fields = {f.name for f in dataclasses.fields(module)} - {"name", "parent"}  # Less flax's own two.
    elif callable(module) and not isinstance(module, nn.Module):
        fields = set(inspect.signature(module).parameters)
    else:
        raise ConfigError(f"model {name!r}: a {type(module).__name__} instance is not allowed: give a flax linen "
                          f"Module class, a function making one, or a ddjax Family")
    if "width" not in fields:
        raise ConfigError(f"model {name!r}: {getattr(module, '__name__', module)!r} takes no `width` (fields or "
                          f"arguments: {', '.join(sorted(fields)) or 'none'}); a family is written for one member "
                          f"of a width")
    unknown = set(kwargs) - fields
    if unknown:
        raise ConfigError(f"model {name!r}: {getattr(module, '__name__', module)!r} takes no "
                          f"{', '.join(sorted(unknown))}")

    def make(width: int, n_classes: int) -> nn.Module:
        extra = {"n_classes": n_classes} if "n_classes" in fields and "n_classes" not in kwargs else {}
        return module(width=int(width), **kwargs, **extra)

    return make


def _module_probe(make):
    def probe(width, input_shape, n_classes):
        module = make(width, n_classes)
        takes_train = calls_of(module).train
        options = {"train": False} if takes_train else {}
        x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        shapes = jax.eval_shape(lambda x: module.init(jax.random.key(0), x, **options), x)
        check_collections(module, set(shapes))

        def forward(variables, x):
            return module.apply(variables, x, **options)

        logits = jax.eval_shape(forward, shapes, x)
        if logits.shape != (1, n_classes):
            raise ConfigError(f"module {type(module).__name__} gives outputs of shape {list(logits.shape)} for one "
                              f"example, expected logits [1, {n_classes}] (the data set's classes)")
        return shapes, forward

    return probe


def _family_probe(family: Family):
    def probe(width, input_shape, n_classes):
        input_dim = int(np.prod(input_shape))
        variables = family.init(0, width, width, input_dim, n_classes)
        shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.float32), variables)

        def forward(variables, x):
            return family.apply(variables["params"], variables["model_state"], width, x.reshape(1, -1), False)[0]

        return shapes, forward

    return probe
