"""Learning-rate schedules: the factor itself, and the same schedule in every layout against serial members."""

import numpy as np
import pytest

from ddjax.config import replace
from ddjax.errors import ConfigError
from ddjax.sweep import run_sweep
from ddjax.training.schedules import learning_rate_factor
from reference import assert_close


def test_inverse_sqrt_factor_steps_down_every_period():
    factors = [float(learning_rate_factor("inverse_sqrt", 512, step)) for step in (0, 511, 512, 1023, 1024, 5119)]
    np.testing.assert_allclose(factors, 1 / np.sqrt([1, 1, 2, 2, 3, 10]), rtol=1e-6)
    assert learning_rate_factor("constant", 512, 7) is None


# depth 1 takes the packed layout, depth 2 the block-packed one, "grouped" the per-member trainer.
@pytest.mark.parametrize("scheme, depth", [("packed", 1), ("blockpacked", 2), ("grouped", 2)])
@pytest.mark.usefixtures("x64")
def test_a_schedule_trains_alike_in_every_layout_and_in_serial_mode(tiny_config, scheme, depth):
    config = replace(tiny_config, depth=depth, optimizer="momentum", learning_rate=(0.05,),
                     lr_schedule="inverse_sqrt", lr_schedule_steps=4, precision="float64")  # See tests/reference.py.
    serial = run_sweep(config, mode="serial")
    vmapped = run_sweep(config, scheme=scheme)
    assert vmapped.scheme == scheme
    for name in ("train_loss", "test_loss"):
        assert_close(vmapped.curves[name], serial.curves[name], err_msg=name)
    # The schedule is applied: the same sweep at a constant rate ends elsewhere.
    constant = run_sweep(replace(config, lr_schedule="constant"), mode="serial")
    assert np.max(np.abs(constant.curves["train_loss"][..., -1] - serial.curves["train_loss"][..., -1])) > 1e-3


def test_a_period_longer_than_training_is_the_constant_rate(tiny_config):
    config = replace(tiny_config, optimizer="sgd", learning_rate=(0.1,))
    scheduled = run_sweep(replace(config, lr_schedule="inverse_sqrt", lr_schedule_steps=config.steps + 1))
    constant = run_sweep(config)
    np.testing.assert_array_equal(scheduled.curves["train_loss"], constant.curves["train_loss"])


def test_bad_schedules_are_refused(tiny_config):
    with pytest.raises(ConfigError, match="lr_schedule='cosine' is not allowed: one of constant, inverse_sqrt"):
        replace(tiny_config, lr_schedule="cosine")
    with pytest.raises(ConfigError, match="lr_schedule_steps=0 is not allowed: an integer >= 1"):
        replace(tiny_config, lr_schedule_steps=0)
