"""Checkpoint and resume: a run killed at any moment continues to exactly the curves of an uninterrupted run."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY_RUN, tiny_run_config
from image_files import clean_image_cache, install_tiny_image_set

from ddjax import experiment
from ddjax.config import replace
from ddjax.experiment import experiment_config, run_experiment
from ddjax.runs import checkpoint
from ddjax.runs.files import CHECKPOINT_FILE, OUTPUT_FILES

ROOT = pathlib.Path(__file__).resolve().parents[1]
__all__ = ["clean_image_cache"]


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Starts `python -m ddjax.run ARGS` in a subprocess; with `pause` ("write:SECONDS" or "after:SECONDS"),
    through `tests/paused_run.py`, which pauses every checkpoint at that moment.

    The subprocesses share a persistent compilation cache, so the program compiles once for all of them. Only
    compile time is saved: the determinism test compiles afresh in this process and must still match them.
    """
    cache = str(tmp_path_factory.mktemp("jax-cache"))

    def start(*args, cwd, pause=None):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_COMPILATION_CACHE_DIR": cache,
               "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
        command = [str(ROOT / "tests" / "paused_run.py"), pause] if pause else ["-m", "ddjax.run"]
        return subprocess.Popen([sys.executable, *command, *args], cwd=cwd, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    return start


def _finish(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out, err


def _kill_when(process, ready, timeout=120):
    """SIGKILLs `process` as soon as `ready()` holds; fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the moment to kill it"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def reference(cli, tmp_path_factory):
    """curves.npz of an uninterrupted CLI run of TINY_RUN."""
    out = tmp_path_factory.mktemp("reference") / "run"
    _finish(cli(*TINY_RUN, "--out", str(out), "--no-progress", cwd=out.parent))
    return (out / "curves.npz").read_bytes()


def test_same_config_and_seed_give_identical_curves(reference, tmp_path):
    # A second run, compiled afresh in another process than the reference, must reproduce its file byte for byte.
    run_experiment(tiny_run_config(), tmp_path / "again")
    assert (tmp_path / "again" / "curves.npz").read_bytes() == reference


def test_resume_after_sigkill_mid_training_and_during_a_checkpoint_write(cli, reference, tmp_path):
    out = tmp_path / "run"
    steps, partial = 30, out / (CHECKPOINT_FILE + ".tmp")
    first = cli(*TINY_RUN, "--out", str(out), "--no-progress", cwd=tmp_path, pause="after:0.5")
    _kill_when(first, lambda: (out / CHECKPOINT_FILE).exists())
    killed_at = checkpoint.load_checkpoint(out).step
    assert 0 < killed_at <= steps and not (out / "report.json").exists()  # Killed mid-training.

    # Resumed, then killed while a newer checkpoint is half-way to replacing a complete older one.
    second = cli("--resume", str(out), "--no-progress", cwd=tmp_path, pause="write:0.5")
    _kill_when(second, lambda: partial.exists() and checkpoint.load_checkpoint(out).step > killed_at)
    assert checkpoint.load_checkpoint(out).step < steps + 1

    _, err = _finish(cli("--resume", str(out), cwd=tmp_path))  # With the progress bar this time.
    resumed_at = json.loads((out / "report.json").read_text())["resumed_from_step"]
    assert resumed_at > killed_at and f"{resumed_at}/{steps}" in err  # The bar starts where training resumes.
    assert (out / "curves.npz").read_bytes() == reference
    assert sorted(p.name for p in out.iterdir()) == sorted((*OUTPUT_FILES, "epochwise.png"))  # No checkpoint.


def test_serial_run_interrupted_after_two_members_resumes_to_the_same_curves(tmp_path, monkeypatch):
    config = replace(tiny_run_config(), mode="serial")
    run_experiment(config, tmp_path / "whole")
    save, saves = checkpoint.save_checkpoint, []

    def save_then_stop(run_dir, step, state, **kwargs):  # Ctrl-C right after the second member's checkpoint.
        save(run_dir, step, state, **kwargs)
        saves.append(step)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "cut")
    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    assert saves == [1, 2] and checkpoint.load_checkpoint(tmp_path / "cut").step == 2
    report = experiment.resume_experiment(tmp_path / "cut")
    assert report["resumed_from_step"] == 2 and "resumed after 2 trained members" in experiment.summary(report)
    assert (tmp_path / "cut" / "curves.npz").read_bytes() == (tmp_path / "whole" / "curves.npz").read_bytes()


@pytest.mark.usefixtures("clean_image_cache")
def test_staged_closed_form_interrupted_after_a_stage_resumes_to_the_same_curves(tmp_path, monkeypatch):
    """A random-features read-out solved in stages (one program a width, the accumulated products carried from
    stage to stage) on tiny MNIST-shaped images, stopped right after a stage's checkpoint: resumed, it writes the
    curves.npz of a run that never stopped, byte for byte. Stopped after stage 1 (the carry holds the feature
    side's values and the sample side's products), 4 (past the threshold) and 6 (the first seed done)."""
    install_tiny_image_set(monkeypatch, tmp_path, "mnist", n_train=120, n_test=50)
    config = replace(experiment_config("random_features_mnist", "smoke"), n_train=(100,), seed=(0, 1),
                     width=(20, 60, 79, 80, 150, 400), ridge=(0.0, 1e-3), validation_fraction=0.2)
    run_experiment(config, tmp_path / "whole")
    save = checkpoint.save_checkpoint
    for stopped_after in (1, 4, 6):
        saves = []

        def save_then_stop(run_dir, step, state, **kwargs):  # Ctrl-C right after a stage's checkpoint.
            save(run_dir, step, state, **kwargs)
            saves.append(step)
            if step == stopped_after:
                raise KeyboardInterrupt

        monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_stop)
        cut = tmp_path / f"cut-{stopped_after}"
        with pytest.raises(KeyboardInterrupt):
            run_experiment(config, cut)
        monkeypatch.setattr(checkpoint, "save_checkpoint", save)
        assert saves == list(range(1, stopped_after + 1)) and checkpoint.load_checkpoint(cut).step == stopped_after
        report = experiment.resume_experiment(cut)
        assert report["resumed_from_step"] == stopped_after and report["timing"]["n_programs"] == 12
        assert (cut / "curves.npz").read_bytes() == (tmp_path / "whole" / "curves.npz").read_bytes()
