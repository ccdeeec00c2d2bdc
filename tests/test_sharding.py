"""The member axis split over several devices, against serial training of the same members."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from ddjax.training.packed.layout import parts_per_stream
from ddjax.training.sharding import leading_size, member_mesh, pad_members, padded_size, unpad
from ddjax.training.spec import CURVES
from reference import assert_same_curves

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_few_streams_are_cut_into_parts_that_fill_the_devices():
    assert [parts_per_stream(n, 1) for n in (1, 5)] == [1, 1]
    assert [parts_per_stream(n, 2) for n in (1, 2, 3)] == [2, 1, 1]
    assert [parts_per_stream(n, 8) for n in (1, 2, 3, 6, 8)] == [8, 4, 8, 4, 1]


def test_padded_size_rounds_up_to_whole_devices():
    assert [padded_size(n, 4) for n in (1, 4, 5, 8)] == [4, 4, 8, 8]


def test_one_device_or_one_member_is_left_alone():
    assert member_mesh(jax.local_devices()[:1], 8) is None
    assert member_mesh(jax.local_devices() * 2, 1) is None


def test_padding_repeats_the_first_member_and_unpad_drops_it():
    tree = {"w": np.arange(8.0).reshape(4, 2), "step": np.array([7, 8, 9, 10])}
    padded = pad_members(tree, 3)
    assert leading_size(padded) == 6
    np.testing.assert_array_equal(padded["w"][4:], np.stack([tree["w"][0]] * 2))
    np.testing.assert_array_equal(unpad(padded, 4)["step"], tree["step"])
    assert leading_size(pad_members(tree, 2)) == 4


@pytest.fixture(scope="module")
def two_device_run():
    """tests/two_devices.py in a fresh process with the CPU split into 2 devices (XLA reads the flag at start)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "two_devices.py")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("scheme", ["packed", "packed_one_stream", "grouped", "blockpacked",
                                    "blockpacked_one_stream"])
def test_split_members_equal_serial_members(two_device_run, scheme):
    run = two_device_run[scheme]
    assert two_device_run["n_devices"] == 2 and run["n_devices"] == 2
    # The runs are in float64 (tests/reference.py).
    assert_same_curves(run["split"], run["serial"], np.array(run["n_train"])[:, None], run["n_test"])
    assert set(run["split"]) == set(CURVES)


@pytest.mark.parametrize("scheme", ["packed", "packed_one_stream", "grouped", "blockpacked",
                                    "blockpacked_one_stream"])
def test_split_program_is_one_compile_with_no_collectives(two_device_run, scheme):
    run = two_device_run[scheme]
    assert run["n_compiled"] == 1
    assert run["collectives"] == []  # Every device trains its own members: nothing to exchange.


@pytest.mark.parametrize("scheme", ["packed", "packed_one_stream", "grouped", "blockpacked",
                                    "blockpacked_one_stream"])
def test_checkpointed_state_holds_no_padding_copies(two_device_run, scheme):
    # 3 seeds: 3 packed streams (padded to 4 while training); 1 seed: its 2 parts; or width groups whose sizes
    # add up to the members.
    run = two_device_run[scheme]
    for sizes in run["on_chunk_leading"]:
        if scheme in ("packed", "blockpacked"):
            assert sizes == [3]
        elif scheme in ("packed_one_stream", "blockpacked_one_stream"):
            assert sizes == [2]
        else:
            assert sum(sizes) == run["n_members"]


@pytest.mark.parametrize("scheme", ["packed", "packed_one_stream", "grouped", "blockpacked",
                                    "blockpacked_one_stream"])
def test_resuming_a_split_run_from_its_checkpoint_gives_the_same_curves(two_device_run, scheme):
    run = two_device_run[scheme]
    assert run["resumed_from"] > 0 and run["resumed_equal"]
