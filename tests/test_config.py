"""Config parsing and validation: every bad value gives one line naming it and what is allowed."""

import pytest

from ddjax.config import Config, ConfigError, apply_overrides, geometric_widths, replace


def test_overrides_parse_to_field_types():
    config = apply_overrides(Config(), ["width=1,2,4", "steps=300", "learning_rate=0.01", "optimizer=sgd",
                                        "label_noise=[0.1, 0.2]", "batch_size=0"])
    assert config.width == (1, 2, 4) and config.steps == 300 and config.learning_rate == (0.01,)
    assert config.optimizer == "sgd" and config.label_noise == (0.1, 0.2) and config.batch_size == 0


# Each bad `--set` value and the fragment of its one-line error; tests/test_cli.py feeds the same list to the CLI.
BAD_OVERRIDES = [
    ("nope=1", "unknown config key 'nope'; allowed: dataset, "),
    ("steps", "malformed --set 'steps': expected KEY=VALUE"),
    ("=3", "malformed --set '=3'"),
    ("steps=abc", "steps='abc': expected int"),
    ("steps=1.5", "steps='1.5': expected int"),
    ("steps=1e400", "steps='1e400': expected int"),
    ("width=a,b", "width='a': expected int"),
    ("width=1.5", "width='1.5': expected int"),
    ("learning_rate=fast", "learning_rate='fast': expected float"),
    ("steps=0", "steps=0 is not allowed: an integer >= 1"),
    ("steps=-5", "steps=-5 is not allowed: an integer >= 1"),
    ("width=0,4", "width=(0, 4) is not allowed: integers >= 1"),
    ("width=-1", "width=(-1,) is not allowed: integers >= 1"),
    ("width=", "width=() is not allowed: at least one value"),
    ("label_noise=", "label_noise=() is not allowed: at least one value"),
    ("width=4,4", "width=(4, 4) is not allowed: no duplicate values"),
    ("seed=1,1", "seed=(1, 1) is not allowed: no duplicate values"),
    ("seed=-1", "seed=(-1,) is not allowed: integers >= 0"),
    ("label_noise=1.0", "label_noise=(1.0,) is not allowed: fractions in [0, 1)"),
    ("label_noise=-0.1", "label_noise=(-0.1,) is not allowed: fractions in [0, 1)"),
    ("learning_rate=nan", "learning_rate=(nan,) is not allowed: finite numbers > 0"),
    ("learning_rate=inf", "learning_rate=(inf,) is not allowed: finite numbers > 0"),
    ("learning_rate=-1", "learning_rate=(-1.0,) is not allowed: finite numbers > 0"),
    ("learning_rate=0", "learning_rate=(0.0,) is not allowed: finite numbers > 0"),
    ("optimizer=rmsprop", "optimizer='rmsprop' is not allowed: one of sgd, momentum, adam"),
    ("loss=hinge", "loss='hinge' is not allowed: one of cross_entropy, squared"),
    ("model=cnn", "model='cnn' is not allowed: one of mlp, random_relu_features, random_fourier_features"),
    ("dataset=cifar", "dataset='cifar' is not allowed: one of mnist1d, gaussian"),
    ("mode=turbo", "mode='turbo' is not allowed: one of vmap, serial"),
    ("n_train=999999", "n_train=(999999,) is not allowed: integers in [1, "),
    ("n_train=0", "n_train=(0,) is not allowed: integers in [1, "),
    ("batch_size=5000", "batch_size=5000 is not allowed: at most the smallest n_train"),
    ("batch_size=-1", "batch_size=-1 is not allowed: an integer >= 0 (0 means full batch)"),
    ("n_samples=5", "n_samples=5 is not allowed: an integer in [10, 1000000]"),
    ("n_samples=10000000000", "n_samples=10000000000 is not allowed: an integer in [10, 1000000]"),
    ("train_fraction=1.5", "train_fraction=1.5 is not allowed: a fraction in (0, 1)"),
    ("n_evals=0", "n_evals=0 is not allowed: an integer >= 1"),
    ("n_chunks=0", "n_chunks=0 is not allowed: an integer >= 1"),
    ("depth=0", "depth=0 is not allowed: an integer >= 1"),
    ("momentum=1", "momentum=(1.0,) is not allowed: numbers in [0, 1)"),
    ("momentum=0.5", "momentum=(0.5,) is not allowed: only 0.9 with optimizer=adam (momentum applies to optimizer=momentum)"),
    ("teacher_noise=-1", "teacher_noise=-1.0 is not allowed: a finite number >= 0"),
    ("train_tolerance=1", "train_tolerance=1.0 is not allowed: a number in [0, 1)"),
    ("data_seed=-1", "data_seed=-1 is not allowed: an integer >= 0"),
    ("n_classes=1", "n_classes=1 is not allowed: an integer >= 2"),
    ("input_dim=0", "input_dim=0 is not allowed: an integer >= 1"),
    ("sampling=shuffle", "sampling='shuffle' is not allowed: one of replacement, epoch"),
    ("epochs=3", "epochs=3 is not allowed: only with sampling=epoch"),
    ("augment=true", "augment=True is not allowed: only with an image data set"),
]


@pytest.mark.parametrize("override, fragment", BAD_OVERRIDES)
def test_bad_overrides_raise_one_line_errors(override, fragment):
    with pytest.raises(ConfigError) as error:
        apply_overrides(Config(), [override])
    message = str(error.value)
    assert fragment in message and "\n" not in message


@pytest.mark.parametrize("changes, fragment", [
    (dict(width=0), "width=(0,) is not allowed"),
    (dict(width=()), "at least one value"),
    (dict(width="abc"), "width=('abc',): expected a comma-separated list of int"),
    (dict(width=(2, 2.5)), "expected a comma-separated list of int"),
    (dict(seed=(True,)), "seed=(True,): expected a comma-separated list of int"),
    (dict(steps="10"), "steps='10': expected int"),
    (dict(steps=0), "steps=0 is not allowed"),
    (dict(learning_rate=float("nan")), "finite numbers > 0"),
    (dict(label_noise=(0.5, 1.0)), "fractions in [0, 1)"),
    (dict(n_train=(10**6,)), "n_train=(1000000,) is not allowed"),
    (dict(batch_size=2000), "batch_size=2000 is not allowed"),
    (dict(optimizer=3), "optimizer=3: expected str"),
    (dict(dataset="cifar"), "one of mnist1d, gaussian"),
])
def test_replace_rejects_bad_values(changes, fragment):
    with pytest.raises(ConfigError) as error:
        replace(Config(), **changes)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_replace_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown config key 'widht'"):
        replace(Config(), widht=(1, 2))
    with pytest.raises(ConfigError, match="expected str"):
        replace(Config(), optimizer=3)


def test_geometric_widths_are_distinct_and_span_the_range():
    widths = geometric_widths(1, 256, 15)
    assert widths[0] == 1 and widths[-1] == 256 and len(set(widths)) == 15 and list(widths) == sorted(widths)
