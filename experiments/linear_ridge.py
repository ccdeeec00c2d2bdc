"""Optimal ridge removes the sample-wise peak of least squares on isotropic Gaussian data, against its closed form.

The setting of `linear_samplewise` (x ~ N(0, I_p), p = 200, y = x.b + noise, |b|^2 = 1, noise variance 0.25, the
training-set size swept so that g = p/n runs from 0.1 to 10) with 7 ridge strengths lambda (0, the minimum-norm
solution, to 3; the estimator minimizes (1/n) |y - X b|^2 + lambda |b|^2) and 10 seeds. Each member holds out the
last 20% of its n examples for validation (`validation_fraction=0.2`) and fits the first 80%, so g is p over the
fitted rows and the min-norm peak sits at n = 250. Every strength of a member comes from one eigendecomposition.
report.json compares each strength's excess risk with the limit of Hastie, Montanari, Rosset and Tibshirani
(2019, Thm. 5; Thm. 1 at lambda = 0) and lists the optimally regularized curve chosen two ways (`regularization`:
the oracle on the test risk, and each seed's choice on its validation rows), each with the calibrated monotone
verdict; regularization.png draws every strength's curve, the theory dotted, and the two optimal curves on top.

Command:  python -m ddjax.run linear_ridge          (smoke test: python -m ddjax.run linear_ridge:smoke)
Runtime:  RUNTIME
Result:   RESULT
"""

from ddjax.config import Config
from ddjax.experiment import variant

GAMMAS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.5, 2, 3, 5, 10)
VALIDATION_FRACTION = 0.2


def samples_for(p: int, gammas: tuple[float, ...]) -> tuple[int, ...]:
    """Training-set sizes n whose fitted rows (1 - VALIDATION_FRACTION) n give g = p / fitted rows, ascending."""
    return tuple(sorted({round(p / g / (1 - VALIDATION_FRACTION)) for g in gammas}))


def get_config(name: str = "default") -> Config:
    config = Config(
        dataset="gaussian_regression", model="linear", method="min_norm", loss="squared", batch_size=0,
        signal_norm_sq=1.0, noise_var=0.25, width=(200,), n_train=samples_for(200, GAMMAS), seed=tuple(range(10)),
        ridge=(0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0), validation_fraction=VALIDATION_FRACTION)
    return variant(config, name, smoke=dict(width=(30,), n_train=samples_for(30, (0.25, 0.5, 0.9, 1.1, 2, 4)),
                                            seed=tuple(range(4)), ridge=(0.0, 0.1, 1.0), n_bootstrap=0))
