"""Model-wise double descent of a one-hidden-layer MLP on MNIST with 20% label noise (Belkin et al. 2019,
Nakkiran et al. 2019 style), read from the cache (`dataset="mnist"`: the original IDX files downloaded to
$DDJAX_DATA on first use, or a copy imported there with `python -m ddjax.data import`).

15 widths 2..1000 (geometric) x 7 seeds, the first 4000 MNIST training images (Belkin et al.'s subset size) with
20% of their labels replaced by a uniformly drawn incorrect class, Adam (learning rate 1e-3, batch 128) for 20000
steps (640 epochs), cross-entropy; test error on the 10000 clean test images. Pixels are standardized per channel
on the device (uint8 stays uint8 in memory).

Command:  python -m ddjax.run mlp_mnist          (variants: mlp_mnist:smoke, mlp_mnist:noise, mlp_mnist:cpu)
Variant:  cpu: one seed, 6000 steps (192 epochs), 12 evaluations: a first look that fits a loaded 2-core CPU.
Data:     real MNIST, imported into the cache from the deeplearning.net pickle (`python -m ddjax.data import
          mnist mnist.pkl.gz`, content sha256 checked; see docs/data.md).
Runtime:  the default, measured on real MNIST on the quiet 2-core Intel Xeon, split into 2 devices (the CLI's
          default), packed layout: 6 min 42 s for the whole command (compile 0.8 s, training 397.7 s); `noise`
          (45 members, one seed), the same machine quiet: 10 min 19 s (training 613.1 s).
          `cpu`, under load from other jobs (load average 7-13): 4 min 35 s (training 267.8 s); the same with
          `--set label_noise=0`: 8 min 26 s (training 485.8 s, the load having risen).
Seeds:    7, the smallest count whose simulated power reaches 90% for the peak the 2-seed run shows (its
          seed-mean curve taken as the truth, the verdict's own noise model; `benchmarks/seed_power.py`,
          benchmarks/seed-power-mlp_mnist.json): 2 seeds 37%, 5 seeds 78%, 7 seeds 92% (67% if the noise is
          redrawn from its 2-seed estimate). The 7-seed default is 3.5x the 2-seed one's work: about 23 min on the
          quiet Intel Xeon projected from the 2-seed time; on the 2-core AMD EPYC under load (a test suite beside
          it) it ran 2.0 steps/s and was stopped at step 2002 of 20000: not yet run to the end. Use `cpu` for a
          first look.
Result:   the 2-seed run on real MNIST (4000 training images, 20% label noise; experiments/results/mlp_mnist/):
          test error 0.339 at width 5 (the under-parameterized minimum) rises to a peak of 0.376 at width 18, the
          interpolation threshold (train error 0.00175), then falls steadily to 0.155 at width 1000 (0.320 at 29,
          0.246 at 70, 0.199 at 169); the two seeds agree within 0.01 from width 5 on. The calibrated verdict
          (with the running-mean statistic) gives p = 0.056 on it: `double_descent: false` at level 0.05, which
          is why the default now has 7 seeds.
          `noise` (one seed; experiments/results/mlp_mnist-noise/): the peak grows with label noise, as in
          Nakkiran et al. (2019): noise 0: no peak, 0.696 (width 2) -> 0.052 (width 642), threshold at width 5,
          `double_descent: false`; 10%: 0.283 (width 5) -> peak 0.298 (width 8, threshold at 12) -> 0.095,
          `true` (p = 0.007); 20%: 0.335 (width 5) -> peak 0.385 (width 12, threshold at 18) -> 0.153, `true`
          (p = 0.001); one seed, so tested only against the test images' binomial noise. Its 10% width-169 member
          is also the one curve here whose test error falls, rises and falls again over training (0.100 at step
          184, 0.152 at 7052, 0.116 at 11876; one seed). Not confirmed with four: `--set label_noise=0.1 --set
          width=109,169,264 --set seed=0,1,2,3` (5 min 37 s, the CPU shared with the test suite) gives width 169's
          seed mean 0.100 (step 184) -> 0.126 (step 7052) -> 0.119 (step 20000), a rise within noise (epoch-wise
          verdict false, p = 0.18); width 109 is U-shaped (+0.026, p = 0.021), width 264 falls and stays.
          `cpu` on real MNIST (4000 training images, 20% label noise, one seed; experiments/results/mlp_mnist-cpu/):
          test error 0.264 at widths 5 and 12 rises to a peak of 0.306 at width 18 (train error 0.076), falls
          through the interpolation threshold at width 45 (train error 0.0015) and on to 0.152 at widths 642 and
          1000; `double_descent: true` (one seed: tested only against the 10000 test images' binomial noise,
          p = 0.001; rises 0.042 above the under-parameterized minimum, 0.153 above the over-parameterized one).
          The peak sits below the threshold (at 40% of it), as in Nakkiran et al.'s (2019) finite-training runs.
          Without label noise (`--set label_noise=0`, experiments/results/mlp_mnist-cpu-noise0/) the curve falls
          monotonically: 0.700 (width 2), 0.103 (width 12, the first with train error 0, from width 8 at 0.008)
          to 0.053 (widths 642, 1000), `double_descent: false`: label noise makes the peak, as Nakkiran et al.
          report (their peak grows with noise). The smoke
          variant runs on tiny files in the real format in the tests.
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
