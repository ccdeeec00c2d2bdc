"""Epoch-wise double descent (Nakkiran et al. 2019, Fig. 2 style): test error over (width, training step).

One run trains six one-hidden-layer MLPs, widths 16 to 2048 (below, at and above the width that interpolates
30% label noise within the budget), on 4000 MNIST-1D samples with Adam for 40000 steps, evaluated at 40
log-spaced steps on 4000 test samples (a large test split: the effect is a few percentage points).
epochwise.png is the heatmap of test error over (width, step) with each width's peak step marked, beside the
curves of the smallest, the threshold and the largest width; report.json lists per width the peak step and
the epoch-wise decision (`epochwise`).

Command:  python -m ddjax.run mlp_mnist1d_epochwise    (smoke test: python -m ddjax.run mlp_mnist1d_epochwise:smoke)
Runtime:  3 min 17 s wall (compile 15 s) on the shared 2-core CPU (load ~5, so noisy; 5 min 22 s in a busier
          earlier run of the same config, with identical curves).
Result:   no epoch-wise double descent by the rule (0 of 6 widths): after the initial descent, widths 111 and
          294 overfit for good (294: 0.556 at step 2014, 0.625 at step 17703 as its train error reaches 0, 0.622
          at the end); the wider nets rise and fall again, but by less than the 0.02 the rule asks: width 776
          0.570 -> 0.616 (step 10281) -> 0.603, width 2048 0.587 -> 0.599 (step 2643) -> 0.573. At the last step
          the widths show model-wise double descent: 0.505 (16), peak 0.624 (111), 0.573 (2048), one seed.
"""

from ddjax.config import Config, geometric_widths
from ddjax.experiment import variant


def get_config(name: str = "default") -> Config:
    config = Config(
        dataset="mnist1d", n_samples=8000, train_fraction=0.5, n_train=(4000,), label_noise=(0.3,),
        width=geometric_widths(16, 2048, 6), seed=(0,), model="mlp", depth=1, optimizer="adam",
        learning_rate=(1e-3,), batch_size=64, steps=40000, loss="cross_entropy", n_evals=40)
    return variant(config, name, smoke=dict(n_samples=600, train_fraction=0.8, n_train=(300,), width=(4, 16, 64),
                                            steps=60, batch_size=32, n_evals=8, n_chunks=3))
