"""How the equivalence tests compare a fast path (a layout, a device split, a resumed run) with the plain serial
computation of the same members, so that the comparison holds on any CPU, thread count and jax version.

Two regimes, chosen per test from the physics of the check:

- **One step** (a gradient, one update, one batch's logits or BatchNorm statistics): float32, tightly. Nothing
  has amplified the reassociation of float sums (another CPU's vector width, another layout's order), which is a
  few ulps, ~1e-7 relative.
- **Training runs**: float64 (`precision="float64"` under `jax.enable_x64`, the `x64` fixture). Training amplifies
  reassociation: in float32, Adam runs of these tiny nets were seen 8.6% apart after 40 steps on another CPU (from
  ~1e-7, an amplification of ~1e6). In float64 reassociation is ~1e-16, so even that amplification leaves ~1e-10,
  three orders below `RTOL`, on any CPU.

Error curves count argmax decisions. An exact tie (an example whose units are all inactive, equal logits) is
decided by the last bit, in float64 too, so one example may differ; any more is a real difference.
"""

import numpy as np

RTOL = 1e-7  # Losses and parameters of float64 runs; see the module docstring.
ATOL = 1e-9


def assert_close(got, want, err_msg: str = "") -> None:
    """Losses or parameters of a float64 training run against the serial member's."""
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=err_msg)


def assert_same_errors(got, want, n_examples, err_msg: str = "") -> None:
    """Error curves (fractions of `n_examples`, a scalar or an array broadcasting against them): at most one
    example apart at any evaluation (an exact argmax tie)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    difference = np.where(np.isnan(got) & np.isnan(want), 0.0, np.abs(got - want) * np.asarray(n_examples))
    assert np.all(np.nan_to_num(difference, nan=np.inf) <= 1.01), f"{err_msg}: {difference.max()} examples apart"


def assert_same_curves(got: dict, want: dict, n_train, n_test: int) -> None:
    """Every curve of a float64 run (dicts name -> [.., eval_step]) against the serial one's."""
    for name in ("train_loss", "test_loss"):
        assert_close(got[name], want[name], err_msg=name)
    assert_same_errors(got["train_error"], want["train_error"], n_train, "train_error")
    assert_same_errors(got["test_error"], want["test_error"], n_test, "test_error")
