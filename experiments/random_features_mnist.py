"""Belkin et al. (2019), Fig. 2: random Fourier features on n = 10^4 images of real MNIST, minimum-norm read-out.

N random Fourier features (sqrt(2) cos of Gaussian projections plus uniform phases, 1/sqrt(N) scaling) of the
standardized pixels, a linear read-out fitted to one-hot labels in closed form (float64), for 16 values of N from
1000 to 60000, dense around N = n; one seed. Every N's features are a prefix of one draw (common random numbers;
`feature_draw=independent` for separate draws), solved in stages over N, checkpointed after each stage
(docs/random_features_scale.md).

Command:  python -m ddjax.run random_features_mnist     (variants: small, ridge, ridge_small; a check:
          random_features_mnist:smoke)
Variant:  small: n = 2000, N from 200 to 12000. ridge: 6 ridge strengths 0, 1e-6 .. 1e-2 and a 20% validation
          split (n_train = 12500, fitting 10^4). ridge_small: the same at n = 1000.
Runtime:  17 min 13 s for the whole command (peak RSS 5.9 GiB), `ridge` 19 min 37 s (6.5 GiB), 2-core AMD EPYC CPU
          with a one-core job beside it part of the time; small 32 s, ridge_small 23 s (quiet).
Result:   full size (experiments/results/random_features_mnist/): test error 0.0645 (N = 1000) falls to 0.0486
          (N = 3915, the under-parameterized minimum), peaks at 0.849 at N = n, then falls to 0.0320 at N = 60000,
          below that minimum: Belkin et al.'s Fig. 2; `double_descent: true` (p = 0.001, one seed). `ridge`:
          lambda = 0 gives the same curve, lambda >= 1e-6 removes the peak (0.0382 at N = n); the optimally
          regularized curve is monotone (oracle p = 0.96, validation p = 0.93).
          `small` (experiments/results/random_features_mnist-small/): 0.125 (N = 556) -> peak 0.851 at N = n
          -> 0.065 at N = 12000; true (p = 0.001 against the test images' binomial noise). ridge_small (fits
          1000 rows; experiments/results/random_features_mnist-ridge_small/): min-norm peak 0.858 at N = n = 1000;
          the optimally regularized curve, by the oracle and by validation, is monotone (p = 1). Details:
          docs/experiments.md.
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
