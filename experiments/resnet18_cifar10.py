"""Nakkiran et al. (2019) Fig. 1: model-wise double descent of preactivation ResNet18s of width k on CIFAR-10.

k = 1..64 (stage widths k, 2k, 4k, 8k; k = 64 is the standard 11.2 M-parameter network) x 5 seeds = 320
members, all 50000 training images with 15% of their labels replaced by an incorrect class, random crop (4-pixel
padding) and left-right flip, Adam lr 1e-4, batch 128, 4000 epochs (1,564,000 steps, epochs of fresh
permutations), cross-entropy; test error on the 10000 clean test images. ONE resumable sweep: every member in one
compiled program (width groups each padded to its own widest member), checkpointed at every chunk
(`python -m ddjax.run --resume DIR` continues it). Each member's BatchNorm statistics come only from its own
batches (`ddjax.models.stateful`).

Command:  python -m ddjax.run resnet18_cifar10 --out runs/fig1     (smoke test: resnet18_cifar10:smoke)
Hardware: accelerators: far beyond a CPU (see the projection), and beyond one GPU's memory for all 320 members
          at once (activations of the whole grid at batch 128: roughly 160 k=64 networks' worth); run it on
          several devices (the member axis is split over the local devices) or a subset of widths per run.
Runtime:  projected, not measured: about 440 years on the 2-core AMD EPYC, about 5.3 days on an H100 (assumed
          160 TFLOP/s).
Result:   expected, not measured: Nakkiran et al. report test error falling with k, peaking near k = 10-12 where the
          15%-noisy training set is first fitted, then falling again to the lowest error at k = 64.
"""

from ddjax.config import Config
from ddjax.experiment import variant


def get_config(name: str = "default") -> Config:
    """Fig. 1: k = 1..64 x 5 seeds, 15% noise, Adam 1e-4, batch 128, augmentation, 4000 epochs; `smoke` for tests."""
    config = Config(
        dataset="cifar10", n_train=(50000,), label_noise=(0.15,), width=tuple(range(1, 65)), seed=(0, 1, 2, 3, 4),
        model="resnet18", optimizer="adam", learning_rate=(1e-4,), batch_size=128, augment=True, sampling="epoch",
        epochs=4000, loss="cross_entropy", n_evals=30, n_chunks=400)
    return variant(
        config, name,
        smoke=dict(n_train=(60,), width=(1, 2), seed=(0,), batch_size=30, epochs=1, n_evals=2, n_chunks=2,
                   n_bootstrap=0),
    )
