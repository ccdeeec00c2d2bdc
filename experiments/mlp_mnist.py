"""Model-wise double descent of a one-hidden-layer MLP on MNIST with 20% label noise (Belkin et al. 2019,
Nakkiran et al. 2019 style), read from the original IDX files (`dataset="mnist"`, downloaded to $DDJAX_DATA on
first use).

15 widths 2..1000 (geometric) x 2 seeds, the first 4000 MNIST training images (Belkin et al.'s subset size) with
20% of their labels replaced by a uniformly drawn incorrect class, Adam (learning rate 1e-3, batch 128) for 20000
steps (640 epochs), cross-entropy; test error on the 10000 clean test images. Pixels are standardized per channel
on the device (uint8 stays uint8 in memory).

Command:  python -m ddjax.run mlp_mnist          (variants: mlp_mnist:smoke, mlp_mnist:noise)
Runtime:  projected, not run at full size (these machines have no internet, so no real MNIST): about 30 min on
          the 2-core CPU (AMD EPYC) split into 2 devices (the CLI's default), from 84 ms per training step of all
          30 members (packed, one compile of 2-3 s) and 6.9 s per evaluation of them on the 4000 training and
          10000 test images (21 evaluations), measured on random uint8 images of the real shape (60000 x 28 x 28
          in the real IDX format, in a temporary cache) while other agents loaded the machine, so likely less
          on a quiet one; the inputs were converted to float32 on the host for that measurement (the uint8
          path that standardizes on the device came in a parallel change).
Result:   expected, not measured: the papers report test error falling with width, rising to a peak near the
          width where the noisy training set is first fitted (train error 0), and falling again beyond it;
          Nakkiran et al. (2019) find the peak grows with label noise (the `noise` variant sweeps 0, 10%, 20% in
          one run, one seed). The smoke variant runs on tiny files in the real format in the tests.
"""

from ddjax.config import Config, geometric_widths
from ddjax.experiment import variant


def get_config(name: str = "default") -> Config:
    """15 widths 2..1000 x 2 seeds, 4000 noisy MNIST training images, Adam for 20000 steps of batch 128."""
    config = Config(
        dataset="mnist", n_train=(4000,), label_noise=(0.2,), width=geometric_widths(2, 1000, 15), seed=(0, 1),
        model="mlp", depth=1, optimizer="adam", learning_rate=(1e-3,), batch_size=128, steps=20000,
        loss="cross_entropy", n_evals=20)
    return variant(
        config, name,
        smoke=dict(n_train=(200,), width=(1, 4, 16, 64), steps=60, batch_size=32, n_evals=5, n_chunks=3,
                   n_bootstrap=50),
        noise=dict(label_noise=(0.0, 0.1, 0.2), seed=(0,)),
        # A first look on a 2-core CPU: one seed, 6000 steps (192 epochs), 12 evaluations.
        cpu=dict(seed=(0,), steps=6000, n_evals=12),
    )
