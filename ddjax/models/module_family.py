"""The family of a flax module written for ONE member of a width: the one adapter of every module family, the
built-in convolutional ones (`ddjax.models.conv`) and a user's (`ddjax.register_model`) alike.

The module has a `width` field (and an `n_classes` field if it wants one) and is called on a batch `x [B,
*input_shape]`, returning logits [B, n_classes]; its `__call__` may take `train` (BatchNorm: batch statistics in
training, running ones in evaluation; its "batch_stats" collection becomes the member's state), `example_mask`
(the rows that count, for BatchNorm's statistics) and `active_width` (the member's true width, which ddjax passes
when the module is held at a larger width: a module that takes it can make itself exact where ddjax cannot see,
e.g. attention's 1 / sqrt(head width)).

Members are initialized by the module's own initializers at their true width, from `jax.random.key(seed)`, and
held at the width of their group with zeros after their true entries (`ddjax.models.padding`): the engine masks
the updates of the padded entries (`Family.entry_mask`), normalization layers get the mask of their true features,
and `ddjax.models.exactness` checks, once per module, data shape and loss in a process, that this is exact. Where
it is not (the check names where), the family says so (`Family.padding`) and the sweep trains one program per
width.
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ddjax.errors import ConfigError
from ddjax.models import exactness, padding
from ddjax.models.family import Family, Padding

COLLECTIONS = ("params", "batch_stats")  # What a member's variables may hold.
CHECK_ROWS = 8  # Examples the exactness check runs on.
# An init runs once a sweep, and on a CPU LLVM's optimization passes made most of its compile time (15 widths of a
# two-layer MLP in one program: 28 s optimized, 3.9 s without; 2-core AMD EPYC under load). Without them the
# draws differ from the optimized program's by at most 3 ulp; padded and serial members draw through the same
# programs, so they start from the same values.
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


class Calls(NamedTuple):
    """What a module's `__call__` takes beside the batch."""

    train: bool
    example_mask: bool
    active_width: bool


def calls_of(module: nn.Module) -> Calls:
    parameters = inspect.signature(type(module).__call__).parameters
    return Calls("train" in parameters, "example_mask" in parameters, "active_width" in parameters)


class ModuleMember(NamedTuple):
    """One module family's members at their widths: the module maker and what its call takes."""

    make: Callable[[int, int], nn.Module]  # (width, n_classes) -> the module of one member.
    input_shape: tuple[int, ...]
    n_classes: int

    def module(self, width: int) -> nn.Module:
        return _module(self.make, int(width), self.n_classes)

    @functools.lru_cache(maxsize=64)
    def calls(self) -> Calls:
        return calls_of(self.module(1))

    def options(self, train: bool, example_mask=None, active_width=None) -> dict[str, Any]:
        calls = self.calls()
        options = {"train": train} if calls.train else {}
        if calls.example_mask:
            options["example_mask"] = example_mask
        if calls.active_width and active_width is not None:
            options["active_width"] = active_width
        return options

    @functools.lru_cache(maxsize=64)
    def shapes(self, width: int) -> Any:
        """`jax.eval_shape` of the variables of a member of `width`."""
        module = self.module(width)
        x = jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32)
        return jax.eval_shape(lambda x: module.init(jax.random.key(0), x, **self.options(False)), x)

    def norm_inputs(self, width: int) -> dict:
        module = self.module(width)
        x = jax.ShapeDtypeStruct((1, *self.input_shape), jnp.float32)
        variables = self.shapes(width)
        return padding.recorded_norm_inputs(lambda: jax.eval_shape(
            lambda v, x: module.apply(v, x, **self.options(False)), variables, x))

    def apply(self, width: int, variables: Any, x: jax.Array, train: bool, example_mask=None,
              active_width=None) -> tuple[jax.Array, Any]:
        """(logits, new batch_stats or None) of the module of `width` on x [B, *input_shape]."""
        module = self.module(width)
        options = self.options(train, example_mask, active_width)
        if train and "batch_stats" in variables:
            logits, updates = module.apply(variables, x, mutable=["batch_stats"], **options)
            return logits, updates["batch_stats"]
        return module.apply(variables, x, **options), None


@functools.lru_cache(maxsize=256)
def _module(make, width: int, n_classes: int) -> nn.Module:
    return make(width, n_classes)


def module_family(member: ModuleMember, widths: tuple[int, ...], loss: str, *, checked: bool = False) -> Family:
    """The `Family` of a module's members at `widths` (see the module docstring), for training with `loss`.

    `checked`: the module's padding is known exact (a built-in family, tested against its members at their true
    widths): the float64 check is skipped.
    """
    widths = tuple(sorted({int(w) for w in widths}))
    read_at = widths if len(widths) > 1 else (widths[0], widths[0] + 1)  # Growth is read between two widths.
    check_collections(member.module(widths[0]), set(member.shapes(widths[0])))
    width_of = _widths_by_shapes(member, widths)
    layout = padding.width_layout(lambda w: member.shapes(w)["params"], member.norm_inputs, read_at)
    if isinstance(layout, str):
        verdict = Padding(False, layout, 0.0)
    else:
        verdict = Padding(True, None, 0.0) if checked else check_padding(member, layout, widths, loss)
    exact = verdict.exact

    def init(seed, width, max_width, input_dim=None, n_classes=None):
        return _variables(_padded(member.shapes(int(max_width)), _initialize(member, int(width))(
            jax.random.key(int(seed)))))

    def init_group(groups):
        return [_variables(jax.tree.map(np.asarray, stacked)) for stacked in _group_init(member, tuple(
            (tuple(int(w) for w in group_widths), int(max_width)) for _, group_widths, max_width in groups))(
            [jnp.stack([jax.random.key(int(s)) for s in seeds]) for seeds, _, _ in groups])]

    def apply(params, model_state, width, x, train, example_mask=None):
        variables = {"params": params, **({"batch_stats": model_state} if model_state else {})}
        # The width the member is held at: its group's.
        held = layout.width_of(params) if exact else width_of[_shapes_key(params)]
        x = x.reshape(x.shape[0], *member.input_shape)
        run = functools.partial(member.apply, held, variables, x, train, example_mask, width)
        if not exact:
            logits, state = run()
        else:
            with nn.intercept_methods(padding.masked_norms(layout, width)):
                logits, state = run()
        return logits, (model_state if state is None else state)

    def entry_mask(params, width):
        return padding.entry_mask(layout, params, width)

    return Family(init, apply, entry_mask=entry_mask if exact else None, init_group=init_group if exact else None,
                  padding=verdict)


def _variables(tree: dict) -> dict:
    return {"params": tree["params"], "model_state": tree.get("batch_stats", {})}


def _padded(shapes: Any, variables: Any) -> Any:
    return padding.pad_variables(jax.tree.map(np.asarray, variables), shapes)


def _init_program(fn: Callable) -> Callable:
    """`fn` jit-compiled at the shapes of its first call (an init: called again only with the same shapes), on a
    CPU without LLVM's optimization passes (`INIT_COMPILER_OPTIONS`)."""
    compiled = []

    def run(*args):
        if not compiled:
            options = INIT_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
            compiled.append(jax.jit(fn).lower(*args).compile(compiler_options=options))
        return compiled[0](*args)

    return run


@functools.lru_cache(maxsize=256)
def _initialize(member: ModuleMember, width: int) -> Callable:
    """The compiled init of a member of `width` (compiled once per width)."""
    module = member.module(width)
    options = member.options(False)
    return _init_program(lambda key: module.init(key, jnp.zeros((1, *member.input_shape), jnp.float32), **options))


@functools.lru_cache(maxsize=64)
def _group_init(member: ModuleMember, groups: tuple[tuple[tuple[int, ...], int], ...]) -> Callable:
    """One compiled init of the members of a program's groups ((widths, max_width) each: one member a width), each
    drawn at its width (the members of one width vmapped over their keys) and padded to its group's `max_width`
    shapes, stacked per group in member order: one compile a program."""
    options = member.options(False)
    x = jnp.zeros((1, *member.input_shape), jnp.float32)

    def init(keys):
        out = []
        for (widths, max_width), group_keys in zip(groups, keys):
            target = member.shapes(max_width)
            members_of = {w: np.array([i for i, v in enumerate(widths) if v == w]) for w in sorted(set(widths))}
            drawn = [jax.vmap(lambda key, w=w: member.module(w).init(key, x, **options))(group_keys[members])
                     for w, members in members_of.items()]
            padded = [jax.tree.map(_pad_stacked, tree, target) for tree in drawn]
            order = np.argsort(np.concatenate(list(members_of.values())))
            out.append(jax.tree.map(lambda *leaves: jnp.concatenate(leaves)[order], *padded))
        return out

    return _init_program(init)


def _pad_stacked(stacked: jax.Array, target: Any) -> jax.Array:
    """Members stacked on the leading axis, each zero-padded after its entries to `target`'s shape."""
    return jnp.pad(stacked, [(0, 0), *((0, n - m) for m, n in zip(stacked.shape[1:], target.shape))])


def check_collections(module: nn.Module, collections: set[str]) -> None:
    """ConfigError (one line) unless a module's variables are params, and batch_stats with a `train` argument."""
    if collections - set(COLLECTIONS) or ("batch_stats" in collections and not calls_of(module).train):
        raise ConfigError(f"module {type(module).__name__} has variables {', '.join(sorted(collections))}: allowed "
                          f"params, and batch_stats with a `train` argument to __call__")


def _widths_by_shapes(member: ModuleMember, widths: tuple[int, ...]) -> dict:
    """Parameter shapes -> the width whose module has them: a member's apply finds its group's width from its
    (padded) parameters. ConfigError if two widths have the same shapes."""
    found = {}
    for width in widths:
        key = _shapes_key(member.shapes(width)["params"])
        if key in found:
            raise ConfigError(f"module {type(member.module(width)).__name__} has the same parameter shapes at widths "
                              f"{found[key]} and {width}: members are told apart by their shapes")
        found[key] = width
    return found


def _shapes_key(params: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    return str(treedef), tuple(tuple(np.shape(leaf)) for leaf in leaves)


_CHECKED: dict[Any, Padding] = {}  # The answers of `check_padding` in this process.


def check_padding(member: ModuleMember, layout: padding.WidthLayout, widths: tuple[int, ...], loss: str) -> Padding:
    """Whether members padded into wider ones are exact: the structural check, then the numerical check of the
    smallest width padded into the next one (`ddjax.models.exactness`), in float64, on random inputs of the data's
    shape; cached per module, data shape and loss."""
    if len(widths) < 2:  # One width: nothing is padded.
        return Padding(True, None, 0.0)
    # Above width 1 where the sweep has two such widths: a width-1 member's normalization over its width is
    # identically 0, and where its gradients are exactly 0 Adam's step would be a ratio of a wider module's roundings.
    checked = [w for w in widths if w > 1] if len([w for w in widths if w > 1]) >= 2 else list(widths)
    pairs = ((checked[0], checked[1]),)
    key = (member, pairs, loss)
    if key not in _CHECKED:
        start = time.perf_counter()
        reason = _check(member, layout, pairs, loss)
        _CHECKED[key] = Padding(reason is None, reason, time.perf_counter() - start)
    return _CHECKED[key]


def _check(member: ModuleMember, layout: padding.WidthLayout, pairs, loss: str) -> str | None:
    x1 = jax.ShapeDtypeStruct((CHECK_ROWS, *member.input_shape), jnp.float32)
    reason = exactness.structural_check(
        lambda w: jax.make_jaxpr(lambda v, x: member.apply(w, v, x, False)[0])(member.shapes(w), x1),
        pairs[0][0], pairs[0][1])
    if reason:
        return reason
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((CHECK_ROWS, *member.input_shape)))
        labels = jnp.asarray(rng.integers(0, member.n_classes, CHECK_ROWS))
        stateful = "batch_stats" in member.shapes(pairs[0][0])

        def init(w):
            variables = member.module(w).init(jax.random.key(0), jnp.zeros((1, *member.input_shape)),
                                              **member.options(False))
            return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)

        def pad(variables, big):
            return jax.tree.map(lambda a, t: jnp.pad(a, [(0, n - m) for m, n in zip(a.shape, t.shape)]), variables,
                                member.shapes(big))

        def apply_padded(big, w, variables, x, train):
            with nn.intercept_methods(padding.masked_norms(layout, w)):
                return member.apply(big, variables, x, train, None, w)

        def apply_true(w, variables, x, train):
            return member.apply(w, variables, x, train, None, w)

        def one_loss(logits):
            if loss == "cross_entropy":
                return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))
            return 0.5 * jnp.mean(jnp.sum((logits - jax.nn.one_hot(labels, logits.shape[-1])) ** 2, axis=-1))

        return exactness.numerical_check(pairs, init=init, apply_true=apply_true, apply_padded=apply_padded,
                                         pad=pad, mask=lambda params, w: padding.entry_mask(layout, params, w),
                                         calls=_module_outputs, x=x, loss=one_loss, stateful=stateful)


def _module_outputs(run: Callable[[], Any]) -> list[tuple[str, Any]]:
    """[(module path, output)] of every module called while `run()` runs, in call order."""
    outputs = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and isinstance(out, jax.Array):
            outputs.append(("/".join(context.module.scope.path), out))
        return out

    with nn.intercept_methods(interceptor):
        run()
    return outputs
