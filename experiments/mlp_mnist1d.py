"""Model-wise double descent of a one-hidden-layer MLP on MNIST-1D with 15% label noise.

Command:  python -m ddjax.run mlp_mnist1d        (smoke test: python -m ddjax.run mlp_mnist1d:smoke)
Runtime:  TBD
Result:   TBD
"""

from ddjax.config import Config, geometric_widths
from ddjax.experiment import variant


def get_config(name: str = "default") -> Config:
    config = Config(
        dataset="mnist1d", n_samples=5000, n_train=(4000,), label_noise=(0.15,),
        width=geometric_widths(1, 512, 15), seed=(0, 1),
        model="mlp", depth=1, optimizer="adam", learning_rate=(1e-3,), batch_size=128, steps=4000,
        loss="cross_entropy", n_evals=20)
    return variant(config, name, smoke=dict(n_samples=600, n_train=(300,), width=(1, 4, 16, 64), steps=60,
                                            batch_size=32, n_evals=5, n_chunks=3))
