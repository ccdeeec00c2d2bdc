"""The staged random-features solver against `readout_member` on the same features (Fourier and ReLU maps), the
common draw's prefix property, checkpointing between stages, and the memory plan."""

import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import ConfigError, validation_size
from ddjax.models.families import padded_normal, random_features
from ddjax.models.feature_draws import CHUNK, feature_block, feature_params
from ddjax.runs.checkpoint import load_checkpoint, restore_state, save_checkpoint
from ddjax.solvers.closed_form import readout_member
from ddjax.solvers.feature_blocks import (carry_template, initial_carry, make_problem, plan_stages,
                                          run_stage)
from ddjax.solvers.feature_memory import plan_block, stage_bytes
from ddjax.training.spec import Members, SharedData, TrainSpec

N_TRAIN, N_TEST, DIM, CLASSES, SEED = 40, 25, 6, 3, 7
STRENGTHS = (0.0, 1e-3, 1e-1)


def data(duplicate_rows: int = 0):
    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((N_TRAIN, DIM)).astype(np.float32)
    x_train[N_TRAIN - duplicate_rows:] = x_train[:duplicate_rows]  # equal rows: a singular sample-side Gram
    return (x_train, rng.integers(0, CLASSES, N_TRAIN), rng.standard_normal((N_TEST, DIM)).astype(np.float32),
            rng.integers(0, CLASSES, N_TEST))


def problem_of(validation_fraction=0.0, strengths=STRENGTHS, draw="common", duplicate_rows=0, feature_map="fourier"):
    x_train, y_train, x_test, y_test = data(duplicate_rows)
    return make_problem(x_train, y_train, x_test, y_test, n_train=N_TRAIN, validation_fraction=validation_fraction,
                        n_classes=CLASSES, seed=SEED, strengths=strengths, draw=draw, feature_map=feature_map)


def widths_around(n_fit):
    """Both sides of the interpolation threshold (N + 1 = n_fit: the last width on the feature side)."""
    return (3, n_fit - 2, n_fit - 1, n_fit, n_fit + 5, 3 * n_fit)


def run_all(problem, stages, block=7):
    carry, out = initial_carry(problem), []
    for stage in stages:
        carry, curves, report = run_stage(carry, stage, problem, block=block)
        out.append((curves, report))
    return out


def reference_curves(width, validation_fraction, params, duplicate_rows=0, feature_map="fourier"):
    """`readout_member` in float64 on the same first layer."""
    x_train, y_train, x_test, y_test = data(duplicate_rows)
    n_val = validation_size(N_TRAIN, validation_fraction)
    spec = TrainSpec(model=random_features(feature_map), optimizer="sgd", loss="squared", batch_size=0, steps=1,
                     eval_steps=(0,), chunk_steps=1, input_dim=DIM, n_classes=CLASSES, precision="float64",
                     validation=n_val > 0)
    member = Members(width=jnp.int32(width), n_train=jnp.int32(N_TRAIN - n_val), learning_rate=jnp.float32(0),
                     seed=jnp.uint32(0), labels=jnp.asarray(y_train, jnp.int32), n_val=jnp.int32(n_val))
    with jax.enable_x64(True):
        variables = {"params": jax.tree.map(jnp.asarray, params), "model_state": {}}
        shared = SharedData(jnp.asarray(x_train), jnp.asarray(x_test), jnp.asarray(y_test))
        return {k: np.asarray(v) for k, v in readout_member(spec, variables, member, shared, STRENGTHS).items()}


def assert_same_curves(curves, reference):
    assert sorted(curves) == sorted(reference)
    # The solutions agree to about cond(Gram) * 1e-16 (cond <= 1e8 here, at the threshold); the reference sums
    # its errors and losses with float32 weights (`train_weights`): relative 1e-6 covers both.
    for name in reference:
        np.testing.assert_allclose(curves[name], reference[name], rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("feature_map", ["fourier", "relu"])
@pytest.mark.parametrize("validation_fraction", [0.0, 0.2])
def test_every_stage_equals_readout_member_on_the_prefix_of_the_draw(validation_fraction, feature_map):
    problem = problem_of(validation_fraction, feature_map=feature_map)
    n_fit = len(problem.x_fit)
    stages = plan_stages(widths_around(n_fit), n_fit)
    assert [s.side for s in stages] == ["features"] * 3 + ["samples"] * 3
    for stage, (curves, report) in zip(stages, run_all(problem, stages)):
        assert report["methods"] == ["cholesky"] * len(STRENGTHS)
        params = feature_params(feature_map, "common", SEED, stage.width, stage.width + 4, DIM, CLASSES)
        assert_same_curves(curves, reference_curves(stage.width, validation_fraction, params,
                                                    feature_map=feature_map))


@pytest.mark.parametrize("feature_map", ["fourier", "relu"])
def test_independent_draws_reproduce_the_family_members(feature_map):
    problem = problem_of(draw="independent", feature_map=feature_map)
    stages = plan_stages(widths_around(N_TRAIN), N_TRAIN, draw="independent")
    assert all(s.start == 0 and not s.keep_grams and not s.keep_features for s in stages)
    for stage, (curves, _) in zip(stages, run_all(problem, stages)):
        family = random_features(feature_map, "independent")
        params = family.init(SEED, stage.width, stage.width, DIM, CLASSES)["params"]
        assert_same_curves(curves, reference_curves(stage.width, 0.0, params, feature_map=feature_map))


def test_a_singular_gram_falls_back_to_the_eigendecomposition():
    problem = problem_of(duplicate_rows=4)
    stages = plan_stages((N_TRAIN + 3, 2 * N_TRAIN), N_TRAIN)
    for stage, (curves, report) in zip(stages, run_all(problem, stages)):
        assert report["methods"][0] == "eigh"  # the minimum-norm solve: K has 4 zero eigenvalues
        params = feature_params("fourier", "common", SEED, stage.width, stage.width, DIM, CLASSES)
        assert_same_curves(curves, reference_curves(stage.width, 0.0, params, duplicate_rows=4))


def test_a_prefix_of_the_common_draw_is_the_smaller_draw():
    largest = feature_block("common", 3, 5000, 0, 2 * CHUNK + 300, DIM)
    for width in (1, 17, CHUNK, CHUNK + 1, 2 * CHUNK + 300):
        smaller = feature_block("common", 3, width, 0, width, DIM)
        np.testing.assert_array_equal(smaller[0], largest[0][:width])
        np.testing.assert_array_equal(smaller[1], largest[1][:width])
    start, stop = CHUNK - 5, 2 * CHUNK + 9
    block = feature_block("common", 3, 5000, start, stop, DIM)
    np.testing.assert_array_equal(block[0], largest[0][start:stop])
    np.testing.assert_array_equal(block[1], largest[1][start:stop])
    assert feature_block("common", 4, 10, 0, 10, DIM)[0][0, 0] != largest[0][0, 0]  # another seed


@pytest.mark.parametrize("feature_map", ["fourier", "relu"])
def test_the_independent_draw_is_one_generator_for_the_projection_then_the_phases(feature_map):
    """Each width's own draw: runs with feature_draw="independent" draw exactly what every run drew before the
    common draw existed."""
    rng = np.random.default_rng([SEED, 0])
    projection = padded_normal(rng, (DIM, 30), (DIM, 40), 1 / np.sqrt(DIM))
    phase = np.zeros(40, np.float32)
    if feature_map == "fourier":
        phase[:30] = rng.uniform(0, 2 * np.pi, 30)
    params = random_features(feature_map, "independent").init(SEED, 30, 40, DIM, CLASSES)["params"]
    np.testing.assert_array_equal(params["features"]["w"], projection)
    np.testing.assert_array_equal(params["features"]["b"], phase)


@pytest.mark.parametrize("feature_map", ["fourier", "relu"])
def test_the_family_draws_a_prefix_of_the_common_sequence(feature_map):
    family = random_features(feature_map)  # "common" is the default
    small, large = (family.init(SEED, width, 60, DIM, CLASSES)["params"]["features"] for width in (20, 50))
    np.testing.assert_array_equal(small["w"][:, :20], large["w"][:, :20])
    np.testing.assert_array_equal(small["b"][:20], large["b"][:20])
    assert np.all(small["w"][:, 20:] == 0) and np.all(small["b"][20:] == 0)
    assert np.any(large["b"] != 0) == (feature_map == "fourier")


@pytest.mark.parametrize("restore", ["host", "device"])
def test_resuming_from_a_checkpoint_after_any_stage_gives_identical_curves(tmp_path, restore):
    problem = problem_of(0.2)
    n_fit = len(problem.x_fit)
    stages = plan_stages(widths_around(n_fit), n_fit)
    uninterrupted = [curves for curves, _ in run_all(problem, stages)]
    for stop in range(1, len(stages)):
        carry = initial_carry(problem)
        for stage in stages[:stop]:
            carry, _, _ = run_stage(carry, stage, problem, block=7)
        folder = tmp_path / f"{restore}-{stop}"
        folder.mkdir()
        save_checkpoint(folder, stop, carry, config={})
        del carry
        checkpoint = load_checkpoint(folder)
        template = carry_template(stages, checkpoint.step, problem)
        if restore == "host":
            carry = restore_state(checkpoint, template, host=True)
        else:
            with jax.enable_x64(True):
                carry = restore_state(checkpoint, template)
        for stage, expected in zip(stages[stop:], uninterrupted[stop:]):
            carry, curves, _ = run_stage(carry, stage, problem, block=7)
            for name in expected:
                np.testing.assert_array_equal(curves[name], expected[name], err_msg=f"{name} at N={stage.width}")


def test_a_checkpoint_of_another_stage_is_refused(tmp_path):
    problem = problem_of()
    stages = plan_stages(widths_around(N_TRAIN), N_TRAIN)
    carry, _, _ = run_stage(initial_carry(problem), stages[0], problem, block=7)
    save_checkpoint(tmp_path, 1, carry, config={})
    with pytest.raises(ConfigError, match="does not match"):
        restore_state(load_checkpoint(tmp_path), carry_template(stages, 4, problem), host=True)


def test_the_block_size_does_not_change_the_curves_beyond_rounding():
    problem = problem_of()
    stages = plan_stages(widths_around(N_TRAIN), N_TRAIN)
    for (a, _), (b, _) in zip(run_all(problem, stages, block=1), run_all(problem, stages, block=1000)):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-7, atol=1e-12)


def test_the_memory_plan_bounds_what_a_stage_allocates(tmp_path):
    problem = problem_of(0.2)
    n_fit, n_eval = len(problem.x_fit), len(problem.x_eval)
    stages = plan_stages(widths_around(n_fit) + (700,), n_fit)
    shapes = dict(n_fit=n_fit, n_eval=n_eval, input_dim=DIM, n_classes=CLASSES)
    carry = initial_carry(problem)
    for stage in stages:
        tracemalloc.start()
        carry, _, _ = run_stage(carry, stage, problem, block=50)
        save_checkpoint(tmp_path, stage.index + 1, carry, config={})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # numpy reports its allocations to tracemalloc; the input carry and the problem were allocated before.
        assert peak <= stage_bytes(stage, 50, **shapes), stage


def test_the_block_shrinks_to_fit_the_budget_and_a_stage_that_cannot_fit_is_refused():
    stages = plan_stages((1000, 9000, 10000, 60000), 10_000)
    shapes = dict(n_fit=10_000, n_eval=10_000, input_dim=784, n_classes=10)
    roomy = plan_block(stages, budget=16 * 2**30, **shapes)
    assert roomy.block == 2048 and roomy.largest_stage == 9000 and roomy.peak_bytes <= 16 * 2**30
    # Many evaluated rows, few fitted: the block's cosines, not the solve, set the peak.
    wide = dict(n_fit=100, n_eval=100_000, input_dim=784, n_classes=10)
    few = plan_stages((50, 5000), 100)
    smallest, largest = (max(stage_bytes(s, block, **wide) for s in few) for block in (1, 2048))
    tight = plan_block(few, budget=(smallest + largest) // 2, **wide)
    assert 1 < tight.block < 2048 and tight.peak_bytes <= tight.budget_bytes
    with pytest.raises(ConfigError, match=r"needs \d+\.\d GiB at N = 9000 even in blocks of one feature"):
        plan_block(stages, budget=2 * 2**30, **shapes)
