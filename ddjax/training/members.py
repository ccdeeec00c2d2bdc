"""A sweep's members: the grid of the config's axes, and what the trainer needs of each member.

`expand_members` lists one coordinate per member and axis; `train_spec`, `shared_data` and `stack_members` turn
the config, the data set and a set of members into the trainer's inputs. Both the trainer's layouts
(`ddjax.training.layouts`) and the closed-form solvers (`ddjax.solvers`) start from them.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from ddjax.config import AXES, AXIS, Config, chunk_steps_of, member_input_axes, validation_size
from ddjax.data.augment import image_spec
from ddjax.data.datasets import Dataset, is_regression, member_labels
from ddjax.models.family import Params, Variables
from ddjax.models.registry import get_model, model_info
from ddjax.training.member import group_mask
from ddjax.training.spec import Members, SharedData, TrainSpec, log_spaced_steps


def expand_members(config: Config) -> dict[str, np.ndarray]:
    """The cartesian grid of the config's axes, one entry per member (the last axis varies fastest)."""
    grid = list(itertools.product(*(getattr(config, axis.name) for axis in AXES)))
    return {axis.name: np.array([point[i] for point in grid]) for i, axis in enumerate(AXES)}


def train_spec(config: Config, dataset: Dataset) -> TrainSpec:
    """The static training description of `config`; image data keep their shape in `image` and are flattened to
    H * W * C inputs at the model boundary."""
    return TrainSpec(
        model=get_model(config.model, depth=config.depth, input_shape=model_input_shape(dataset),
                        n_classes=dataset.n_classes, widths=config.width, loss=config.loss,
                        feature_draw=config.feature_draw),
        optimizer=config.optimizer,
        loss=config.loss, batch_size=config.batch_size, steps=config.steps,
        eval_steps=log_spaced_steps(config.steps, config.n_evals),
        chunk_steps=chunk_steps_of(config.steps, config.n_chunks),
        input_dim=int(np.prod(dataset.x_train.shape[1:])), n_classes=dataset.n_classes, sampling=config.sampling,
        image=image_spec(dataset.x_train, augment=config.augment), precision=config.precision,
        lr_schedule=config.lr_schedule, lr_schedule_steps=config.lr_schedule_steps,
        eval_batch=model_info(config.model).eval_batch, validation=config.validation_fraction > 0,
        member_axes=member_input_axes(config), layer_group=config.layer_group, init=config.init)


def model_input_shape(dataset: Dataset) -> tuple[int, ...]:
    """The shape of one stored example: (H, W, C) for images, (features,) for flat data."""
    return tuple(int(d) for d in dataset.x_train.shape[1:])


def stack_members(coords: dict[str, np.ndarray], index: np.ndarray, dataset: Dataset, config: Config,
                  spec: TrainSpec, max_width: int) -> tuple[Variables, Members]:
    """Initial variables (`{"params", "model_state"}`, padded to `max_width`) and `Members` of the members at
    `index`, stacked. A member holding out validation rows trains on the first n_train - n_val of its n_train
    examples (`Members.n_train`) and is validated on the last n_val; its labels are corrupted over all n_train, as
    the training set the validation split is carved from."""
    return stack_groups(coords, [(index, max_width)], dataset, config, spec)[0]


def stack_groups(coords: dict[str, np.ndarray], groups: list[tuple[np.ndarray, int]], dataset: Dataset,
                 config: Config, spec: TrainSpec) -> list[tuple[Variables, Members]]:
    """`stack_members` of each (member indices, padded width) of a program's groups; a family that initializes
    whole groups (`Family.init_group`: a module family) initializes them all in one call."""
    if spec.model.init_group is not None:
        initial = spec.model.init_group([(coords["seed"][index], coords["width"][index], width)
                                         for index, width in groups])
        initial = [jax.tree.map(jnp.asarray, {**group, "params": _stacked([
            initial_params(spec, jax.tree.map(lambda a: np.asarray(a)[k], group["params"]), int(coords["width"][i]),
                           float(coords["layer_init_scale"][i])) for k, i in enumerate(index)])})
            for group, (index, _) in zip(initial, groups)] if _transformed(spec, coords) else initial
    else:
        initial = [_stacked([member_variables(spec, int(coords["seed"][i]), int(coords["width"][i]), width,
                                              float(coords["layer_init_scale"][i])) for i in index])
                   for index, width in groups]
    return [(variables, _members(coords, index, dataset, config, spec)) for variables, (index, _) in
            zip(initial, groups)]


def member_variables(spec: TrainSpec, seed: int, width: int, max_width: int, init_scale: float = 1.0) -> Variables:
    """A member's initial variables, padded to `max_width`: the family's own, then `initial_params`."""
    variables = spec.model.init(seed, width, max_width, spec.input_dim, spec.n_classes)
    return {**variables, "params": initial_params(spec, variables["params"], width, init_scale)}


def initial_params(spec: TrainSpec, params: Params, width: int, init_scale: float = 1.0) -> Params:
    """A member's initial parameters (host arrays) as the config asks beyond its family: `init="paired"` (a
    one-hidden-layer MLP: unit k + width / 2 takes unit k's input weights and bias and the opposite read-out
    weights, so every output starts at 0), and the parameters of `layer_group` times `layer_init_scale`."""
    if spec.init == "paired":
        half = width // 2
        (layer,) = params["hidden"]
        w, b, out = (np.array(a) for a in (layer["w"], layer["b"], params["out"]["w"]))
        w[:, half:width], b[half:width], out[half:width] = w[:, :half], b[:half], -out[:half]
        params = {**params, "hidden": [{"w": w, "b": b}], "out": {**params["out"], "w": out}}
    if init_scale != 1.0:
        group = group_mask(params, spec.layer_group)
        params = jax.tree.map(lambda p, g: np.asarray(p) * np.float32(init_scale) if g else p, params, group)
    return params


def _transformed(spec: TrainSpec, coords: dict[str, np.ndarray]) -> bool:
    return spec.init != "standard" or bool(np.any(coords["layer_init_scale"] != 1.0))


def _stacked(variables: list[Variables]) -> Variables:
    return jax.tree.map(lambda *leaves: jnp.asarray(np.stack(leaves)), *variables)


def _members(coords: dict[str, np.ndarray], index: np.ndarray, dataset: Dataset, config: Config,
             spec: TrainSpec) -> Members:
    """The `Members` of the members at `index` (see `stack_members`)."""
    labels = np.stack([member_labels(dataset, int(coords["n_train"][i]), float(coords["label_noise"][i]),
                                     int(coords["seed"][i]), config.data_seed, float(coords["target_noise"][i]))
                       for i in index])
    n_val = np.array([validation_size(int(coords["n_train"][i]), config.validation_fraction) for i in index])
    values = {name: coords[name][index] for name in spec.member_axes}
    values["n_train"] = values["n_train"] - n_val
    return Members(**{name: jnp.asarray(v, AXIS[name].dtype) for name, v in values.items()},
                   labels=jnp.asarray(labels[..., :max(config.n_train)]),
                   n_val=jnp.asarray(n_val, jnp.int32) if spec.validation else None)


def shared_data(dataset: Dataset, config: Config) -> SharedData:
    """The device copy of the training split (truncated to the largest n_train) and the test split, in their
    stored dtype (images stay uint8)."""
    n_max = max(config.n_train)
    y_test = dataset.y_test.T if is_regression(dataset) else dataset.y_test  # Targets [outputs, rows].
    return SharedData(jnp.asarray(dataset.x_train[:n_max]), jnp.asarray(dataset.x_test), jnp.asarray(y_test))
