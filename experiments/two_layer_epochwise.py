"""Epoch-wise double descent in a two-layer ReLU network, explained and removed by per-layer step sizes.

Heckel & Yilmaz (2021): epoch-wise double descent superposes the bias-variance tradeoffs of network parts that
learn at different times. A one-hidden-layer ReLU MLP (widths 256, 1024; paired units, so it starts at 0; read-out
at 10 x LeCun) learns by full-batch gradient descent 100 points of the circle with 8 regression outputs,
sqrt(2) [1.5 cos(phi - psi_c) + cos 3 (phi - psi_c)] plus noise of variance 8 (`ddjax.data.circle`). The
read-out fits the linear part fast, then noise in even harmonics; only the first layer's biases reach cos 3 phi.
Default: the first layer 21 x slower (rho = 0.01 of the matched ratio). `:matched`: eta1 / eta2 = lambda_max(K2)
/ lambda_max(K1) = 4.8 at initialization (`ddjax.solvers.two_layer.matched_ratio`, median of 5 seeds). Each
member's linearized risk over training is overlaid in closed form (`theory=linearized`). docs/epochwise.md.

Command:  python -m ddjax.run two_layer_epochwise   (variants: matched, power, power_matched, smoke)
Runtime:  33 s (`:matched` 34 s, `:power` 2 min 49 s), 2-core AMD EPYC CPU, quiet.
Result:   seed means of 5 seeds (experiments/results/two_layer_epochwise/, -matched/). Width 1024: the test risk
          falls to 1.275 (step 3), rises 0.142 to 1.418 (step 44), falls 0.438 to 0.979 (step 3070), then rises
          to 1.296: epoch-wise double descent, p = 0.004; closed form 1.269, 1.418, 1.054 (step 3888), 1.268.
          Width 256: U-shaped, verdict false (its closed form shows the shape). `:matched`: U-shaped at both
          widths, and lower when early-stopped: 0.717 against 0.979 (1024), 0.765 against 0.875 (256).
          Agreement (largest relative deviation of the seed mean from the closed form): default 0.148 at width
          256, 0.085 at 1024 (0.017 at 4096 in benchmarks/epochwise_regime.py); matched 0.041 up to its
          early-stopping step at 1024, 0.655 over all steps (it later overfits far less than the linearization).
          Power (`:power`, 50 seeds at width 1024 in 10 groups of 5, benchmarks/seed_groups.py): true in 7 of 10
          groups (4 of 5 groups of 10); `:power_matched`: 0 of 10
          (every group U-shaped).
"""

from ddjax.config import Config
from ddjax.experiment import variant

# Steps measured from the initial kernels (`ddjax.solvers.two_layer.matched_ratio`, `stable_steps` at 0.9 of the
# stable rate; width 1024, seeds 0-4, medians): the first layer's step and the read-out's relative to it.
MISMATCHED = dict(learning_rate=(2.05e-4,), layer_rate=(21.0,))  # rho = 0.01: eta1 / eta2 = 0.048.
MATCHED = dict(learning_rate=(1.04e-2,), layer_rate=(0.207,))  # rho = 1: eta1 / eta2 = 4.8.


def get_config(name: str = "default") -> Config:
    """Widths 256 and 1024 x 5 seeds, 10000 full-batch steps, the theory overlaid."""
    config = Config(
        dataset="circle", n_classes=8, n_samples=128, n_train=(100,), target_noise=(8 ** 0.5,), model="mlp",
        depth=1, init="paired", layer_group="out/*", layer_init_scale=(10.0,), width=(256, 1024),
        seed=tuple(range(5)), optimizer="sgd", batch_size=0, loss="mse", steps=10000, n_evals=40,
        theory="linearized", n_bootstrap=0, **MISMATCHED)
    return variant(
        config, name,
        matched=MATCHED,
        power=dict(width=(1024,), seed=tuple(range(50))),
        power_matched=dict(**MATCHED, width=(1024,), seed=tuple(range(50))),
        smoke=dict(width=(64,), seed=(0, 1), steps=300, n_evals=8),
    )
