"""Every data set by name, in one table: the only place that tells data sets apart by their names.

Config validation (which models, methods and training-set sizes a data set allows), `load_dataset`, the
closed-form solvers and the analysis (whether a theory curve applies) all ask `dataset_info(name)`. The table is
open: `register(name, info)` adds a row, and the built-in data sets register through it like a user's;
`register_dataset(name, x_train, y_train, x_test, y_test)` makes a user's arrays a row, and `dataset="npz:PATH"`
names an .npz of those four arrays (`ddjax.data.arrays` checks both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from ddjax.data.arrays import check_dataset, describe, is_npz, load_npz
from ddjax.data.circle import make_circle
from ddjax.data.datasets import Dataset, load_image_dataset, make_gaussian, make_mnist1d
from ddjax.data.image_sets import IMAGE_SETS
from ddjax.errors import ConfigError
from ddjax.registration import add_row, caller_file

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
    # Float targets [n, outputs] (loss "mse"; noise: the `target_noise` axis); else integer labels.
    regression: bool = False


def _generated(n_generated: Callable[[int], int], load: Callable[[Config], Dataset]) -> DatasetInfo:
    """A data set of n_generated(n_samples) samples split by train_fraction into training and test samples."""
    def n_train(c):
        return int(n_generated(c.n_samples) * c.train_fraction)

    return DatasetInfo(load, n_train, n_test=lambda c: n_generated(c.n_samples) - n_train(c))


def _image_set(name: str) -> DatasetInfo:
    # IMAGE_SETS is read at call time, so a test may swap in a tiny set of the same name.
    return DatasetInfo(lambda c: load_image_dataset(name), lambda c: IMAGE_SETS[name].n_train,
                       n_test=lambda c: IMAGE_SETS[name].n_test, describe_split=lambda c: f"the {name} training set", from_files=True, images=True)


DATASETS: dict[str, DatasetInfo] = {}
BUILT_IN: set[str] = set()  # Names ddjax registers itself: a user's data set cannot take them.
REGISTERED_IN: dict[str, str | None] = {}  # A user's data set -> the .py file that registered it (None: unknown).


def register(name: str, info: DatasetInfo, *, built_in: bool = False, origin: str | None = None) -> None:
    """Adds data set `name` to the table (`ddjax.registration.add_row`: a built-in name cannot be taken)."""
    add_row(DATASETS, BUILT_IN, REGISTERED_IN, name, info, kind="dataset", noun="data set", built_in=built_in,
            origin=origin)


def register_dataset(name: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any, *,
                     n_classes: int | None = None) -> Dataset:
    """Makes four arrays the data set `name`: features float [n, d] or uint8 images [n, H, W, C], integer labels.

    Keras's grey-scale uint8 [n, H, W] gains a channel axis; other real [n, H, W] is flattened to features.
    Checked here (shapes that disagree, labels outside [0, n_classes) or not integers, NaN or infinite features,
    an empty split: one-line ConfigError). Members draw n_train from the training split (its first n_train
    examples) and are tested on the whole test split; label noise, sampling and, for images, `augment` apply as
    to the built-in data sets. The file of the caller is recorded, so a run folder can find it again.

    Returns:
      The checked `Dataset`.
    """
    dataset = check_dataset(f"dataset {name!r}", x_train, y_train, x_test, y_test, n_classes)
    register(name, arrays_info(dataset, f"the training split of dataset {name} ({describe(dataset)})",
                               lambda config: dataset), origin=caller_file())
    return dataset


def arrays_info(dataset: Dataset, split: str, load: Callable[[Config], Dataset], *,
                from_files: bool = False) -> DatasetInfo:
    """The row of a data set given as arrays: its own split sizes; images (uint8 NHWC) take `augment`."""
    return DatasetInfo(load, lambda c: len(dataset.y_train), n_test=lambda c: len(dataset.y_test),
                       describe_split=lambda c: split, from_files=from_files, images=dataset.x_train.ndim == 4)


# MNIST-1D makes n_samples // 10 samples of each of its 10 classes.
register("mnist1d", _generated(lambda n_samples: n_samples // 10 * 10,
                               lambda c: make_mnist1d(c.n_samples, c.train_fraction, c.data_seed)), built_in=True)
register("gaussian", _generated(lambda n_samples: n_samples,
                                lambda c: make_gaussian(c.n_samples, c.train_fraction, c.input_dim, c.n_classes,
                                                        c.teacher_noise, c.data_seed)), built_in=True)
# Regression on the circle (`ddjax.data.circle`): max(n_train) equally spaced training angles, n_samples test angles,
# n_classes outputs.
register("circle", DatasetInfo(lambda c: make_circle(max(c.n_train), c.n_samples, c.n_classes, c.data_seed), None,
                               describe_split=lambda c: "max(n_train) equally spaced angles",
                               no_label_noise="its noise is target_noise", regression=True), built_in=True)
register("gaussian_regression", DatasetInfo(None, None, models=("linear",), methods=("min_norm",),
                                            no_label_noise="its noise is noise_var", theory=True), built_in=True)
# Features in blocks of different scales, drawn per member (`ddjax.data.multiscale_regression`), trained by
# full-batch gradient descent with its risk over time in closed form.
register("multiscale_regression", DatasetInfo(None, None, models=("linear",), methods=("gradient_descent",),
                                              no_label_noise="its noise is noise_var"), built_in=True)
# Images from their original files (`ddjax.data.image_sets`), uint8 NHWC; n_samples and train_fraction do not
# apply: members draw from the official training split and are tested on the official test split.
for _name in IMAGE_SETS:
    register(_name, _image_set(_name), built_in=True)


def dataset_info(name: str) -> DatasetInfo:
    """The table row of data set `name` ("npz:PATH": the file's, read and checked); ConfigError naming the
    allowed names if there is none."""
    if is_npz(name):
        dataset = load_npz(name)
        return arrays_info(dataset, f"the training split of {name} ({describe(dataset)})",
                           lambda config: load_npz(config.dataset), from_files=True)
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}, npz:PATH (an .npz with "
                          f"x_train, y_train, x_test, y_test), or a name given to ddjax.register_dataset")
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
