"""The view of ONE member (`ddjax.training.engine.MemberView`): the grouped, mapped and serial layouts' bundles, which
`ddjax.training.trainer.build_program` vmaps over a group of members padded to one width (or runs alone).

Each member's values are scalars, its parameters its own tree: `per_entry` broadcasts a scalar onto every leaf,
and `member_sums` adds up every entry. `member_init`, `member_step` and `member_record` are the engine's functions
over this view.
"""

from __future__ import annotations

import fnmatch
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ddjax.models.family import ModelState, Params
from ddjax.models.padding import leaf_paths
from ddjax.training import engine
from ddjax.training.inputs import model_inputs
from ddjax.training.spec import Members, SharedData, TrainSpec, compute_cast


class OneMember(NamedTuple):
    """The engine's view of one member of `width` (see the module docstring)."""

    spec: TrainSpec
    width: Any  # The member's true width (traced under vmap).
    class_axis: int = -1

    def logits(self, params: Params, model_state: ModelState, x: jax.Array, train: bool,
               example_mask: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
        """Logits [B, C] of the member on a batch of model inputs, and its new model state, in the precision of
        the spec (`compute_cast`)."""
        spec = self.spec
        if spec.precision in ("float32", "float64"):  # Nothing inserted: float32 programs are exactly what they were.
            return spec.model.apply(params, model_state, self.width, x, train, example_mask)
        params, x = compute_cast(spec.precision, (params, x))
        logits, model_state = spec.model.apply(params, model_state, self.width, x, train, example_mask)
        return logits.astype(jnp.float32), model_state

    def per_example(self, params: Params, model_state: ModelState, labels: jax.Array,
                    data: SharedData) -> tuple[jax.Array, jax.Array]:
        train = self.stored_logits(params, model_state, data.x_train)
        test = self.stored_logits(params, model_state, data.x_test)
        return (engine.per_example(self.spec, train, labels, self.class_axis),
                engine.per_example(self.spec, test, data.y_test, self.class_axis))

    def stored_logits(self, params: Params, model_state: ModelState, stored: jax.Array) -> jax.Array:
        """Evaluation logits on stored inputs: all rows as one batch, or (`spec.eval_batch` > 0, the convolutional
        families) chunks of that many rows (`lax.map`), so no activation of the whole split is held."""
        spec = self.spec
        if not spec.eval_batch:
            return self.logits(params, model_state, model_inputs(spec, stored), False)[0]
        n = stored.shape[0]
        size = min(spec.eval_batch, n)
        n_chunks = -(-n // size)
        padded = jnp.concatenate([stored, jnp.zeros((n_chunks * size - n, *stored.shape[1:]), stored.dtype)])

        def chunk_logits(rows):
            return self.logits(params, model_state, model_inputs(spec, rows), False)[0]

        logits = jax.lax.map(chunk_logits, padded.reshape(n_chunks, size, *stored.shape[1:]))
        return logits.reshape(n_chunks * size, -1)[:n]

    def per_entry(self, values: jax.Array, tree: Any) -> Any:
        return jax.tree.map(lambda _: values, tree)

    def member_sums(self, tree: Any) -> jax.Array:
        return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree))

    def group_mask(self, params: Params) -> Any:
        return group_mask(params, self.spec.layer_group)

    def entry_mask(self, params: Params) -> Any:
        mask = getattr(self.spec.model, "entry_mask", None)  # None: no family (gradient descent's solver).
        return None if mask is None else mask(params, self.width)


def group_mask(params: Params, pattern: str) -> Any:
    """True on every leaf of a member's parameters whose path ("hidden/0/w", a module's "Dense_0/kernel") matches
    the glob `pattern`."""
    return jax.tree.unflatten(jax.tree.structure(params), [fnmatch.fnmatchcase(path, pattern)
                                                           for path in leaf_paths(params)])


def member_view(spec: TrainSpec, member: Members) -> OneMember:
    """The engine's view of `member` (one member: its fields are scalars)."""
    return OneMember(spec, member.width)


def member_init(spec: TrainSpec, initial: dict, member: Members) -> engine.State:
    """Initial training state of one member from its (padded) initial variables as the family's `init` gave them:
    parameters and model state."""
    return engine.init(member_view(spec, member), initial["params"], initial["model_state"], member)


def member_step(spec: TrainSpec, state: engine.State, member: Members, data: SharedData, step) -> engine.State:
    """One optimizer step of one member (`ddjax.training.engine.step`)."""
    return engine.step(member_view(spec, member), state, member, data, step)


def member_record(spec: TrainSpec, state: engine.State, member: Members, data: SharedData, index) -> engine.State:
    """Writes the member's current evaluation into column `index` of its curves (`ddjax.training.engine.record`)."""
    return engine.record(member_view(spec, member), state, member, data, index)


def member_eval(spec: TrainSpec, params: Params, member: Members, data: SharedData,
                model_state: ModelState = {}) -> dict[str, jax.Array]:
    """The evaluation of one member (`ddjax.training.engine.evaluate`)."""
    return engine.evaluate(member_view(spec, member), params, model_state, member, data)
