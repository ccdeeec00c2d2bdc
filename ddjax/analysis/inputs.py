"""What the analysis of a sweep needs to know beyond its config and curves: two facts about its data set.

They are asked of the data-set registry once, when the run trains (`analysis_inputs`), and recorded in the run's
config.json under "analysis" (`ddjax.experiment.run_meta`), so re-analysing a run folder reads config.json and
curves.npz only: it needs neither the family nor the data set, and never runs the file that registered them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ddjax.data.registry import dataset_info
from ddjax.errors import ConfigError

if TYPE_CHECKING:  # Only for annotations.
    from ddjax.config import Config


class AnalysisInputs(NamedTuple):
    """The data-set facts the analysis reads."""

    # Test examples behind each test error, for the binomial noise floor of a one-seed verdict; None: the test
    # error is an exact risk (Gaussian regression drawn per member), with no test sample.
    n_test: int | None
    theory: bool  # The Hastie et al. (2019) limit of the min-norm risk applies (`ddjax.analysis.theory`).


def analysis_inputs(config: Config) -> AnalysisInputs:
    """The analysis inputs of `config`, asked of the data-set registry (`ddjax.data.registry.dataset_info`)."""
    info = dataset_info(config.dataset)
    return AnalysisInputs(None if info.n_test is None else int(info.n_test(config)), bool(info.theory))


def inputs_from_dict(values: Any, source: str) -> AnalysisInputs:
    """The analysis inputs of a `_asdict()` result (as stored in config.json); ConfigError, one line starting
    with `source`, if a key is missing or a value is not of its type."""
    if not isinstance(values, dict) or set(values) != set(AnalysisInputs._fields):
        raise ConfigError(f"{source}: \"analysis\" must hold exactly {', '.join(AnalysisInputs._fields)}, got "
                          f"{values!r}")
    n_test, theory = values["n_test"], values["theory"]
    if n_test is not None and (not isinstance(n_test, int) or isinstance(n_test, bool) or n_test < 1):
        raise ConfigError(f"{source}: analysis n_test={n_test!r} is not allowed: an integer >= 1, or null")
    if not isinstance(theory, bool):
        raise ConfigError(f"{source}: analysis theory={theory!r} is not allowed: true or false")
    return AnalysisInputs(n_test, theory)
