"""Belkin et al. (2019), Fig. 2: random Fourier features on an MNIST subset of n = 10^4, minimum-norm read-out.

N random Fourier features (sqrt(2) cos of Gaussian projections plus uniform phases, 1/sqrt(N) scaling) of the
standardized 784 pixels and a linear read-out (plus bias) fitted to one-hot labels of the first 10^4 MNIST
training images as the minimum-norm least-squares solution, in closed form (`method="min_norm"`, float64), for
16 values of N from 1000 to 60000 (Belkin et al.'s range), dense around N = n; one seed (feature draw); test
error and squared loss on the 10000 test images. curves.npz also holds the read-out's norm (`weight_norm`), and
report.json its peak. Read from the original IDX files (`dataset="mnist"`, downloaded to $DDJAX_DATA).

Command:  python -m ddjax.run random_features_mnist     (smoke test: python -m ddjax.run random_features_mnist:smoke)
Variant:  small: the same at 1/5 scale (n = 2000, N from 200 to 12000), an affordable first look on a CPU.
Variant:  ridge: 6 ridge strengths (0, 1e-6 .. 1e-2; `ridge` axis, one eigendecomposition per member), n_train =
          12500 of which the last 20% are held out for validation, so the read-out fits n = 10^4 as above;
          report.json's `regularization` gives the optimally regularized curve (oracle on the test set, and the
          choice on the validation rows) with its monotone verdict, regularization.png draws every strength.
          Measured at full size: Runtime and Result below.
          ridge_small: the same at 1/8 scale (n_train = 1250, fitting n = 1000, N from 100 to 6000), run on real
          MNIST (python -m ddjax.run random_features_mnist:ridge_small).
          Measured (ridge_small, real MNIST from the deeplearning.net pickle, one
          seed, 2-core Intel Xeon under load average about 12): 235 s wall (compile 31.6 s, solve 189.8 s).
          Min-norm (lambda = 0): test error 0.181 (N = 391) -> peak 0.846 at N = n = 1000 -> 0.094 (N = 6000),
          read-out norm peaking at N = n (1308); double descent (p = 0.001 against the test set's binomial noise,
          one seed). lambda = 1e-6 lowers the peak to 0.297, 1e-5 to a 0.014 bump (0.152 -> 0.166; still double
          descent, p = 0.01), lambda = 1e-4 leaves 0.115 -> 0.121 at N = 1000 (monotone by the test), 1e-3 and
          1e-2 are flat but higher
          (0.12-0.13, 0.19-0.27). The oracle curve (1e-4 almost everywhere, 1e-3 at N = 140-278, 1e-5 at 6000)
          falls from 0.221 to 0.092 with a 0.006 bump at N = 1000: monotone (rise test p = 0.30), no double
          descent (p = 0.29). The validation choice (250 held-out images, one seed) picks 1e-3 at N = 900 and 1000
          and leaves a 0.0125 rise there (0.1216 -> 0.1309): not monotone (p = 0.015), double descent p = 0.014;
          both tested only against binomial test noise (one seed), a lower bound of the noise.
Data:     real MNIST, imported into the cache from the deeplearning.net pickle (`python -m ddjax.data import
          mnist mnist.pkl.gz`, content sha256 checked; see docs/data.md).
Runtime:  `small`, measured on real MNIST: 3 min 3 s for the whole command (compile 12.2 s, solve 164.9 s) on the
          2-core Intel Xeon, under load from other jobs (load average 5-8). The full size is solved in stages over
          one common draw (docs/random_features_scale.md): on real MNIST on the 2-core AMD EPYC under load from
          other jobs (load average 6-9), the default's 16 stages took 35.7 min (2145 s, summed over three processes
          that each resumed the last one's checkpoint), `ridge` 49.4 min (2965 s, one process, peak RSS 6.9 GB);
          targets 20 and 30 min: missed under that load; not yet timed on a quiet machine. Both ran through
          `benchmarks/random_features_scale.py`, which drives the stages the closed-form layout runs, not
          through this command; the memory plan keeps a stage within half the host's RAM (5.97 GiB at N = 9000).
Result:   full size (n = 10^4, one draw; benchmarks/random-features-scale-min-norm-cpu.json): test error 0.0645
          (N = 1000) falls to 0.0486 (N = 3915, the under-parameterized minimum), rises to a peak of 0.849 at
          N = n = 10^4 (0.235 at N = 9000, 0.220 at 10896), then falls to 0.0320 at N = 60000, below the
          under-parameterized minimum: Belkin et al.'s (2019) Fig. 2. `ridge` (benchmarks/random-features-scale-
          ridge-cpu.json): lambda = 0 gives the same curve; lambda >= 1e-6 removes the peak (1e-6: 0.0382 at
          N = n, 0.0312 at 60000). `small` on real MNIST (n = 2000; experiments/results/random_features_mnist-small/):
          0.121 (N = 783) -> peak 0.847 at N = n -> 0.067 at N = 12000; the test loss and the read-out's norm peak
          at N = n too; `double_descent: true` (one seed: p = 0.001 against the test images' binomial noise).
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
