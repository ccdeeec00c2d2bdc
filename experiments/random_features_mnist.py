"""Belkin et al. (2019), Fig. 2: random Fourier features on an MNIST subset of n = 10^4, minimum-norm read-out.

N random Fourier features (sqrt(2) cos of Gaussian projections plus uniform phases, 1/sqrt(N) scaling) of the
standardized 784 pixels and a linear read-out (plus bias) fitted to one-hot labels of the first 10^4 MNIST
training images as the minimum-norm least-squares solution, in closed form (`method="min_norm"`, float64), for
16 values of N from 1000 to 60000 (Belkin et al.'s range), dense around N = n; one seed (feature draw); test
error and squared loss on the 10000 test images. curves.npz also holds the read-out's norm (`weight_norm`), and
report.json its peak. Read from the original IDX files (`dataset="mnist"`, downloaded to $DDJAX_DATA).

Command:  python -m ddjax.run random_features_mnist     (smoke test: python -m ddjax.run random_features_mnist:smoke)
Variant:  small: the same at 1/5 scale (n = 2000, N from 200 to 12000), an affordable first look on a CPU.
Runtime:  projected, not run at full size (these machines have no internet, so no real MNIST): about 5 h on the
          2-core CPU (AMD EPYC). Measured on random uint8 images of MNIST's shape (in the real IDX format, in a
          temporary cache), under load from other agents: the `small` variant solved in 291 s (compile 16 s;
          n = 1000, N 100..6000: 100 s). Counting flops (features of the training and test images, the Gram
          matrix of the smaller side, its eigendecomposition, members padded to their group's width), the full
          size does 1.7e14, 65x the small variant's 2.6e12, so about 19000 s; the same count predicts 3.4x from
          n = 1000 to 2000 where 2.9x was measured, so it may overestimate. Memory: the widest group's members
          (N = 60000) hold float64 features of the 10^4 training and the 10^4 test images, 4.8 GB each.
Result:   expected, not measured: Belkin et al. report that the test error (zero-one and squared loss) and the
          read-out's norm both peak at N = n = 10^4 and fall again beyond it, the test error at large N dropping
          below its under-parameterized minimum; train error reaches 0 at N = n. On the random images above
          (random labels, so test error 0.9 throughout) the read-out norm already peaks at N = n: 2461 at
          N = n = 2000 against 191 at N = 1800 and 245 at N = 2179 (n = 1000: 1283 against 131 and 159).
          The smoke variant runs on tiny files in the real format in the tests.
"""

from ddjax.config import Config, geometric_widths
from ddjax.experiment import variant

N_TRAIN = 10_000
RIDGE = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
# The ridge variants hold out the last 20% of n_train for validation and fit the first N_TRAIN (the peak's n).
RIDGE_VARIANT = dict(n_train=(N_TRAIN * 5 // 4,), ridge=RIDGE, validation_fraction=0.2)


def get_config(name: str = "default") -> Config:
    config = Config(
        dataset="mnist", n_train=(N_TRAIN,),
        width=tuple(sorted({*geometric_widths(1000, 60000, 13), 9000, N_TRAIN, 12000})), seed=(0,),
        model="random_fourier_features", method="min_norm", loss="squared", batch_size=0)
    return variant(
        config, name,
        small=dict(n_train=(N_TRAIN // 5,), width=tuple(w // 5 for w in config.width)),
        smoke=dict(n_train=(100,), width=(10, 30, 60, 100, 170, 300, 1000), seed=(0, 1), n_bootstrap=50),
        ridge=RIDGE_VARIANT,
        ridge_small={**RIDGE_VARIANT, "n_train": (N_TRAIN // 8,), "width": tuple(w // 10 for w in config.width)})
