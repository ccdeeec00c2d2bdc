"""Shared fixtures: small configs that train in about a second on a CPU; one compilation cache for the run."""

import os
import tempfile

import pytest

# Many tests compile the same small programs (a serial member of the tiny config, a smoke experiment), in this
# process and in the subprocesses they start. One persistent compilation cache, new for each pytest run (nothing
# outlives it), compiles each program once; it changes compile time only (a cached executable is the one XLA
# compiled). Set before JAX reads its config, and inherited by subprocesses through the environment.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="ddjax-test-jax-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

from ddjax.config import Config, replace

# The heavy tier (`python -m pytest -q -m slow`; `-m ""` runs both): the longest tests, each a second case of what a
# lighter test of the default tier already checks (another family, dtype, depth or layout of the same comparison
# with serial members) or a size check of a full experiment. Measured, with the default tier's time, in
# docs/testing.md.
SLOW = {
    "test_blockpacked.py::test_block_packed_members_equal_serial_members[overrides1-1]",
    "test_blockpacked.py::test_block_packed_members_equal_serial_members[overrides2-3]",
    "test_blockpacked.py::test_block_packed_members_equal_serial_members[overrides3-2]",
    "test_conv.py::test_batchnorm_is_per_member_bit_for_bit[resnet18-shape1]",
    "test_conv.py::test_batchnorm_state_resumes_to_the_same_curves",
    "test_conv.py::test_both_convolution_forms_give_the_same_family[cnn5-shape1]",
    "test_conv.py::test_padded_channels_get_zero_gradient_and_change_no_output[resnet18-shape2]",
    "test_conv.py::test_parameter_counts_at_known_sizes",
    "test_conv.py::test_registry_parameter_counts_equal_the_initialized_variables[cnn5-shape1-widths1]",
    "test_conv.py::test_registry_parameter_counts_equal_the_initialized_variables[resnet18-shape2-widths2]",
    "test_conv_precision.py::test_bfloat16_cnn1d_sweep_equals_serial_members_and_stays_near_float32",
    "test_conv_precision.py::test_bfloat16_cnn5_vmapped_members_equal_serial_members_and_stay_near_float32",
    "test_conv_precision.py::test_bfloat16_convolutions_take_bfloat16_operands_and_the_state_stays_float32[resnet18-patches]",
    "test_epoch_sampling.py::test_epoch_sampling_vmapped_equals_serial[overrides0]",
    "test_epochwise_dd.py::test_closed_form_risk_equals_the_mean_of_simulated_gradient_descent",
    "test_epochwise_dd.py::test_trained_curves_are_plain_gradient_descent_on_the_member_problem",
    "test_gpu_check.py::test_gpu_check_tiny_runs_every_part_on_the_cpu",
    "test_image_experiments.py::test_convolutional_cifar_experiments_smoke_on_the_tiny_tarball[cnn5_cifar10]",
    "test_image_sweeps.py::test_augmented_members_have_the_parameters_of_serial_members",
    "test_image_sweeps.py::test_deeper_mlp_on_images_block_packed_equals_serial",
    "test_image_sweeps.py::test_image_sweep_vmapped_equals_serial[changes0]",
    "test_image_sweeps.py::test_image_sweep_vmapped_equals_serial[changes1]",
    "test_image_sweeps.py::test_image_sweep_vmapped_equals_serial[changes2]",
    "test_image_sweeps.py::test_images_train_as_their_standardized_flat_copy[grouped]",
    "test_memory.py::test_a_sweep_over_max_members_per_program_gives_the_curves_of_one_program[grouped-1]",
    "test_memory.py::test_consecutive_programs_on_two_devices_give_the_curves_of_one_program",
    "test_memory.py::test_estimate_bounds_what_xla_allocates_for_a_convolutional_program[48-1600]",
    "test_memory.py::test_estimate_bounds_what_xla_allocates_for_a_convolutional_program[8-800]",
    "test_memory.py::test_the_full_convolutional_experiments_fit_a_cpu_host",
    "test_module_padding.py::test_a_module_padding_cannot_make_exact_trains_one_program_a_width[FlattenedChannels-`Dense_0`]",
    "test_module_padding.py::test_padded_per_width_and_serial_members_agree[ConvBatchNorm]",
    "test_module_padding.py::test_padded_per_width_and_serial_members_agree[transformer]",
    "test_precision.py::test_bfloat16_block_packed_members_equal_serial_members",
    "test_precision.py::test_bfloat16_vmapped_members_equal_serial_members[random_relu_features]",
    "test_registered.py::test_resume_runs_the_named_file_with_the_recorded_sha256",
    "test_registry.py::test_every_trainable_family_has_the_one_interface[cnn5]",
    "test_registry.py::test_every_trainable_family_has_the_one_interface[resnet18]",
    "test_regularization.py::test_weight_decay_in_every_layout_equals_serial_training[1-schemes0]",
    "test_schedules.py::test_a_schedule_trains_alike_in_every_layout_and_in_serial_mode[packed-1]",
    "test_train.py::test_vmapped_member_equals_serial_member[overrides2]",
    "test_two_layer.py::test_closed_form_is_gradient_descent_on_the_linearized_network[2-32-0.3-0.001]",
    "test_two_layer.py::test_kernels_are_the_layers_jacobian_grams[1]",
    "test_two_layer.py::test_rates_between_one_and_two_oscillate_like_gradient_descent",
    "test_user_models.py::test_a_family_trains_as_the_built_in_one",
    "test_user_models.py::test_derived_counts_bound_what_xla_allocates_for_the_transformer_of_custom_model[16]",
    "test_user_models.py::test_module_with_batchnorm_trains_grouped_as_serial_members",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.removeprefix("tests/") in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tiny_config() -> Config:
    """A Gaussian-data sweep small enough to compile and train in seconds."""
    return replace(Config(), dataset="gaussian", n_samples=400, input_dim=8, n_classes=3, teacher_noise=0.5,
                   width=(1, 3, 8, 20), seed=(0, 1), n_train=(200,), label_noise=(0.1,), steps=40,
                   batch_size=16, n_evals=4, n_chunks=3, learning_rate=(1e-2,))


# A CLI run that compiles in a few seconds: 4 members in 2 width groups, 16 chunks (a checkpoint after each).
TINY_RUN = ("mlp_mnist1d:smoke", "--set", "dataset=gaussian", "--set", "n_samples=200", "--set", "input_dim=4",
            "--set", "n_classes=3", "--set", "width=2,4", "--set", "seed=0,1", "--set", "n_train=100",
            "--set", "batch_size=8", "--set", "steps=30", "--set", "n_chunks=30", "--set", "n_evals=3")


def tiny_run_config() -> Config:
    """The config of TINY_RUN, for the Python API."""
    from ddjax.config import apply_overrides
    from ddjax.experiment import experiment_config

    return apply_overrides(experiment_config("mlp_mnist1d", "smoke"), list(TINY_RUN[2::2]))


@pytest.fixture
def x64():
    """JAX's 64-bit mode for the test: configs may take precision="float64" (see tests/reference.py)."""
    import jax

    with jax.enable_x64(True):
        yield
