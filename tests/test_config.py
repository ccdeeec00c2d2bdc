"""Config parsing and validation: every bad value gives one line naming it and what is allowed."""

import pytest

from ddjax.config import Config, ConfigError, apply_overrides, geometric_widths, replace


def test_overrides_parse_to_field_types():
    config = apply_overrides(Config(), ["width=1,2,4", "steps=300", "learning_rate=0.01", "optimizer=sgd",
                                        "label_noise=[0.1, 0.2]", "batch_size=0"])
    assert config.width == (1, 2, 4) and config.steps == 300 and config.learning_rate == (0.01,)
    assert config.optimizer == "sgd" and config.label_noise == (0.1, 0.2) and config.batch_size == 0


@pytest.mark.parametrize("override, fragment", [
    ("nope=1", "unknown config key 'nope'"),
    ("steps", "malformed --set 'steps'"),
    ("=3", "malformed"),
    ("steps=abc", "steps='abc': expected int"),
    ("steps=1.5", "expected int"),
    ("steps=0", "steps=0 is not allowed: an integer >= 1"),
    ("width=0,4", "width=(0, 4) is not allowed: integers >= 1"),
    ("width=", "at least one value"),
    ("width=4,4", "no duplicate values"),
    ("label_noise=1.0", "fractions in [0, 1)"),
    ("label_noise=-0.1", "fractions in [0, 1)"),
    ("learning_rate=nan", "finite numbers > 0"),
    ("learning_rate=-1", "finite numbers > 0"),
    ("optimizer=rmsprop", "one of sgd, momentum, adam"),
    ("loss=hinge", "one of cross_entropy, squared"),
    ("model=cnn", "one of mlp"),
    ("dataset=cifar", "one of mnist1d, gaussian"),
    ("n_train=999999", "n_train=(999999,) is not allowed"),
    ("batch_size=5000", "batch_size=5000 is not allowed"),
])
def test_bad_overrides_raise_one_line_errors(override, fragment):
    with pytest.raises(ConfigError) as error:
        apply_overrides(Config(), [override])
    message = str(error.value)
    assert fragment in message and "\n" not in message


def test_replace_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown config key 'widht'"):
        replace(Config(), widht=(1, 2))
    with pytest.raises(ConfigError, match="expected str"):
        replace(Config(), optimizer=3)


def test_geometric_widths_are_distinct_and_span_the_range():
    widths = geometric_widths(1, 256, 15)
    assert widths[0] == 1 and widths[-1] == 256 and len(set(widths)) == 15 and list(widths) == sorted(widths)
