"""Nakkiran et al. (2019): model-wise double descent of their 5-layer CNN of width k on CIFAR-10.

Four conv3x3 - BatchNorm - ReLU layers of k, 2k, 4k, 8k channels with max-pooling, then a linear layer
(`ddjax.models.conv`, family `cnn5`); k = 1..64 x 5 seeds = 320 members, all 50000 training images with 20% of
their labels replaced by an incorrect class, random crop (4-pixel padding) and flip, batch 128,
cross-entropy; ONE resumable sweep in one compiled program (width groups), checkpointed at every chunk. Each
member's BatchNorm statistics come only from its own batches.

Optimizer: the paper's SGD run: plain SGD (no momentum) at 0.1 / sqrt(1 + step // 512) (`lr_schedule=inverse_sqrt`,
`lr_schedule_steps=512`) for 500K gradient steps of batch 128 (epochs of shuffled data, about 1279 of them). The
paper's other optimizer, Adam at 1e-4 for 4000 epochs, is the variant `adam`.

Command:  python -m ddjax.run cnn5_cifar10 --out runs/cnn5     (Adam: cnn5_cifar10:adam; smoke test: cnn5_cifar10:smoke)
Hardware: accelerators (see the projection); one GPU holds the grid's activations (roughly 40 k=64 networks'
          worth at batch 128, each far smaller than a ResNet18).
Runtime:  projected, not measured: about 25 years on the 2-core AMD EPYC CPU, about 17 hours on an H100 (assumed
          160 TFLOP/s).
Result:   expected, not measured: Nakkiran et al. report the CNN's test error peaking near the k where the noisy
          training set is first fitted, then falling again as k grows.
"""

from ddjax.config import Config
from ddjax.experiment import variant


def get_config(name: str = "default") -> Config:
    """k = 1..64 x 5 seeds, 20% noise, SGD 0.1 / sqrt(1 + step // 512), batch 128, augmentation, 500K steps;
    `adam`: Adam 1e-4 for 4000 epochs; `smoke` for tests."""
    config = Config(
        dataset="cifar10", n_train=(50000,), label_noise=(0.2,), width=tuple(range(1, 65)), seed=(0, 1, 2, 3, 4),
        model="cnn5", optimizer="sgd", learning_rate=(0.1,), lr_schedule="inverse_sqrt", lr_schedule_steps=512,
        batch_size=128, augment=True, sampling="epoch", steps=500_000, loss="cross_entropy", n_evals=30,
        n_chunks=400)
    return variant(
        config, name,
        adam=dict(optimizer="adam", learning_rate=(1e-4,), lr_schedule="constant", steps=4000 * 391, epochs=4000),
        smoke=dict(n_train=(60,), width=(1, 2), seed=(0,), batch_size=30, steps=2, lr_schedule_steps=1, n_evals=2,
                   n_chunks=2, n_bootstrap=0),
    )
