"""ddjax: double-descent sweeps trained as one compiled JAX program."""

__version__ = "0.1.0"

from ddjax.analysis.epochwise import EpochwiseReport, epochwise_analysis
from ddjax.analysis.modelwise import DoubleDescentReport, analyze, bootstrap_seeds, effective_model_complexity
from ddjax.analysis.verdict import PeakTest, peak_test
from ddjax.config import Config, ConfigError, apply_overrides, geometric_widths, replace
from ddjax.data.registry import register_dataset
from ddjax.experiment import experiment_config, load_experiment, resume_experiment, run_experiment
from ddjax.models.user import register_model
from ddjax.result import SweepResult
from ddjax.sweep import run_sweep
from ddjax.training.members import expand_members

__all__ = [
    "Config", "ConfigError", "DoubleDescentReport", "EpochwiseReport", "PeakTest", "SweepResult", "analyze",
    "apply_overrides",
    "bootstrap_seeds", "effective_model_complexity", "epochwise_analysis", "experiment_config", "expand_members",
    "geometric_widths", "load_experiment", "peak_test", "register_dataset", "register_model", "replace", "resume_experiment",
    "run_experiment", "run_sweep",
]
