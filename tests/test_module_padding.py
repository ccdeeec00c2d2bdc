"""A module's members padded to their group's widest: trained padded, per width and one at a time, they agree in
float64 (tests/reference.py) where the padding check says exact; where it does not, each width trains as its own
program and the report says why."""

import importlib.util
import pathlib

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest

import ddjax
from ddjax.config import Config, replace
from ddjax.experiment import run_experiment
from ddjax.models import registry
from ddjax.models.module_family import ModuleMember, module_family
from ddjax.sweep import run_sweep
from reference import assert_close, assert_same_errors

ROOT = pathlib.Path(__file__).resolve().parents[1]


class MLPModule(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_classes)(nn.relu(nn.Dense(self.width)(x)))


class ConvBatchNorm(nn.Module):
    """A convolution, BatchNorm and a read-out over (positions, channels): every axis that grows is a prefix."""

    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x, train, example_mask=None):
        h = nn.Conv(self.width, (5,), (4,))(x.reshape(x.shape[0], -1, 1))
        mask = None if example_mask is None else example_mask[:, None, None]
        h = nn.relu(nn.BatchNorm(use_running_average=not train)(h, mask=mask))
        return nn.DenseGeneral(self.n_classes, axis=(-2, -1))(h)


class LayerNormModule(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_classes)(nn.relu(nn.LayerNorm()(nn.Dense(4 * self.width)(x))))


class MeanOverWidth(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(self.width)(x))
        return nn.Dense(self.n_classes)(h - jnp.mean(h, axis=-1, keepdims=True))


class TreeDependsOnWidth(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(self.width)(x))
        if self.width > 4:
            h = nn.relu(nn.Dense(self.width)(h))
        return nn.Dense(self.n_classes)(h)


class FlattenedChannels(nn.Module):
    """Channels flattened with the positions, position-major: a member's channels are no prefix of the features."""

    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(self.width, (5,), (4,))(x.reshape(x.shape[0], -1, 1)))
        return nn.Dense(self.n_classes)(h.reshape(h.shape[0], -1))


class MaxOverWidth(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(self.width)(x)
        return nn.Dense(self.n_classes)(h + jnp.max(h, axis=-1, keepdims=True))


class Broken(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        raise RuntimeError("a bug inside the module")


def _transformer():
    spec = importlib.util.spec_from_file_location("custom_model_for_tests", ROOT / "experiments" / "custom_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PatchTransformer


@pytest.fixture(autouse=True)
def restore_models():
    saved = [dict(registry.MODELS), dict(registry.REGISTERED_IN)]
    yield
    for table, contents in zip((registry.MODELS, registry.REGISTERED_IN), saved):
        table.clear()
        table.update(contents)


def _config(model, **changes):
    return replace(Config(), dataset="mnist1d", n_samples=300, train_fraction=0.5, n_train=(100,), model=model,
                   width=(2, 3, 6), seed=(0,), label_noise=(0.1,), learning_rate=(0.01,), batch_size=20, steps=6,
                   n_evals=2, n_chunks=1, n_bootstrap=0, **changes)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("module", [MLPModule, ConvBatchNorm, LayerNormModule, "transformer"])
def test_padded_per_width_and_serial_members_agree(module):
    module = _transformer() if module == "transformer" else module
    ddjax.register_model("padded_module", module)
    config = _config("padded_module", precision="float64")
    padded = run_sweep(config, scheme="padded")  # Every member held at width 6.
    per_width = run_sweep(config, scheme="grouped")
    serial = run_sweep(config, mode="serial")
    assert padded.padding["exact"] and padded.group_widths == (6,) and padded.n_programs == 1
    for run in (padded, per_width):
        for name in ("train_loss", "test_loss"):
            assert_close(run.curves[name], serial.curves[name], err_msg=name)
        assert_same_errors(run.curves["test_error"], serial.curves["test_error"], 150, "test_error")


@pytest.mark.parametrize("module, where", [
    (MeanOverWidth, "`Dense_1`"),  # The mean is taken between Dense_0 and Dense_1: Dense_1's output differs.
    (TreeDependsOnWidth, "differ in structure"),
    (FlattenedChannels, "`Dense_0`"),
    (MaxOverWidth, "a max over an axis that grows with the width"),
])
def test_a_module_padding_cannot_make_exact_trains_one_program_a_width(module, where, tmp_path, capsys):
    ddjax.register_model("inexact_module", module)
    config = _config("inexact_module")
    report = run_experiment(config, tmp_path / "run")
    assert not report["padding"]["exact"] and where in report["padding"]["reason"]
    assert report["timing"]["n_programs"] == 3 and report["timing"]["group_widths"] == [2, 3, 6]
    assert any(note.startswith("padding changes") and "one program per width" in note for note in report["notes"])


def test_the_check_is_cached_per_module_and_takes_little_time():
    member = ModuleMember(lambda width, n_classes: MLPModule(width, n_classes), (40,), 10)
    first = module_family(member, (2, 3, 6), "cross_entropy").padding
    again = module_family(member, (2, 3, 6, 12), "cross_entropy").padding
    assert first.exact and again is first  # The same smallest pair: the answer of the first check.


def test_an_exception_inside_a_module_keeps_its_traceback_and_leaves_no_run_folder(tmp_path):
    ddjax.register_model("broken_module", Broken)
    with pytest.raises(RuntimeError, match="a bug inside the module") as caught:
        run_experiment(_config("broken_module"), tmp_path / "run")
    assert any(entry.name == "__call__" and "test_module_padding" in str(entry.path) for entry in caught.traceback)
    assert not (tmp_path / "run").exists()


def test_members_start_where_serial_members_start():
    member = ModuleMember(lambda width, n_classes: ConvBatchNorm(width, n_classes), (40,), 10)
    family = module_family(member, (2, 6), "cross_entropy")
    padded, alone = family.init(3, 2, 6), family.init(3, 2, 2)
    kernel = np.asarray(padded["params"]["Conv_0"]["kernel"])
    np.testing.assert_array_equal(kernel[..., :2], alone["params"]["Conv_0"]["kernel"])
    assert np.all(kernel[..., 2:] == 0)
    (grouped,) = family.init_group([([3], [2], 6)])
    np.testing.assert_array_equal(np.asarray(grouped["params"]["Conv_0"]["kernel"])[0], kernel)
