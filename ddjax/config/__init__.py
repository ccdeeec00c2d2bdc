"""Typed experiment config: defaults (`fields`), the sweep axes (`axes`), `--set KEY=VALUE` overrides and validation
with clear errors (`validation`)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ddjax.config.axes import (AXES, AXIS, BATCH_STREAM_AXES, STRENGTH_AXES, Axis, member_input_axes,
                              recorded_axes, recorded_coordinates)
from ddjax.config.fields import (FIELDS, INT32_MAX, LOSSES, LR_SCHEDULES, MAX_EVALS, MAX_SAMPLES,
                                 MAX_VALIDATION_FRACTION, METHODS, MODES, PRECISIONS, X_AXES, INITS, THEORIES, Config, Settings,
                                 check_type, chunk_steps_of, config_differences, field_type, geometric_widths,
                                 parse_value, steps_per_epoch, to_dict)
from ddjax.config.validation import ensure_valid, n_train_available, validate, validation_size
from ddjax.errors import ConfigError

__all__ = ["AXES", "AXIS", "Axis", "BATCH_STREAM_AXES", "Config", "ConfigError", "FIELDS", "INT32_MAX", "LOSSES", "LR_SCHEDULES",
           "MAX_EVALS", "MAX_SAMPLES", "MAX_VALIDATION_FRACTION", "METHODS", "MODES", "PRECISIONS", "STRENGTH_AXES",
           "Settings", "X_AXES", "apply_overrides", "chunk_steps_of", "config_differences", "config_from_dict",
           "ensure_valid", "geometric_widths", "member_input_axes", "n_train_available", "parse_value",
           "recorded_axes", "recorded_coordinates", "replace", "steps_per_epoch", "to_dict", "validate",
           "validation_size"]


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Applies `KEY=VALUE` strings (as given to `--set`) and validates the result (`config` itself, validated,
    when there are none)."""
    changes = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed --set {item!r}: expected KEY=VALUE")
        changes[key.strip()] = parse_value(key.strip(), text)
    return replace(config, **changes) if changes else ensure_valid(config)


def replace(config: Config, **changes: Any) -> Config:
    """Like `dataclasses.replace`, but unknown keys and bad values raise `ConfigError`; the result is validated."""
    config = _typed(config, changes)
    if config.epochs > 0 and "steps" not in changes and steps_per_epoch(config) is not None:
        config = dataclasses.replace(config, steps=config.epochs * steps_per_epoch(config))  # epochs sets steps.
    return validate(config)


def _typed(config: Config, changes: dict[str, Any]) -> Config:
    """`config` with `changes` (a single value where a tuple belongs becomes a 1-tuple, lists become tuples);
    ConfigError for an unknown key or a value of the wrong type."""
    for key in changes:
        if key not in FIELDS:
            raise ConfigError(f"unknown config key {key!r}; allowed: {', '.join(FIELDS)}")
    changes = dict(changes)
    for key in FIELDS:  # A single value where a tuple belongs (an axis given one value, as Config(momentum=0.9)).
        value = changes.get(key, getattr(config, key))
        if typing.get_origin(field_type(key)) is tuple and isinstance(value, (list, tuple)):
            value = tuple(value)
        elif typing.get_origin(field_type(key)) is tuple:
            value = (value,)
        if key in changes or value != getattr(config, key):
            changes[key] = value
    config = dataclasses.replace(config, **changes)
    for key in FIELDS:
        check_type(key, getattr(config, key))
    return config


def config_from_dict(values: dict[str, Any], *, registries: bool = True) -> Config:
    """The config of a `to_dict` result (as stored in a run's config.json); missing keys take defaults.

    Args:
      registries: True: validated in full (`replace`). False, to read a stored run's outputs: unknown keys, types
        and every value the analysis reads are checked, but not that the family and data set are registered or
        what they allow (`validate(..., registries=False)`), so reading needs neither; `epochs` is not resolved
        into `steps` (a stored config holds both).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"config must be a dict of config keys, got {type(values).__name__}")
    if registries:
        return replace(Config(), **values)
    return validate(_typed(Config(), values), registries=False)
