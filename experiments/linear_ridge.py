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
Runtime:  27 s for the whole command on the 2-core AMD EPYC CPU, quiet.
Result:   every strength matches the limit within 2.1% (lambda = 3) to 5.2% (lambda = 0.1) at every g outside
          [0.8, 1.25] (`theory.matches` true for all 7), and inside that band within 2.1-6.8% for lambda >= 0.01
          (22% at lambda = 0, where the risk diverges). The min-norm risk peaks at n = 263 (g = 0.95; test risk
          4.95, double descent p = 0.001); lambda = 0.01 keeps a peak (1.36, double descent), lambda >= 0.03 none.
          The oracle picks lambda = 3, 1, 1, 0.3 (n <= 300: g >= 0.8), 0.1, then 0.03 (n >= 1250) against the
          theory's optimum s^2 g / r^2 = 0.25 g (0.3 at g = 1); its curve falls from 1.17 (n = 25) through 0.62
          (n = 263) to 0.277 (n = 2500): monotone (rise test p = 1.0, no rise at all), no double descent. The
          validation choice (each seed on its 20% held-out rows) is within 0.04 of the oracle everywhere (0.636 at
          n = 263), also monotone (p = 1.0).
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
