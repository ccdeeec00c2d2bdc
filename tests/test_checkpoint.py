"""The checkpoint file: exact round trips of any pytree, signature checks, and corruption refused cleanly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import Config, ConfigError, to_dict
from ddjax.runs import checkpoint
from ddjax.runs.files import CHECKPOINT_FILE

CONFIG = to_dict(Config())


def _state():
    return {"params": [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([np.nan, -0.0, np.inf], np.float32)],
            "count": np.int32(7), "seed": np.array([1, 2], np.uint32), "empty": np.zeros((0, 4), np.float32),
            "half": jnp.array([1.5, -2.25], jnp.bfloat16)}


def _template(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


def test_round_trip_is_exact_for_any_dtype(tmp_path):
    state = _state()
    checkpoint.save_checkpoint(tmp_path, 12, state, config=CONFIG, elapsed_seconds=3.5)
    saved = checkpoint.load_checkpoint(tmp_path)
    assert (saved.step, saved.config, saved.elapsed_seconds) == (12, CONFIG, 3.5)
    restored = checkpoint.restore_state(saved, _template(state))
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
        assert a.dtype == b.dtype and a.shape == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()  # Bit for bit, NaN and -0.0 included.
    assert not (tmp_path / "checkpoint.npz.tmp").exists()


def test_missing_checkpoint_is_none(tmp_path):
    assert checkpoint.load_checkpoint(tmp_path) is None


@pytest.mark.parametrize("change, fragment", [
    (lambda s: {**s, "count": np.int64(7)}, "state leaf 0 is [[], 'int64'], expected [[], 'int32']"),
    (lambda s: {**s, "seed": np.array([1, 2, 3], np.uint32)}, "[[3], 'uint32'], expected [[2], 'uint32']"),
    (lambda s: {**s, "extra": np.zeros(1)}, "another tree structure"),
])
def test_state_of_another_shape_or_structure_is_refused(tmp_path, change, fragment):
    state = _state()
    checkpoint.save_checkpoint(tmp_path, 1, change(state), config=CONFIG)
    with pytest.raises(ConfigError, match="does not match this trainer's state") as error:
        checkpoint.restore_state(checkpoint.load_checkpoint(tmp_path), _template(state))
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupt_or_truncated_checkpoint_is_refused(tmp_path, damage):
    checkpoint.save_checkpoint(tmp_path, 5, _state(), config=CONFIG)
    path = tmp_path / CHECKPOINT_FILE
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0xFF  # Inside a stored member: its CRC no longer matches.
    elif damage == "empty":
        data = b""
    else:
        data = b"not a zip file at all"
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="is corrupt or truncated") as error:
        checkpoint.load_checkpoint(tmp_path)
    assert "\n" not in str(error.value) and "delete it to restart" in str(error.value)


def test_partial_write_leaves_the_previous_checkpoint_intact(tmp_path):
    checkpoint.save_checkpoint(tmp_path, 4, _state(), config=CONFIG)
    (tmp_path / "checkpoint.npz.tmp").write_bytes(b"PK\x03\x04 half of a newer checkpoint")
    assert checkpoint.load_checkpoint(tmp_path).step == 4
    checkpoint.discard_partial_write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_checkpoint_of_another_config_is_refused(tmp_path):
    checkpoint.save_checkpoint(tmp_path, 4, _state(), config={**CONFIG, "steps": 7, "width": [3]})
    with pytest.raises(ConfigError, match=r"another config \(differing keys: width, steps\)"):
        checkpoint.check_config(checkpoint.load_checkpoint(tmp_path), CONFIG)


def test_npz_files_are_reproducible_byte_for_byte(tmp_path):
    arrays = {"a": np.arange(5.0), "b": np.array([[1, 2]], np.int32)}
    checkpoint.write_npz(tmp_path / "one.npz", arrays)
    checkpoint.write_npz(tmp_path / "two.npz", dict(arrays))
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    loaded = np.load(tmp_path / "one.npz")
    assert sorted(loaded.files) == ["a", "b"] and np.array_equal(loaded["b"], arrays["b"])


@pytest.mark.parametrize("old", [1, 2])  # Before the layouts shared one optimizer state; before the one engine.
def test_a_checkpoint_of_another_format_is_refused_naming_it(tmp_path, monkeypatch, old):
    monkeypatch.setattr(checkpoint, "FORMAT", old)
    checkpoint.save_checkpoint(tmp_path, 3, _state(), config=to_dict(Config()))
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=f"has format {old}, and this version of ddjax reads format 3 only"):
        checkpoint.load_checkpoint(tmp_path)
