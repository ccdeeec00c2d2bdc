"""The typed experiment config: its fields and defaults, and `--set KEY=VALUE` parsing.

`Config` is `Settings` (the scalar settings below) plus one tuple field per sweep axis, made from the rows of
`ddjax.config.axes.AXES`; the sweep trains every point of the axes' cartesian grid.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ddjax.config.axes import AXES
from ddjax.errors import ConfigError

METHODS = ("train", "min_norm", "gradient_descent")
LR_SCHEDULES = ("constant", "inverse_sqrt")  # `ddjax.training.schedules` computes them.
LOSSES = ("cross_entropy", "squared", "mse")  # mse: the squared loss of a regression data set's float targets.
INITS = ("standard", "paired")
THEORIES = ("none", "linearized")
MODES = ("vmap", "serial")
PRECISIONS = ("float32", "bfloat16", "float64")
INT32_MAX = 2**31 - 1  # Step counters, eval steps, widths and row indices are int32 inside the program.
MAX_EVALS = 10**6
# Generated data sets (MNIST-1D, gaussian) are made on the host before anything trains: 10^6 MNIST-1D samples are
# 160 MB of float32 and take about 20 minutes to generate (20000 took 24 s on the 2-core Intel Xeon, under load);
# more is refused before any of it is made.
MAX_SAMPLES = 10**6  # The log-spaced eval grid is built on the host, and each point evaluates every member.
MAX_VALIDATION_FRACTION = 0.5
X_AXES = ("auto", "width", "n_train", "label_noise", "learning_rate")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The scalar settings of a sweep: data, model family, optimizer, training, memory and analysis."""

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
    # A fraction in [0, 0.5] of each member's n_train training examples held out for validation: the last
    # round(validation_fraction * n_train) of its n_train examples, never trained on (method=train) or fitted
    # (method=min_norm); recorded as curves `val_error` and `val_loss` at each evaluation step (0: none).
    validation_fraction: float = 0.0
    # Model.
    model: str = "mlp"
    depth: int = 1  # Hidden layers of the MLP.
    # "standard": each family's own initialization; "paired" (one-hidden-layer MLPs of even widths): unit k and unit
    # k + width / 2 share their input weights and have opposite read-out weights, so every output starts at 0.
    init: str = "standard"
    # The parameters the axes layer_rate and layer_init_scale act on: a glob pattern on a member's parameter paths
    # ("hidden/0/*": an MLP's first layer; a module's paths are its flax paths, e.g. "Dense_0/*").
    layer_group: str = "hidden/0/*"
    # Random features' first layer (`ddjax.models.feature_draws`): "common", every width's features the first of one
    # sequence per seed (common random numbers: each is still an exact draw), or "independent", each width's its own.
    feature_draw: str = "common"
    # Training.
    optimizer: str = "adam"
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
    loss: str = "cross_entropy"  # "squared": half the squared distance to one-hot labels; "mse": to float targets.
    n_evals: int = 20  # Log-spaced evaluation points (plus step 0).
    n_chunks: int = 20  # Progress and checkpoint granularity.
    mode: str = "vmap"  # "serial": shorthand for the serial layout (one member at a time, the reference).
    # "train": the trainer; "min_norm": the read-out solved in closed form (minimum-norm least squares);
    # "gradient_descent": full-batch gradient descent on least squares, with its risk over time in closed form
    # (`ddjax.solvers.gradient_descent`; dataset multiscale_regression).
    method: str = "train"
    # "float32"; "bfloat16": matmuls (and convolutions) take bfloat16 operands, parameters and optimizer state stay
    # float32 (`ddjax.training.spec.compute_cast`); "float64": everything in double precision, the reference
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
    # "linearized" (a one-hidden-layer MLP trained by full-batch gradient descent on a regression data set): each
    # member's test risk over training in closed form, the network linearized at its initialization (curve
    # `theory_risk`; `ddjax.solvers.two_layer`).
    theory: str = "none"


def _config_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    """The fields of `Config`: the settings, with one tuple field per axis after the data settings."""
    types = typing.get_type_hints(Settings)
    settings = [(f.name, types[f.name], dataclasses.field(default=f.default)) for f in dataclasses.fields(Settings)]
    axes = [(axis.name, tuple[axis.element, ...], dataclasses.field(default=axis.default)) for axis in AXES]
    after = [name for name, _, _ in settings].index("data_seed") + 1
    return settings[:after] + axes + settings[after:]


Config = dataclasses.make_dataclass("Config", _config_fields(), frozen=True)
Config.__module__ = __name__
Config.__doc__ = """One sweep: the fields of `Settings` and one tuple field per sweep axis (`ddjax.config.axes.AXES`:
width, seed, label_noise, n_train, learning_rate, momentum, weight_decay, ridge); the sweep trains every point of
their grid."""


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


_TYPES = typing.get_type_hints(Config)


def field_type(name: str) -> Any:
    """The type of config field `name` (`tuple[element, ...]` for an axis)."""
    return _TYPES[name]


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
    tp = field_type(key)
    if typing.get_origin(tp) is tuple:
        items = [item for item in text.strip().strip("[]()").split(",") if item.strip()]
        return tuple(_parse_scalar(item, typing.get_args(tp)[0], key) for item in items)
    return _parse_scalar(text, tp, key)


def check_type(key: str, value: Any) -> None:
    """Raises ConfigError if `value` is not of config field `key`'s type (a tuple of its element type for axes)."""
    tp = field_type(key)
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


def steps_per_epoch(config: Config) -> int | None:
    """Steps of one epoch, ceil(n_train / batch_size) (1 for full batch), when `sampling="epoch"` and every n_train
    gives the same count; else None."""
    if config.sampling != "epoch":
        return None
    lengths = {-(-n // config.batch_size) if config.batch_size else 1 for n in config.n_train}
    return lengths.pop() if len(lengths) == 1 else None


def chunk_steps_of(steps: int, n_chunks: int) -> int:
    """Loop steps per chunk so that `n_chunks` chunks cover the `steps + 1` loop steps (the trainer's
    `TrainSpec.chunk_steps`; extra loop steps are no-ops)."""
    return -(-(steps + 1) // min(n_chunks, steps + 1))


def to_dict(config: Config) -> dict[str, Any]:
    """JSON-ready dict of the config (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


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

