"""Every data set by name, in one table: the only place that tells data sets apart by their names.

Config validation (which models, methods and training-set sizes a data set allows), `load_dataset`, the
closed-form solvers and the analysis (whether a theory curve applies) all ask `dataset_info(name)`. To add a
data set: write its loader (returning a `Dataset`), then add one `DatasetInfo` row to `DATASETS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple

from ddjax.data.datasets import Dataset, load_image_dataset, make_gaussian, make_mnist1d
from ddjax.data.image_sets import IMAGE_SETS

if TYPE_CHECKING:  # Only for annotations: the config module reads this table to validate names.
    from ddjax.config import Config


class DatasetInfo(NamedTuple):
    """What ddjax asks of a data set, answered once."""

    # config -> the data set shared by every member; None: drawn per member inside the program, so there is
    # nothing to load (`ddjax.data.gaussian_regression`, solved by `ddjax.solvers.closed_form`).
    load: Callable[[Config], Dataset] | None
    # config -> size of the training split members draw n_train from; None: any n_train is available.
    n_train_available: Callable[[Config], int] | None
    # config -> size of the test split (the binomial noise of a test error); None: no test sample (an exact risk).
    n_test: Callable[[Config], int] | None = None
    # config -> what that split is, for error messages.
    describe_split: Callable[[Config], str] = lambda c: f"the training split of n_samples={c.n_samples}"
    models: tuple[str, ...] | None = None  # The only model families it allows; None: any.
    methods: tuple[str, ...] | None = None  # The only methods it allows; None: any.
    no_label_noise: str = ""  # If label noise does not apply: why (the end of a config error).
    theory: bool = False  # The Hastie et al. (2019) limit of the min-norm risk applies (`ddjax.analysis.theory`).
    # Read from files that may have to be downloaded: loaded (and verified) before a run folder is created.
    from_files: bool = False
    images: bool = False  # Inputs are uint8 NHWC images: `augment` applies (`ddjax.data.augment`).


def _generated(n_generated: Callable[[int], int], load: Callable[[Config], Dataset]) -> DatasetInfo:
    """A data set of n_generated(n_samples) samples split by train_fraction into training and test samples."""
    def n_train(c):
        return int(n_generated(c.n_samples) * c.train_fraction)

    return DatasetInfo(load, n_train, n_test=lambda c: n_generated(c.n_samples) - n_train(c))


def _image_set(name: str) -> DatasetInfo:
    # IMAGE_SETS is read at call time, so a test may swap in a tiny set of the same name.
    return DatasetInfo(lambda c: load_image_dataset(name), lambda c: IMAGE_SETS[name].n_train,
                       n_test=lambda c: IMAGE_SETS[name].n_test, describe_split=lambda c: f"the {name} training set", from_files=True, images=True)


DATASETS: dict[str, DatasetInfo] = {
    # MNIST-1D makes n_samples // 10 samples of each of its 10 classes.
    "mnist1d": _generated(lambda n_samples: n_samples // 10 * 10,
                          lambda c: make_mnist1d(c.n_samples, c.train_fraction, c.data_seed)),
    "gaussian": _generated(lambda n_samples: n_samples,
                           lambda c: make_gaussian(c.n_samples, c.train_fraction, c.input_dim, c.n_classes,
                                                   c.teacher_noise, c.data_seed)),
    "gaussian_regression": DatasetInfo(None, None, models=("linear",), methods=("min_norm",),
                                       no_label_noise="its noise is noise_var", theory=True),
    # Features in blocks of different scales, drawn per member (`ddjax.data.multiscale_regression`), trained by
    # full-batch gradient descent with its risk over time in closed form.
    "multiscale_regression": DatasetInfo(None, None, models=("linear",), methods=("gradient_descent",),
                                         no_label_noise="its noise is noise_var"),
    # Images from their original files (`ddjax.data.image_sets`), uint8 NHWC; n_samples and train_fraction do
    # not apply: members draw from the official training split and are tested on the official test split.
    **{name: _image_set(name) for name in IMAGE_SETS},
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


def prepare_dataset(config: Config) -> None:
    """Makes the data of `config` available before a run folder is created: a data set read from files is
    downloaded if missing, verified and decoded into the process's cache (a failure is a one-line DataError and
    writes nothing; the run then reads it from memory); generated data sets need nothing here."""
    if dataset_info(config.dataset).from_files:
        load_dataset(config)
