"""The benchmarks' PyTorch peer: each member built and trained alone in a plain eager loop, one after another, as
the MNIST-1D notebook does. Imported only where torch imports; torch is never a ddjax dependency."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch


def evaluation_steps(steps: int, n_evals: int) -> set[int]:
    """The steps (1-based) after which the loop evaluates: ddjax's log-spaced evaluation points."""
    return set(np.unique(np.round(np.geomspace(1, steps, n_evals))).astype(int).tolist())


def mlp(input_dim: int, width: int, depth: int, n_classes: int) -> torch.nn.Module:
    """A ReLU MLP of `depth` hidden layers of `width` units."""
    layers = [torch.nn.Linear(input_dim, width), torch.nn.ReLU()]
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, n_classes))


def random_batches(n: int, batch_size: int, steps: int, device: str = "cpu") -> Iterator[torch.Tensor]:
    """Batches drawn uniformly with replacement."""
    for _ in range(steps):
        yield torch.randint(0, n, (batch_size,), device=device)


def epoch_batches(n: int, batch_size: int, steps: int) -> Iterator[torch.Tensor]:
    """Consecutive batches of a fresh permutation each epoch (the last batch of an epoch may be partial)."""
    order, position = torch.randperm(n), 0
    for _ in range(steps):
        if position >= n:
            order, position = torch.randperm(n), 0
        yield order[position:position + batch_size]
        position += batch_size


def train_alone(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator[torch.Tensor],
                data: tuple[torch.Tensor, ...], eval_at: set[int]) -> float:
    """Trains `model` with cross-entropy on each batch of indices into the training rows in turn, evaluating on
    the training and test rows after every step in `eval_at`; returns the last test error."""
    x, y, x_test, y_test = data
    test_error = float("nan")
    for step, index in enumerate(batches, start=1):
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step in eval_at:
            with torch.no_grad():
                test_error = float((model(x_test).argmax(1) != y_test).float().mean())
                float((model(x).argmax(1) != y).float().mean())
    return test_error
