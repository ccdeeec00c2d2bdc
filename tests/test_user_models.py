"""A user's own model family (`ddjax.register_model`): a flax module with a `width` field, or a `Family`, trains
in the grouped layout as serial members do, with counts derived from the module; a run folder records the file
that registered it and its sha256 (`--resume` runs it only when named, `--report` never needs it); bad
registrations are refused in one line."""

import json
import os
import pathlib
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

import ddjax
from ddjax.config import Config, ConfigError, replace
from ddjax.models import registry
from ddjax.models.families import mlp
from ddjax.models.registry import activation_count, forward_macs, parameter_count
from ddjax.run import main
from ddjax.runs.files import REPORT_FILE
from ddjax.sweep import run_sweep
from reference import assert_close, assert_same_errors

ROOT = pathlib.Path(__file__).resolve().parents[1]


class BatchNormNet(nn.Module):
    """One hidden layer with BatchNorm: state that travels with each member."""

    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.n_classes)(nn.BatchNorm(use_running_average=not train)(h))


class Dense2(nn.Module):
    width: int
    n_classes: int = 10

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_classes)(nn.relu(nn.Dense(self.width)(x)))


@pytest.fixture(autouse=True)
def restore_tables():
    """Every test registers under its own names; the tables are restored afterwards."""
    from ddjax.data import registry as data_registry

    tables = (registry.MODELS, registry.REGISTERED_IN, data_registry.DATASETS, data_registry.REGISTERED_IN)
    saved = [dict(table) for table in tables]
    yield
    for table, contents in zip(tables, saved):
        table.clear()
        table.update(contents)


@pytest.fixture
def registered():
    return ddjax.register_model


def _config(model, **changes):
    return replace(Config(), dataset="mnist1d", n_samples=400, train_fraction=0.5, n_train=(120,), model=model,
                   width=(2, 5), seed=(0, 1), label_noise=(0.1,), learning_rate=(0.01,), batch_size=20,
                   steps=10, n_evals=3, n_chunks=2, n_bootstrap=0, **changes)


@pytest.mark.usefixtures("x64")
def test_module_with_batchnorm_trains_grouped_as_serial_members(registered):
    registered("bn_net", BatchNormNet)
    config = _config("bn_net", precision="float64")  # Compared in float64: tests/reference.py.
    vmapped, serial = run_sweep(config), run_sweep(config, mode="serial")
    assert vmapped.scheme == "grouped" and vmapped.n_compiles == 1 and vmapped.n_programs == 1  # Its padding is exact.
    for name in ("train_loss", "test_loss"):
        assert vmapped.curves[name].dtype == np.float64
        assert_close(vmapped.curves[name], serial.curves[name], err_msg=name)
    assert vmapped.curves["train_loss"][:, -1].mean() < vmapped.curves["train_loss"][:, 0].mean()  # It trains.
    family = registry.get_model("bn_net", input_shape=(40,), n_classes=10)
    variables = family.init(0, 5, 5, 40, 10)
    assert set(variables["model_state"]) == {"BatchNorm_0"}  # BatchNorm's statistics are the member's state.


def test_counts_are_derived_from_the_module_and_can_be_given(registered):
    registered("dense2", Dense2)
    width, d, k = 7, 40, 10
    exact_params = d * width + width + width * k + k
    exact_macs = d * width + width * k
    assert parameter_count("dense2", width, d, k, input_shape=(d,)) == exact_params
    macs = forward_macs("dense2", width, d, k, input_shape=(d,))
    assert exact_macs <= macs <= exact_macs + 3 * (width + k)  # Biases and ReLU add a few flops per unit.
    assert activation_count("dense2", width, d, k, input_shape=(d,)) >= 2 * width + k
    registered("dense2_given", Dense2, parameters=lambda w, shape, classes: 11 * w, macs=lambda w, s, c: 5,
               activations=lambda w, s, c: 3)
    assert (parameter_count("dense2_given", 4, d, k, input_shape=(d,)),
            forward_macs("dense2_given", 4, d, k, input_shape=(d,)),
            activation_count("dense2_given", 4, d, k, input_shape=(d,))) == (44, 5, 3)


@pytest.mark.usefixtures("x64")
def test_a_family_trains_as_the_built_in_one(registered):
    # In float64 (tests/reference.py): the two sweeps may lay members out over the devices differently.
    registered("my_mlp", mlp(1))
    mine = run_sweep(_config("my_mlp", precision="float64"))
    built_in = run_sweep(_config("mlp", precision="float64"), scheme="grouped")
    for name in ("train_loss", "test_loss"):
        assert_close(mine.curves[name], built_in.curves[name], err_msg=name)
    assert_same_errors(mine.curves["test_error"], built_in.curves["test_error"], 200)  # 200 test examples.


@pytest.mark.parametrize("name, module, kwargs, fragment", [
    ("mlp", Dense2, {}, "taken by a built-in family"),
    ("bad-name", Dense2, {}, "not allowed"),
    ("no_width", nn.Dense, {}, "takes no `width`"),
    ("no_width_fn", lambda features: nn.Dense(features), {}, "takes no `width`"),
    ("extra", Dense2, {"depth": 3}, "takes no depth"),
    ("instance", Dense2(width=3), {}, "instance is not allowed"),
])
def test_bad_registration_is_one_line(registered, name, module, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment) as error:
        registered(name, module, **kwargs)
    assert "\n" not in str(error.value)


class NoTrainSwitch(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.BatchNorm(use_running_average=True)(nn.Dense(self.width)(x)))


class WrongClasses(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.Dense(self.width)(x))


@pytest.mark.parametrize("module, fragment", [(NoTrainSwitch, "batch_stats with a `train` argument"),
                                              (WrongClasses, "expected logits [1, 10]")])
def test_a_module_that_cannot_train_exits_2_before_a_run_folder(registered, tmp_path, module, fragment):
    from ddjax.experiment import run_experiment

    registered("cannot_train", module)
    with pytest.raises(ConfigError) as error:
        run_experiment(_config("cannot_train"), tmp_path / "out")
    assert fragment in str(error.value) and "\n" not in str(error.value) and not (tmp_path / "out").exists()


@pytest.mark.usefixtures("x64")
def test_padded_scheme_pads_a_module_whose_padding_is_exact(registered):
    registered("dense2", Dense2)
    config = _config("dense2", precision="float64")
    padded, serial = run_sweep(config, scheme="padded"), run_sweep(config, mode="serial")
    assert padded.group_widths == (5,) and padded.n_programs == 1  # The width-2 members are held at width 5.
    for name in ("train_loss", "test_loss"):
        assert_close(padded.curves[name], serial.curves[name], err_msg=name)


USER_EXPERIMENT = '''
import flax.linen as nn
import numpy as np
import ddjax
from ddjax.config import Config

class Tiny(nn.Module):
    width: int
    n_classes: int = 3

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_classes)(nn.tanh(nn.Dense(self.width)(x)))

rng = np.random.default_rng(0)
x = rng.standard_normal((90, 6)).astype(np.float32)
y = np.argmax(x[:, :3], axis=1)
ddjax.register_model("tiny_user_net", Tiny)
ddjax.register_dataset("tiny_user_data", x[:60], y[:60], x[60:], y[60:])

def get_config(variant="default"):
    return ddjax.replace(Config(), dataset="tiny_user_data", model="tiny_user_net", n_train=(40,), width=(1, 4),
                         seed=(0, 1), label_noise=(0.1,), steps=12, batch_size=10, n_evals=3, n_chunks=2,
                         n_bootstrap=0)
'''


def test_experiment_file_registers_model_and_data_and_a_new_process_resumes_it_when_named(tmp_path, capsys):
    from ddjax.data import registry as data_registry
    from ddjax.registration import file_sha256

    experiment = tmp_path / "user_experiment.py"
    experiment.write_text(USER_EXPERIMENT)
    out = tmp_path / "run"
    assert main([str(experiment), "--out", str(out), "--no-progress"]) == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["registered_in"] == {"model": str(experiment), "dataset": str(experiment)}
    assert meta["registered_sha256"] == {key: file_sha256(experiment) for key in ("model", "dataset")}
    assert meta["analysis"] == {"n_test": 30, "theory": False}
    finished = np.load(out / "curves.npz")["test_loss"]
    # Unfinished again (no report.json): a fresh process, which has registered nothing, runs the file it is named.
    (out / REPORT_FILE).unlink()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "ddjax.run", "--resume", str(out), "--no-progress", "--cpu-devices", "1"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and f"--registered-in {experiment}" in refused.stderr
    done = subprocess.run([*command, "--registered-in", str(experiment)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(out / "curves.npz")["test_loss"], finished, rtol=1e-5)
    # --report needs neither the names nor the file.
    del registry.MODELS["tiny_user_net"], data_registry.DATASETS["tiny_user_data"]
    experiment.unlink()
    assert main(["--report", str(out)]) == 0
    # The experiment named again, changed since the run began: it runs (it was named), and the resume is refused.
    (out / REPORT_FILE).unlink()
    experiment.write_text(USER_EXPERIMENT + "# changed\n")
    capsys.readouterr()
    assert main([str(experiment), "--resume", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert "tiny_user_net" in error and "has changed since the run began" in error and "\n" not in error


def test_experiment_with_a_module_without_width_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(USER_EXPERIMENT.replace("width: int", "size: int").replace("self.width", "self.size"))
    assert main([str(bad), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "takes no `width`" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("width", [16])
def test_derived_counts_bound_what_xla_allocates_for_the_transformer_of_custom_model(width):
    from test_memory import _grouped_estimate_and_xla

    from ddjax.experiment import experiment_config

    config = replace(experiment_config("custom_model", "smoke"), width=(width,), seed=(0, 1, 2))
    estimate, actual = _grouped_estimate_and_xla(config, width)
    assert actual <= estimate <= 16 * actual, (actual, estimate)  # Every intermediate counted: loose, bounded.
