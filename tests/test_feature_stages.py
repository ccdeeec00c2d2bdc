"""The closed-form layout's staged random-features sweeps: every member's curves against `readout_member` on the
family's own parameters (the features a trained member has), the members' order, and the memory plan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import Config, ConfigError, replace
from ddjax.config.axes import AXES
from ddjax.data.registry import load_dataset
from ddjax.experiment import run_experiment
from ddjax.solvers.closed_form import readout_member
from ddjax.solvers.feature_memory import MAX_BLOCK
from ddjax.solvers.feature_stages import problem_members
from ddjax.sweep import prepare, run_sweep
from ddjax.training.members import shared_data, stack_members, train_spec

SWEEP = dict(dataset="gaussian", n_samples=200, input_dim=8, n_classes=3, teacher_noise=0.5, n_train=(30, 40),
             width=(5, 21, 60), seed=(0, 1), label_noise=(0.0, 0.2), ridge=(0.0, 1e-3), validation_fraction=0.25,
             method="min_norm", loss="squared", batch_size=0, n_bootstrap=0)


@pytest.mark.parametrize("feature_draw", ["common", "independent"])
@pytest.mark.parametrize("model", ["random_fourier_features", "random_relu_features"])
def test_every_member_equals_readout_member_on_its_family_parameters(model, feature_draw):
    config = replace(Config(), **SWEEP, model=model, feature_draw=feature_draw)
    result = run_sweep(config)
    dataset = load_dataset(config)
    spec, data, coords = train_spec(config, dataset), shared_data(dataset, config), result.coords
    assert result.scheme == "closed_form" and result.n_programs == 3 * 8  # 3 widths x 8 problems
    for i in range(len(coords["width"])):
        variables, member = stack_members(coords, np.array([i]), dataset, config, spec, int(coords["width"][i]))
        with jax.enable_x64(True):
            reference = readout_member(spec, *jax.tree.map(lambda a: a[0], (variables, member)), data,
                                       (float(coords["ridge"][i]),))
        for name, values in reference.items():
            # The reference sums its errors and losses with float32 weights (`train_weights`).
            np.testing.assert_allclose(result.curves[name][i], np.asarray(values), rtol=1e-6, atol=1e-9,
                                       err_msg=f"{name} of member {i}")


def test_problems_are_the_members_that_differ_only_in_width():
    coords = {axis.name: np.full(6, axis.default[0]) for axis in AXES}
    coords.update(width=np.array([9, 3, 9, 3, 5, 5]), seed=np.array([0, 0, 1, 1, 0, 1]))
    problems = problem_members(coords)
    assert [p.tolist() for p in problems] == [[1, 4, 0], [3, 5, 2]]  # ascending width, seeds in order


def test_the_memory_plan_sets_the_block_and_refuses_a_solve_over_budget(tmp_path):
    config = replace(Config(), **{**SWEEP, "width": (5, 21, 3000)}, model="random_fourier_features")
    roomy = prepare(config).context.memory
    assert roomy.block == MAX_BLOCK and roomy.largest_stage == 3000
    # Here a block's feature values set the peak: a byte less of budget takes a smaller block.
    tight = prepare(replace(config, memory_budget_bytes=roomy.peak_bytes - 1)).context.memory
    assert tight.block < MAX_BLOCK and tight.peak_bytes <= roomy.peak_bytes - 1
    with pytest.raises(ConfigError) as error:
        run_experiment(replace(config, memory_budget_bytes=10_000), tmp_path / "run")
    message = str(error.value)
    assert "needs" in message and "even in blocks of one feature" in message and "\n" not in message
    assert not (tmp_path / "run").exists()  # Refused before the run folder exists.
