"""A user's own model family, registered from an experiment file or a notebook cell: `register_model(name, X)`.

X is one of
- a flax linen `Module` class with a `width` field, written for ONE member applied to a batch `x [B, *input_shape]`
  (images: standardized float NHWC; flat data: [B, d]) and returning logits [B, n_classes]; an `n_classes` field
  is filled in from the data set, other fields from `register_model`'s keyword arguments;
- a function `(width, **kwargs) -> Module` making such a module;
- a `ddjax.models.family.Family`, which follows the padding rule of that interface itself.

A module's `__call__` may take `train` (BatchNorm: batch statistics in training, running ones in evaluation; its
"batch_stats" collection becomes the member's state) and `example_mask` (rows that count, for BatchNorm's
statistics; without it, the padded rows of a partial last batch enter them). Its variables are initialized by its
own initializers, from `jax.random.key(seed)` of the member, at the member's width.

A module knows nothing of padding, so its members are never padded: the grouped layout trains each width as its
own program (compiled once per width), its members (seeds, noise levels, ...) vmapped side by side, the widths
one after another; serial mode trains members one at a time. Parameter count, multiply-accumulates and
activation size come from the module (`ddjax.models.derived`) unless given.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddjax.errors import ConfigError
from ddjax.models.derived import counted, derived_counts
from ddjax.models.family import Family
from ddjax.models.registry import CONV_EVAL_BATCH, ModelInfo, register
from ddjax.registration import caller_file

COLLECTIONS = ("params", "batch_stats")  # What a member's variables may hold.


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
        probe, build, paddable = _family_probe(family), (lambda depth, shape, classes: family), True
    else:
        make = _module_maker(name, module_or_family, module_kwargs)
        probe, paddable = _module_probe(make), False
        build = lambda depth, shape, classes: linen_family(make, tuple(shape), classes)  # noqa: E731
    derived = derived_counts(probe)
    info = ModelInfo(build, counted(macs, derived.macs), parameters=counted(parameters, derived.parameters),
                     activations=counted(activations, derived.activations), datasets=datasets, convolutional=True,
                     eval_batch=eval_batch, paddable=paddable)
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


def _call_options(module: nn.Module) -> tuple[bool, bool]:
    """Whether the module's `__call__` takes `train` and `example_mask`."""
    parameters = inspect.signature(type(module).__call__).parameters
    return "train" in parameters, "example_mask" in parameters


def _module_probe(make):
    def probe(width, input_shape, n_classes):
        module = make(width, n_classes)
        takes_train, _ = _call_options(module)
        options = {"train": False} if takes_train else {}
        x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        shapes = jax.eval_shape(lambda x: module.init(jax.random.key(0), x, **options), x)
        _check_collections(module, set(shapes), takes_train)

        def forward(variables, x):
            return module.apply(variables, x, **options)

        logits = jax.eval_shape(forward, shapes, x)
        if logits.shape != (1, n_classes):
            raise ConfigError(f"module {type(module).__name__} gives outputs of shape {list(logits.shape)} for one "
                              f"example, expected logits [1, {n_classes}] (the data set's classes)")
        return shapes, forward

    return probe


def _check_collections(module: nn.Module, collections: set[str], takes_train: bool) -> None:
    if collections - set(COLLECTIONS) or ("batch_stats" in collections and not takes_train):
        raise ConfigError(f"module {type(module).__name__} has variables {', '.join(sorted(collections))}: allowed "
                          f"params, and batch_stats with a `train` argument to __call__")


def _family_probe(family: Family):
    def probe(width, input_shape, n_classes):
        input_dim = int(np.prod(input_shape))
        variables = family.init(0, width, width, input_dim, n_classes)
        shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.float32), variables)

        def forward(variables, x):
            return family.apply(variables["params"], variables["model_state"], width, x.reshape(1, -1), False)[0]

        return shapes, forward

    return probe


def linen_family(make: Callable[[int, int], nn.Module], input_shape: tuple[int, ...], n_classes: int) -> Family:
    """The `Family` of a user's module (see the module docstring): never padded, so `init` takes
    `max_width == width`, and `apply` finds a member's width from its parameters' shapes."""
    def module_at(width: int):
        return _module_at(make, width, n_classes, tuple(input_shape))

    def shapes_key(params):
        return make, n_classes, tuple(input_shape), _shapes_key(params)

    def init(seed, width, max_width, input_dim, classes):
        if max_width != width:
            raise ValueError(f"a module family cannot be padded (width {width} to {max_width}): each width trains "
                             f"in its own group")
        module, takes_train, _, initialize = module_at(int(width))
        variables = jax.tree.map(lambda a: np.asarray(a, np.float32), initialize(jax.random.key(int(seed))))
        _check_collections(module, set(variables), takes_train)
        key = shapes_key(variables["params"])
        if _WIDTH_OF_SHAPES.setdefault(key, int(width)) != int(width):
            raise ConfigError(f"module {type(module).__name__} has the same parameter shapes at widths "
                              f"{_WIDTH_OF_SHAPES[key]} and {width}: members are told apart by their shapes")
        return {"params": variables["params"], "model_state": variables.get("batch_stats", {})}

    def apply(params, model_state, width, x, train, example_mask=None):
        module, takes_train, takes_mask, _ = module_at(_WIDTH_OF_SHAPES[shapes_key(params)])
        options = {"train": train} if takes_train else {}
        if takes_mask:
            options["example_mask"] = example_mask
        x = x.reshape(x.shape[0], *input_shape)
        variables = {"params": params, "batch_stats": model_state} if model_state else {"params": params}
        if train and model_state:
            logits, updates = module.apply(variables, x, mutable=["batch_stats"], **options)
            return logits, updates["batch_stats"]
        return module.apply(variables, x, **options), model_state

    return Family(init, apply)


# (maker, n_classes, input_shape, parameter shapes) -> the width whose `init` made them: `apply` is traced with
# the member's parameters only, and a module needs its width as a Python int.
_WIDTH_OF_SHAPES: dict[Any, int] = {}


@functools.lru_cache(maxsize=256)
def _module_at(make, width: int, n_classes: int, input_shape: tuple[int, ...]):
    """The module of one member, what its `__call__` takes, and its jitted init (compiled once per width, for
    every family built from `make`)."""
    module = make(width, n_classes)
    takes_train, takes_mask = _call_options(module)
    options = {"train": False} if takes_train else {}
    initialize = jax.jit(lambda key: module.init(key, jnp.zeros((1, *input_shape), jnp.float32), **options))
    return module, takes_train, takes_mask, initialize


def _shapes_key(params: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    return str(treedef), tuple(tuple(np.shape(leaf)) for leaf in leaves)
