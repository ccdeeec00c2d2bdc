"""Every data set by name, in one table: the only place that tells data sets apart by their names.

Config validation (which models, methods and training-set sizes a data set allows), `load_dataset`, the
closed-form solvers and the analysis (whether a theory curve applies) all ask `dataset_info(name)`. To add a
data set: write its loader (returning a `Dataset`), then add one `DatasetInfo` row to `DATASETS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple

from ddjax.data.datasets import Dataset, make_gaussian, make_mnist1d

if TYPE_CHECKING:  # Only for annotations: the config module reads this table to validate names.
    from ddjax.config import Config


class DatasetInfo(NamedTuple):
    """What ddjax asks of a data set, answered once."""

    # config -> the data set shared by every member; None: drawn per member inside the program, so there is
    # nothing to load (`ddjax.data.gaussian_regression`, solved by `ddjax.solvers.closed_form`).
    load: Callable[[Config], Dataset] | None
    # n_samples -> samples generated before the train/test split; None: any n_train is available.
    n_generated: Callable[[int], int] | None
    models: tuple[str, ...] | None = None  # The only model families it allows; None: any.
    methods: tuple[str, ...] | None = None  # The only methods it allows; None: any.
    no_label_noise: str = ""  # If label noise does not apply: why (the end of a config error).
    theory: bool = False  # The Hastie et al. (2019) limit of the min-norm risk applies (`ddjax.analysis.theory`).


DATASETS: dict[str, DatasetInfo] = {
    # MNIST-1D makes n_samples // 10 samples of each of its 10 classes.
    "mnist1d": DatasetInfo(lambda c: make_mnist1d(c.n_samples, c.train_fraction, c.data_seed),
                           lambda n_samples: n_samples // 10 * 10),
    "gaussian": DatasetInfo(lambda c: make_gaussian(c.n_samples, c.train_fraction, c.input_dim, c.n_classes,
                                                    c.teacher_noise, c.data_seed),
                            lambda n_samples: n_samples),
    "gaussian_regression": DatasetInfo(None, None, models=("linear",), methods=("min_norm",),
                                       no_label_noise="its noise is noise_var", theory=True),
}


def dataset_info(name: str) -> DatasetInfo:
    """The table row of data set `name`; ValueError naming the allowed names if there is none."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(config: Config) -> Dataset:
    """The data set named by `config.dataset`, shared by every member of the sweep.

    Raises ValueError for a data set drawn per member inside the program (it has no shared arrays to load).
    """
    info = dataset_info(config.dataset)
    if info.load is None:
        raise ValueError(f"dataset {config.dataset!r} is drawn per member inside the program; it has no shared "
                         f"data set to load (method=min_norm solves it: ddjax.solvers.closed_form)")
    return info.load(config)
