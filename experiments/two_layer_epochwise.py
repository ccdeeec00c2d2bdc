"""Epoch-wise double descent in a two-layer ReLU network, explained and removed by per-layer step sizes.

Heckel & Yilmaz (2021): epoch-wise double descent is a superposition of bias-variance tradeoffs of network parts
that learn at different times. A one-hidden-layer ReLU MLP (widths 256, 1024; paired units, so it starts at 0;
read-out initialized 10 x LeCun) is trained by full-batch gradient descent on 100 points of the circle with 8
regression outputs, sqrt(2) [1.5 cos(phi - psi_c) + cos 3 (phi - psi_c)], plus noise of variance 8
(`ddjax.data.circle`). The read-out learns the linear part fast, then fits noise in even harmonics; only the
first layer's biases reach the odd harmonic cos 3 phi. With the first layer 21 x slower (learning_rate 2.05e-4 on
it, layer_rate 21 on the read-out, rho = 0.01 of the matched ratio), the test risk falls, rises, falls again.
`:matched` uses the ratio that gives both layers the same largest eigenvalue of step x kernel at initialization,
eta1 / eta2 = lambda_max(K2) / lambda_max(K1) = 4.8 (`ddjax.solvers.two_layer.matched_ratio`, median of 5 seeds).
Each member's linearized risk over training is overlaid in closed form (`theory=linearized`). docs/epochwise.md.

Command:  python -m ddjax.run two_layer_epochwise   (python -m ddjax.run two_layer_epochwise:matched; power: 50
          seeds at width 1024; smoke test: python -m ddjax.run two_layer_epochwise:smoke)
Runtime:  33 s for the whole command (compile 2.5 s, training 16.9 s, the closed forms the rest), `:matched` 34 s;
          2-core AMD EPYC, quiet.
Result:   (experiments/results/two_layer_epochwise/, -matched/; seed means of 5 seeds). Width 1024: the test risk
          falls to 1.275 (step 3), rises 0.142 to 1.418 (step 44), falls 0.438 to 0.979 (step 3070), then rises
          to 1.296: epoch-wise double descent, p = 0.004. Its closed form: 1.269 (3), 1.418 (44), 1.054 (3888),
          1.268. Width 256: a rise of 0.083 on the way down, verdict false, though its closed form shows the
          shape. `:matched`: U-shaped at both widths (0.717 at step 89 at width 1024, 0.765 at 256), no
          epoch-wise double descent, and early-stopped risk lower: 0.717 against 0.979 (1024), 0.765 against
          0.875 (256). Agreement with the closed form (largest relative deviation of the seed mean over all
          steps): default 0.148 at width 256, 0.085 at 1024 (0.017 at 4096 in benchmarks/epochwise_regime.py,
          roughly 1/width); matched 0.041 up to its early-stopping step at 1024, 0.655 over all steps (the
          trained network later overfits far less than the linearization predicts). Power (`:power`, 50 seeds
          at width 1024 cut into 10 groups of 5, benchmarks/seed_groups.py): POWER_RESULT.
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
        smoke=dict(width=(64,), seed=(0, 1), steps=300, n_evals=8),
    )
