"""Model-wise double descent of a one-hidden-layer MLP on real MNIST with 20% label noise (Belkin et al. 2019,
Nakkiran et al. 2019 style), read from the cache (`dataset="mnist"`: downloaded to $DDJAX_DATA on first use, or
imported with `python -m ddjax.data import`).

15 widths 2..1000 (geometric) x 7 seeds, the first 4000 MNIST training images with 20% of their labels replaced
by a uniformly drawn incorrect class, Adam (1e-3, batch 128) for 20000 steps (640 epochs), cross-entropy; test
error on the 10000 clean test images. 7 seeds: the smallest count with 90% power for the 2-seed run's peak
(benchmarks/seed_power.py: 37% with 2 seeds, 78% with 5, 92% with 7).

Command:  python -m ddjax.run mlp_mnist     (variants: mlp_mnist:cpu, mlp_mnist:noise, mlp_mnist:smoke)
Variant:  cpu: one seed, 6000 steps, 12 evaluations; noise: label noise 0, 10%, 20% in one run, one seed.
Runtime:  7 seeds: 67 min 26 s for the whole command (2-core AMD EPYC CPU, test suites beside it about half of
          the time): past 15 min, hence `cpu` (4 min 35 s under load).
Result:   7 seeds (experiments/results/mlp_mnist/): test error 0.341 at width 5 rises to 0.370 at widths 12-18,
          then falls to 0.156 at width 1000; `double_descent: false` (p = 0.21): the 0.029 rise is within the
          seeds' noise. The 2-seed run (experiments/results/mlp_mnist-2seeds/): 0.339 -> peak 0.376 (width 18,
          the threshold) -> 0.155, p = 0.056, whose simulated 92% power at 7 seeds this run does not bear out.
          `cpu` (one seed): 0.264 -> peak 0.306 (width 18) -> 0.152, true (p = 0.001 against the test set's
          binomial noise); without label noise the curve falls monotonically. `noise`: the peak grows with noise
          (none at 0, p = 0.007 at 10%, p = 0.001 at 20%). Details: docs/experiments.md.
"""

from ddjax.config import Config, geometric_widths
from ddjax.experiment import variant


def get_config(name: str = "default") -> Config:
    """15 widths 2..1000 x 7 seeds, 4000 noisy MNIST training images, Adam for 20000 steps of batch 128."""
    config = Config(
        dataset="mnist", n_train=(4000,), label_noise=(0.2,), width=geometric_widths(2, 1000, 15),
        seed=tuple(range(7)),
        model="mlp", depth=1, optimizer="adam", learning_rate=(1e-3,), batch_size=128, steps=20000,
        loss="cross_entropy", n_evals=20)
    return variant(
        config, name,
        smoke=dict(n_train=(200,), width=(1, 4, 16, 64), seed=(0, 1), steps=60, batch_size=32, n_evals=5,
                   n_chunks=3, n_bootstrap=50),
        noise=dict(label_noise=(0.0, 0.1, 0.2), seed=(0,)),
        # A first look on a 2-core CPU: one seed, 6000 steps (192 epochs), 12 evaluations.
        cpu=dict(seed=(0,), steps=6000, n_evals=12),
    )
