"""Validation of a config: every value allowed, every combination meaningful, or one line naming the value and
what is allowed (`ConfigError`)."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from ddjax.config.axes import AXES
from ddjax.config.fields import (FIELDS, INITS, INT32_MAX, LOSSES, LR_SCHEDULES, MAX_EVALS, MAX_SAMPLES,
                                 MAX_VALIDATION_FRACTION, METHODS, MODES, PRECISIONS, THEORIES, X_AXES, Config,
                                 check_type, chunk_steps_of, steps_per_epoch)
from ddjax.data.arrays import is_npz
from ddjax.data.registry import DATASETS, dataset_info
from ddjax.data.sampling import SAMPLINGS
from ddjax.errors import ConfigError
from ddjax.models.feature_draws import DRAWS
from ddjax.models.registry import MODELS, model_info
from ddjax.optimizers import OPTIMIZERS


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def validate(config: Config, *, registries: bool = True) -> Config:
    """Returns `config` unchanged if every value is allowed, else raises `ConfigError`; marks it validated, so that
    `ensure_valid` takes it as it is.

    Args:
      registries: False leaves out every check that asks the model or data-set registry (that the names exist,
        and what the family and data set allow), and the one of JAX's 64-bit mode, which only training needs; the
        config is not marked validated. Enough to read a stored run's outputs, which needs neither its family nor
        its data set (`ddjax.runs.outputs.load_run`).
    """
    for key in FIELDS:
        check_type(key, getattr(config, key))
    c = config
    if registries:
        _require(c.dataset in DATASETS or is_npz(c.dataset), "dataset", c.dataset,
                 f"one of {', '.join(DATASETS)}, npz:PATH, or a name given to ddjax.register_dataset")
        dataset_info(c.dataset)  # npz:PATH: the file is read and checked here (a one-line ConfigError).
        _require(c.model in MODELS, "model", c.model,
                 f"one of {', '.join(MODELS)}, or a name given to ddjax.register_model")
    for key, choices in (("optimizer", tuple(OPTIMIZERS)),
                         ("loss", LOSSES), ("mode", MODES), ("method", METHODS), ("x_axis", X_AXES),
                         ("sampling", SAMPLINGS), ("precision", PRECISIONS),
                         ("lr_schedule", LR_SCHEDULES), ("init", INITS), ("theory", THEORIES),
                         ("feature_draw", DRAWS)):
        _require(getattr(c, key) in choices, key, getattr(c, key), f"one of {', '.join(choices)}")
    _require(10 <= c.n_samples <= MAX_SAMPLES, "n_samples", c.n_samples,
             f"an integer in [10, {MAX_SAMPLES}] (generated data sets are made on the host before training)")
    _require(0 < c.train_fraction < 1, "train_fraction", c.train_fraction, "a fraction in (0, 1)")
    if registries:
        _validate_method(c)
        _validate_n_train(c)
    _validate_axes(c)
    if registries:
        _validate_regularization(c)
    _require(c.batch_size >= 0, "batch_size", c.batch_size, "an integer >= 0 (0 means full batch)")
    _require(c.batch_size <= min(c.n_train), "batch_size", c.batch_size,
             f"at most the smallest n_train ({min(c.n_train)}), or 0 for full batch")
    _require(c.steps >= 1, "steps", c.steps, "an integer >= 1")
    _require(c.n_chunks < 1 or c.steps + chunk_steps_of(c.steps, c.n_chunks) <= INT32_MAX, "steps", c.steps,
             f"an integer with steps + steps per chunk <= {INT32_MAX} (step counters are int32)")
    _validate_batches(c, registries=registries)
    _validate_validation(c)
    _require(c.n_evals >= 1, "n_evals", c.n_evals, "an integer >= 1")
    _require(c.n_evals <= MAX_EVALS, "n_evals", c.n_evals,
             f"at most {MAX_EVALS} (the eval grid is built on the host; each point evaluates every member)")
    _require(c.n_chunks >= 1, "n_chunks", c.n_chunks, "an integer >= 1")
    _require(c.depth >= 1, "depth", c.depth, "an integer >= 1")
    _require(c.input_dim >= 1, "input_dim", c.input_dim, "an integer >= 1")
    _require(c.n_classes >= 2, "n_classes", c.n_classes, "an integer >= 2")
    _require(c.lr_schedule_steps >= 1, "lr_schedule_steps", c.lr_schedule_steps, "an integer >= 1")
    _require(c.lr_schedule == "constant" or c.method == "train", "lr_schedule", c.lr_schedule,
             f"only 'constant' with method={c.method} (a closed form takes no steps)")
    _require(math.isfinite(c.teacher_noise) and c.teacher_noise >= 0, "teacher_noise", c.teacher_noise,
             "a finite number >= 0")
    _require(0 <= c.train_tolerance < 1, "train_tolerance", c.train_tolerance, "a number in [0, 1)")
    _require(c.data_seed >= 0, "data_seed", c.data_seed, "an integer >= 0")
    _require(c.memory_budget_bytes >= 0, "memory_budget_bytes", c.memory_budget_bytes,
             "an integer >= 0 (0: the device's own memory)")
    _require(c.max_members_per_program >= 0, "max_members_per_program", c.max_members_per_program,
             "an integer >= 0 (0: as many as fit)")
    _require(c.precision == "float32" or c.method == "train", "precision", c.precision,
             f"only float32 with method={c.method} (a closed form trains nothing)")
    _require(c.precision != "float64" or _x64_enabled() or not registries, "precision", c.precision,
             "only with JAX's 64-bit mode on (JAX_ENABLE_X64=1, or `with jax.enable_x64(True):` in Python)")
    _require(c.n_bootstrap >= 0, "n_bootstrap", c.n_bootstrap, "an integer >= 0 (0 means no bootstrap)")
    _require(len(c.feature_scales) >= 1 and all(math.isfinite(a) and a > 0 for a in c.feature_scales),
             "feature_scales", c.feature_scales, "one or more finite numbers > 0")
    for key in ("signal_norm_sq", "noise_var"):
        value = getattr(c, key)
        _require(math.isfinite(value) and value >= 0, key, value, "a finite number >= 0")
    if registries:
        object.__setattr__(config, "_validated", True)  # Not a field: equality, hashing and to_dict ignore it.
    return config


def _x64_enabled() -> bool:
    """Whether JAX makes float64 arrays now (its 64-bit mode, global or in a `jax.enable_x64` context)."""
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def _validate_method(c: Config) -> None:
    """The combinations of method, model, data set and loss that have a meaning."""
    model, data = model_info(c.model), dataset_info(c.dataset)
    if c.method == "min_norm":
        closed_form = [name for name, info in MODELS.items() if info.closed_form]
        _require(model.closed_form, "model", c.model, f"with method=min_norm one of {', '.join(closed_form)}")
        _require(c.loss == "squared", "loss", c.loss, "with method=min_norm only squared (least squares)")
    if data.models is not None:
        _require(c.model in data.models, "model", c.model, f"with dataset={c.dataset} only {', '.join(data.models)}")
    if c.method == "gradient_descent":
        descent = [name for name, info in DATASETS.items() if info.methods and c.method in info.methods]
        _require(c.method in (data.methods or ()), "method", c.method,
                 f"only with dataset={', '.join(descent)} (a regression drawn per member)")
        _require(c.optimizer == "sgd" and c.batch_size == 0, "optimizer",
                 f"{c.optimizer} with batch_size={c.batch_size}",
                 "with method=gradient_descent only sgd with batch_size=0 (full-batch gradient descent)")
        _require(c.loss == "squared", "loss", c.loss, "with method=gradient_descent only squared (least squares)")
    if data.methods is not None:
        _require(c.method in data.methods, "method", c.method,
                 f"with dataset={c.dataset} only {', '.join(data.methods)}")
    if data.no_label_noise:
        _require(c.label_noise == (0.0,), "label_noise", c.label_noise,
                 f"only 0 with dataset={c.dataset} ({data.no_label_noise})")
    regression = [name for name, info in DATASETS.items() if info.regression]
    _require(c.target_noise == (0.0,) or data.regression, "target_noise", c.target_noise,
             f"only 0 with dataset={c.dataset} (it applies to a regression data set: {', '.join(regression)})")
    if c.method == "train":
        wanted = "only mse (float targets)" if data.regression else "cross_entropy or squared (integer labels)"
        _require((c.loss == "mse") == data.regression, "loss", c.loss, f"with dataset={c.dataset} {wanted}")
    if model.datasets is not None:
        _require(c.dataset in model.datasets, "model", c.model,
                 f"{c.model} only with dataset={', '.join(model.datasets)}")
    _validate_init_and_theory(c, data)


# The layer groups the linearized theory tells apart: a one-hidden-layer MLP's first layer, or its read-out.
THEORY_GROUPS = ("hidden/0/*", "out/*")


def _validate_init_and_theory(c: Config, data) -> None:
    """Paired units need a one-hidden-layer MLP of even widths; the linearized theory needs that network trained
    by full-batch gradient descent on a regression data set, its layer group one of its two layers."""
    one_hidden_layer = MODELS[c.model].two_layer_relu and c.depth == 1
    if c.init == "paired":
        _require(one_hidden_layer, "init", c.init, f"paired only with model=mlp of depth=1, not {c.model} of "
                                                   f"depth={c.depth}")
        _require(all(w % 2 == 0 for w in c.width), "width", c.width, "even integers with init=paired")
    if c.theory == "linearized":
        needs = {"model=mlp, depth=1": one_hidden_layer, "a regression data set": data.regression,
                 "optimizer=sgd": c.optimizer == "sgd", "batch_size=0": c.batch_size == 0,
                 "lr_schedule=constant": c.lr_schedule == "constant", "weight_decay=0": c.weight_decay == (0.0,),
                 f"layer_group one of {', '.join(THEORY_GROUPS)}": c.layer_group in THEORY_GROUPS}
        missing = [need for need, ok in needs.items() if not ok]
        _require(not missing, "theory", c.theory, f"linearized only with {', '.join(missing)}")


def _validate_n_train(c: Config) -> None:
    """Every n_train within the training split of the data set (any n_train where it is drawn per member)."""
    if dataset_info(c.dataset).n_train_available is None:
        _require(all(n >= 1 for n in c.n_train), "n_train", c.n_train, "integers >= 1")
        return
    n_available = n_train_available(c)
    split = dataset_info(c.dataset).describe_split(c)
    _require(all(1 <= n <= n_available for n in c.n_train), "n_train", c.n_train,
             f"integers in [1, {n_available}] ({split})")


def _validate_regularization(c: Config) -> None:
    """Weight decay needs a first layer that trains."""
    packed = model_info(c.model).packed
    _require(c.weight_decay == (0.0,) or not (packed and packed.fixed_features), "weight_decay", c.weight_decay,
             f"only 0 with model={c.model} (its first layer is fixed; use method=min_norm with ridge)")


def _validate_axes(c: Config) -> None:
    """Every axis's values, from its row of `ddjax.config.axes.AXES`: at least one, no duplicates, each allowed, and
    a value other than the default only where the axis applies."""
    for axis in AXES:
        values = getattr(c, axis.name)
        _require(len(values) > 0, axis.name, values, "at least one value")
        _require(len(set(values)) == len(values), axis.name, values, "no duplicate values")
        _require(all(axis.check(v) for v in values), axis.name, values, axis.allowed)
        refusal = axis.applies(c)
        default = ", ".join(f"{v:g}" for v in axis.default)
        _require(values == axis.default or refusal is None, axis.name, values, f"only {default} with {refusal}")


def validation_size(n_train: int, validation_fraction: float) -> int:
    """Examples of a member's n_train held out for validation: its last round(validation_fraction * n_train)."""
    return int(round(validation_fraction * n_train))


def _validate_batches(c: Config, *, registries: bool) -> None:
    """Sampling, epochs and augmentation: only where the trainer draws batches, augmentation only of images (a
    question for the data-set registry, asked only with `registries`)."""
    _require(c.epochs >= 0, "epochs", c.epochs, "an integer >= 0 (0: steps gives the length)")
    if c.method != "train":
        for key, default in (("sampling", "replacement"), ("epochs", 0), ("augment", False)):
            _require(getattr(c, key) == default, key, getattr(c, key),
                     f"only {default!r} with method={c.method} (a closed form draws no batches)")
    if registries:
        images = [name for name, info in DATASETS.items() if info.images]
        _require(not c.augment or dataset_info(c.dataset).images, "augment", c.augment,
                 f"only with an image data set ({', '.join(images)}), not dataset={c.dataset}")
    if c.epochs > 0:
        _require(c.sampling == "epoch", "epochs", c.epochs,
                 "only with sampling=epoch (drawn with replacement, an epoch is no pass over the data); give steps")
        length = steps_per_epoch(c)
        _require(length is not None, "epochs", c.epochs,
                 f"only when every n_train gives one epoch length (ceil(n_train / batch_size={c.batch_size}) "
                 f"differs over n_train={c.n_train}); give steps instead")
        _require(c.steps == c.epochs * length, "steps", c.steps,
                 f"epochs={c.epochs} sets steps to {c.epochs} x {length} = {c.epochs * length}; give one of steps "
                 f"and epochs (epochs=0 to give steps)")


def _validate_validation(c: Config) -> None:
    """validation_fraction: a fraction in [0, MAX_VALIDATION_FRACTION] that holds out at least one example and leaves
    a batch (trained) or an example (closed form) to fit."""
    _require(math.isfinite(c.validation_fraction) and 0 <= c.validation_fraction <= MAX_VALIDATION_FRACTION,
             "validation_fraction", c.validation_fraction,
             f"a fraction in [0, {MAX_VALIDATION_FRACTION}] of each member's n_train held out for validation")
    if c.validation_fraction == 0:
        return
    _require(c.method in ("train", "min_norm"), "validation_fraction", c.validation_fraction,
             f"only 0 with method={c.method} (held-out rows are recorded by the trainer and the closed form)")
    for n in c.n_train:
        held_out = validation_size(n, c.validation_fraction)
        _require(held_out >= 1, "validation_fraction", c.validation_fraction,
                 f"a fraction that holds out at least one of n_train={n} examples (round({c.validation_fraction} x "
                 f"{n}) = 0)")
        fitted = max(c.batch_size, 1) if c.method == "train" else 1
        _require(n - held_out >= fitted, "validation_fraction", c.validation_fraction,
                 f"a fraction that leaves at least batch_size={c.batch_size} of n_train={n} examples to train on")


def n_train_available(config: Config) -> int:
    """Size of the training split a member may draw n_train from (see `ddjax.data.registry`)."""
    return dataset_info(config.dataset).n_train_available(config)


def ensure_valid(config: Config) -> Config:
    """`config` as it is if `validate` passed it already (every config `ddjax.config.replace` makes), else
    validated now: each config is validated once, where it is made."""
    return config if getattr(config, "_validated", False) else validate(config)
