"""Typed experiment config: defaults, `--set KEY=VALUE` overrides and validation with clear errors."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

import jax
import numpy as np

from ddjax.data.arrays import is_npz
from ddjax.data.registry import DATASETS, dataset_info
from ddjax.data.sampling import SAMPLINGS
from ddjax.errors import ConfigError
from ddjax.models.registry import MODELS, model_info
from ddjax.optimizers import OPTIMIZERS

METHODS = ("train", "min_norm", "gradient_descent")
LR_SCHEDULES = ("constant", "inverse_sqrt")  # `ddjax.training.schedules` computes them.
LOSSES = ("cross_entropy", "squared")
MODES = ("vmap", "serial")
PRECISIONS = ("float32", "bfloat16", "float64")
INT32_MAX = 2**31 - 1  # Step counters, eval steps, widths and row indices are int32 inside the program.
MAX_EVALS = 10**6
# Generated data sets (MNIST-1D, gaussian) are made on the host before anything trains: 10^6 MNIST-1D samples are
# 160 MB of float32 and take about 20 minutes to generate (20000 took 24 s on the 2-core Intel Xeon, under load);
# more is refused before any of it is made.
MAX_SAMPLES = 10**6  # The log-spaced eval grid is built on the host, and each point evaluates every member.
AXES = ("width", "seed", "label_noise", "n_train", "learning_rate", "weight_decay", "ridge")
# Regularization strengths: `weight_decay` for method=train, `ridge` for method=min_norm. Outputs leave an axis out
# while it holds only its default 0 (no regularization), so unregularized runs write what they wrote before.
REGULARIZATION_AXES = ("weight_decay", "ridge")
MAX_VALIDATION_FRACTION = 0.5
X_AXES = ("auto", "width", "n_train", "label_noise", "learning_rate")




@dataclasses.dataclass(frozen=True)
class Config:
    """One sweep: data, model family, optimizer, and the grid of named axes.

    Axis fields (`width`, `seed`, `label_noise`, `n_train`, `learning_rate`, `weight_decay`, `ridge`) are tuples;
    the sweep trains every point of their cartesian grid.
    """

    # Data.
    # Or gaussian, gaussian_regression, an image data set (mnist, fashion_mnist, cifar10), npz:PATH, or a name given to
    # ddjax.register_dataset.
    dataset: str = "mnist1d"
    n_samples: int = 5000  # Generated samples, split into train and test (image data sets: their official split).
    train_fraction: float = 0.8
    input_dim: int = 40  # gaussian only; mnist1d is always 40.
    n_classes: int = 10  # gaussian only; mnist1d is always 10.
    teacher_noise: float = 0.0  # gaussian only: std of noise on the teacher's logits.
    # gaussian_regression only: x ~ N(0, I_p), y = x.b + noise, drawn per member (p = width, n = n_train).
    signal_norm_sq: float = 1.0  # r^2 = |b|^2.
    noise_var: float = 0.25  # s^2, the variance of the noise on y.
    # multiscale_regression only: the scales of equal blocks of input features, the first block first.
    feature_scales: tuple[float, ...] = (1.0,)
    data_seed: int = 0
    # Sweep axes.
    width: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    seed: tuple[int, ...] = (0,)
    label_noise: tuple[float, ...] = (0.0,)
    n_train: tuple[int, ...] = (1000,)
    learning_rate: tuple[float, ...] = (1e-3,)
    # method=train: L2 penalty (lambda / 2) |params|^2 added to the mean training loss, every trained parameter
    # (biases too); its gradient lambda * params joins the loss gradient before the optimizer, in every layout.
    weight_decay: tuple[float, ...] = (0.0,)
    # method=min_norm: ridge penalty lambda |w|^2 on the mean squared loss (Hastie et al. 2019's convention:
    # w = (Phi^T Phi + n lambda I)^-1 Phi^T Y); 0 is the minimum-norm solution. See `ddjax.solvers.closed_form`.
    ridge: tuple[float, ...] = (0.0,)
    # A fraction in [0, 0.5] of each member's n_train training examples held out for validation: the last
    # round(validation_fraction * n_train) of its n_train examples, never trained on (method=train) or fitted
    # (method=min_norm); recorded as curves `val_error` and `val_loss` at each evaluation step (0: none).
    validation_fraction: float = 0.0
    # Model.
    model: str = "mlp"
    depth: int = 1  # Hidden layers of the MLP.
    # Training.
    optimizer: str = "adam"
    momentum: float = 0.9
    # Learning-rate schedule, a factor of every member's rate: "constant", or "inverse_sqrt": rate / sqrt(1 + step //
    # lr_schedule_steps) (Nakkiran et al.'s CNN runs: SGD at 0.1 / sqrt(1 + step // 512)).
    lr_schedule: str = "constant"
    lr_schedule_steps: int = 512
    batch_size: int = 128  # 0 means full batch.
    steps: int = 1000
    # "replacement": every batch drawn uniformly with replacement; "epoch": each epoch a fresh permutation of the
    # member's n_train examples, ceil(n_train / batch_size) steps, the last batch partial (see ddjax.data.sampling).
    sampling: str = "replacement"
    epochs: int = 0  # > 0 (with sampling="epoch"): sets steps = epochs * ceil(n_train / batch_size).
    augment: bool = False  # Image data only: random crop (4 pixels of zero padding) and horizontal flip.
    loss: str = "cross_entropy"
    n_evals: int = 20  # Log-spaced evaluation points (plus step 0).
    n_chunks: int = 20  # Progress and checkpoint granularity.
    mode: str = "vmap"
    # "train": the trainer; "min_norm": the read-out solved in closed form (minimum-norm least squares);
    # "gradient_descent": full-batch gradient descent on least squares, with its risk over time in closed form
    # (`ddjax.solvers.gradient_descent`; dataset multiscale_regression).
    method: str = "train"
    # "float32"; "bfloat16": matmuls (and convolutions) take bfloat16 operands, parameters and optimizer state stay
    # float32 (`ddjax.training.trainer.compute_cast`); "float64": everything in double precision, the reference
    # that equivalence checks compare layouts in (needs JAX's 64-bit mode: `with jax.enable_x64(True):`).
    precision: str = "float32"
    # Memory planning (`ddjax.training.memory`): bytes of memory a program may use on each device (0: the device's
    # own limit; on a CPU, half the host RAM shared by its devices), and the most members one program may hold
    # (0: as many as fit). A sweep over either limit runs as consecutive programs over subsets of members.
    memory_budget_bytes: int = 0
    max_members_per_program: int = 0
    # Analysis.
    train_tolerance: float = 0.01  # Also the eps of the effective model complexity.
    x_axis: str = "auto"  # The axis curves are drawn against; "auto": the first swept of width, n_train, ...
    n_bootstrap: int = 500  # Resamples of seeds for confidence intervals (0: none).


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _field_type(name: str) -> Any:
    return typing.get_type_hints(Config)[name]


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return f"a comma-separated list of {typing.get_args(tp)[0].__name__}"
    return tp.__name__


def _parse_scalar(text: str, tp: type, key: str) -> Any:
    text = text.strip()
    try:
        if tp is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if tp is int:
            value = float(text)
            if not value.is_integer():
                raise ValueError
            return int(value)
        return tp(text)
    except (ValueError, OverflowError):
        raise ConfigError(f"{key}={text!r}: expected {tp.__name__}") from None


def parse_value(key: str, text: str) -> Any:
    """Parses the string `text` into the type of config field `key`."""
    if key not in FIELDS:
        raise ConfigError(f"unknown config key {key!r}; allowed: {', '.join(FIELDS)}")
    tp = _field_type(key)
    if typing.get_origin(tp) is tuple:
        items = [item for item in text.strip().strip("[]()").split(",") if item.strip()]
        return tuple(_parse_scalar(item, typing.get_args(tp)[0], key) for item in items)
    return _parse_scalar(text, tp, key)


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Applies `KEY=VALUE` strings (as given to `--set`) and validates the result."""
    changes = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed --set {item!r}: expected KEY=VALUE")
        changes[key.strip()] = parse_value(key.strip(), text)
    return replace(config, **changes)


def replace(config: Config, **changes: Any) -> Config:
    """Like `dataclasses.replace`, but unknown keys and bad values raise `ConfigError`."""
    for key in changes:
        if key not in FIELDS:
            raise ConfigError(f"unknown config key {key!r}; allowed: {', '.join(FIELDS)}")
    for key, value in changes.items():
        tp = _field_type(key)
        if typing.get_origin(tp) is tuple and not isinstance(value, (tuple, list)):
            changes[key] = (value,)
        elif typing.get_origin(tp) is tuple:
            changes[key] = tuple(value)
    config = dataclasses.replace(config, **changes)
    for key in FIELDS:
        _check_type(key, getattr(config, key))
    if config.epochs > 0 and "steps" not in changes and steps_per_epoch(config) is not None:
        config = dataclasses.replace(config, steps=config.epochs * steps_per_epoch(config))  # epochs sets steps.
    return validate(config)


def steps_per_epoch(config: Config) -> int | None:
    """Steps of one epoch, ceil(n_train / batch_size) (1 for full batch), when `sampling="epoch"` and every n_train
    gives the same count; else None."""
    if config.sampling != "epoch":
        return None
    lengths = {-(-n // config.batch_size) if config.batch_size else 1 for n in config.n_train}
    return lengths.pop() if len(lengths) == 1 else None


def _check_type(key: str, value: Any) -> None:
    tp = _field_type(key)
    element = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp
    values = value if typing.get_origin(tp) is tuple else (value,)
    if typing.get_origin(tp) is tuple and not isinstance(value, tuple):
        raise ConfigError(f"{key}={value!r}: expected {_type_name(tp)}")
    for item in values:
        ok = isinstance(item, element) and not (element is int and isinstance(item, bool))
        if element is float and isinstance(item, int) and not isinstance(item, bool):
            ok = True
        if not ok:
            raise ConfigError(f"{key}={value!r}: expected {_type_name(tp)}")


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def validate(config: Config) -> Config:
    """Returns `config` unchanged if every value is allowed, else raises `ConfigError`."""
    for key in FIELDS:
        _check_type(key, getattr(config, key))
    c = config
    _require(c.dataset in DATASETS or is_npz(c.dataset), "dataset", c.dataset,
             f"one of {', '.join(DATASETS)}, npz:PATH, or a name given to ddjax.register_dataset")
    dataset_info(c.dataset)  # npz:PATH: the file is read and checked here (a one-line ConfigError).
    _require(c.model in MODELS, "model", c.model,
             f"one of {', '.join(MODELS)}, or a name given to ddjax.register_model")
    for key, choices in (("optimizer", tuple(OPTIMIZERS)),
                         ("loss", LOSSES), ("mode", MODES), ("method", METHODS), ("x_axis", X_AXES),
                         ("sampling", SAMPLINGS), ("precision", PRECISIONS),
                         ("lr_schedule", LR_SCHEDULES)):
        _require(getattr(c, key) in choices, key, getattr(c, key), f"one of {', '.join(choices)}")
    for axis in AXES:
        values = getattr(c, axis)
        _require(len(values) > 0, axis, values, "at least one value")
        _require(len(set(values)) == len(values), axis, values, "no duplicate values")
    _require(all(w >= 1 for w in c.width), "width", c.width, "integers >= 1")
    _require(all(0 <= p < 1 for p in c.label_noise), "label_noise", c.label_noise, "fractions in [0, 1)")
    _require(all(math.isfinite(r) and r > 0 for r in c.learning_rate), "learning_rate", c.learning_rate,
             "finite numbers > 0")
    _require(all(s >= 0 for s in c.seed), "seed", c.seed, "integers >= 0")
    _validate_regularization(c)
    _require(10 <= c.n_samples <= MAX_SAMPLES, "n_samples", c.n_samples,
             f"an integer in [10, {MAX_SAMPLES}] (generated data sets are made on the host before training)")
    _require(0 < c.train_fraction < 1, "train_fraction", c.train_fraction, "a fraction in (0, 1)")
    _validate_method(c)
    if dataset_info(c.dataset).n_train_available is None:  # Drawn per member: any training-set size is available.
        _require(all(n >= 1 for n in c.n_train), "n_train", c.n_train, "integers >= 1")
    else:
        n_available = n_train_available(c)
        split = dataset_info(c.dataset).describe_split(c)
        _require(all(1 <= n <= n_available for n in c.n_train), "n_train", c.n_train,
                 f"integers in [1, {n_available}] ({split})")
    _require(c.batch_size >= 0, "batch_size", c.batch_size, "an integer >= 0 (0 means full batch)")
    _require(c.batch_size <= min(c.n_train), "batch_size", c.batch_size,
             f"at most the smallest n_train ({min(c.n_train)}), or 0 for full batch")
    _require(c.steps >= 1, "steps", c.steps, "an integer >= 1")
    _require(c.n_chunks < 1 or c.steps + chunk_steps_of(c.steps, c.n_chunks) <= INT32_MAX, "steps", c.steps,
             f"an integer with steps + steps per chunk <= {INT32_MAX} (step counters are int32)")
    _validate_batches(c)
    _validate_validation(c)
    _require(c.n_evals >= 1, "n_evals", c.n_evals, "an integer >= 1")
    _require(c.n_evals <= MAX_EVALS, "n_evals", c.n_evals,
             f"at most {MAX_EVALS} (the eval grid is built on the host; each point evaluates every member)")
    _require(c.n_chunks >= 1, "n_chunks", c.n_chunks, "an integer >= 1")
    _require(c.depth >= 1, "depth", c.depth, "an integer >= 1")
    _require(c.input_dim >= 1, "input_dim", c.input_dim, "an integer >= 1")
    _require(c.n_classes >= 2, "n_classes", c.n_classes, "an integer >= 2")
    _require(math.isfinite(c.momentum) and 0 <= c.momentum < 1, "momentum", c.momentum, "a number in [0, 1)")
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
    _require(c.precision != "float64" or _x64_enabled(), "precision", c.precision,
             "only with JAX's 64-bit mode on (JAX_ENABLE_X64=1, or `with jax.enable_x64(True):` in Python)")
    _require(c.n_bootstrap >= 0, "n_bootstrap", c.n_bootstrap, "an integer >= 0 (0 means no bootstrap)")
    _require(len(c.feature_scales) >= 1 and all(math.isfinite(a) and a > 0 for a in c.feature_scales),
             "feature_scales", c.feature_scales, "one or more finite numbers > 0")
    for key in ("signal_norm_sq", "noise_var"):
        value = getattr(c, key)
        _require(math.isfinite(value) and value >= 0, key, value, "a finite number >= 0")
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
    if model.datasets is not None:
        _require(c.dataset in model.datasets, "model", c.model,
                 f"{c.model} only with dataset={', '.join(model.datasets)}")


def _validate_regularization(c: Config) -> None:
    """Weight decay for trained families, ridge for closed forms; finite strengths >= 0."""
    for axis, method in (("weight_decay", "train"), ("ridge", "min_norm")):
        values = getattr(c, axis)
        _require(all(math.isfinite(v) and v >= 0 for v in values), axis, values, "finite numbers >= 0")
        _require(values == (0.0,) or c.method == method, axis, values,
                 f"only 0 with method={c.method} ({axis} applies to method={method})")
    packed = model_info(c.model).packed
    _require(c.weight_decay == (0.0,) or not (packed and packed.fixed_features), "weight_decay", c.weight_decay,
             f"only 0 with model={c.model} (its first layer is fixed; use method=min_norm with ridge)")


def validation_size(n_train: int, validation_fraction: float) -> int:
    """Examples of a member's n_train held out for validation: its last round(validation_fraction * n_train)."""
    return int(round(validation_fraction * n_train))


def swept_regularization(config: Config) -> tuple[str, ...]:
    """The regularization axes that hold any value but their default 0 (those outputs record)."""
    return tuple(axis for axis in REGULARIZATION_AXES if getattr(config, axis) != (0.0,))


def _validate_batches(c: Config) -> None:
    """Sampling, epochs and augmentation: only where the trainer draws batches, augmentation only of images."""
    _require(c.epochs >= 0, "epochs", c.epochs, "an integer >= 0 (0: steps gives the length)")
    if c.method != "train":
        for key, default in (("sampling", "replacement"), ("epochs", 0), ("augment", False)):
            _require(getattr(c, key) == default, key, getattr(c, key),
                     f"only {default!r} with method={c.method} (a closed form draws no batches)")
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


def chunk_steps_of(steps: int, n_chunks: int) -> int:
    """Loop steps per chunk so that `n_chunks` chunks cover the `steps + 1` loop steps (the trainer's
    `TrainSpec.chunk_steps`; extra loop steps are no-ops)."""
    return -(-(steps + 1) // min(n_chunks, steps + 1))


def n_train_available(config: Config) -> int:
    """Size of the training split a member may draw n_train from (see `ddjax.data.registry`)."""
    return dataset_info(config.dataset).n_train_available(config)


def to_dict(config: Config) -> dict[str, Any]:
    """JSON-ready dict of the config (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(values: dict[str, Any]) -> Config:
    """The validated config of a `to_dict` result (as stored in a run's config.json); missing keys take defaults."""
    if not isinstance(values, dict):
        raise ConfigError(f"config must be a dict of config keys, got {type(values).__name__}")
    return replace(Config(), **values)


def config_differences(a: Config | dict[str, Any], b: Config | dict[str, Any]) -> list[str]:
    """The keys whose values differ between two configs (or their `to_dict` forms), in field order."""
    a, b = (to_dict(c) if isinstance(c, Config) else c for c in (a, b))
    return [key for key in FIELDS if a.get(key) != b.get(key)] + sorted((set(a) | set(b)) - set(FIELDS))


def geometric_widths(smallest: int, largest: int, count: int) -> tuple[int, ...]:
    """`count` distinct integers spaced geometrically from `smallest` to `largest`."""
    widths: list[int] = []
    ratio = (largest / smallest) ** (1 / max(count - 1, 1))
    for i in range(count):
        w = int(round(smallest * ratio**i))
        widths.append(max(w, widths[-1] + 1) if widths else w)
    return tuple(widths)

