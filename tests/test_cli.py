"""The command line and the Python API: a smoke run writes its four files; each bad input is refused with one
line naming the value and what is allowed (exit code 2 from the CLI, no traceback) and writes nothing."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_RUN, tiny_run_config
from test_config import BAD_OVERRIDES

from ddjax.config import Config, ConfigError, replace, to_dict
from ddjax.experiment import experiment_config, resume_experiment, run_experiment, run_meta
from ddjax.run import main
from ddjax.runs import checkpoint
from ddjax.runs import folder as run_folder
from ddjax.runs.files import CHECKPOINT_FILE, OUTPUT_FILES
from ddjax.sweep import run_sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ddjax.run", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_smoke_run_writes_the_four_files(tmp_path):
    out = tmp_path / "run"
    done = _run_cli("mlp_mnist1d:smoke", "--out", str(out), "--no-progress", "--cpu-devices", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Runs with >= 3 eval steps also get the epoch-wise figure.
    assert sorted(p.name for p in out.iterdir()) == sorted((*OUTPUT_FILES, "epochwise.png"))
    config = json.loads((out / "config.json").read_text())
    assert config["experiment"] == "mlp_mnist1d-smoke" and config["jax_version"] and config["devices"]
    report = json.loads((out / "report.json").read_text())
    assert {"interpolation_threshold", "test_error_peak", "overparameterized_regime", "under_min", "over_min",
            "double_descent"} <= set(report)
    # The CPU split into 2 devices, and the 2 seeds' packed streams trained one on each.
    assert len(config["devices"]) == 2 and report["timing"]["n_devices"] == 2
    curves = np.load(out / "curves.npz")
    n_members = len(config["config"]["width"]) * len(config["config"]["seed"])
    assert curves["test_error"].shape == (n_members, len(curves["eval_steps"]))
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "interpolation threshold" in done.stdout and " on 2 devices)" in done.stdout


def test_bad_input_from_a_subprocess_exits_2_with_one_line(tmp_path):
    done = _run_cli("no_such_experiment", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown experiment 'no_such_experiment'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()


def _snapshot(folder):
    """Every path under `folder` with its bytes (None for folders), to show that nothing was written."""
    return {str(p): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def _assert_refused(code, err, fragment, before, tmp_path):
    assert code == 2
    assert fragment in err, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and "Traceback" not in err
    assert _snapshot(tmp_path) == before  # No output folder, no staging folder, nothing changed.


@pytest.mark.parametrize("override, fragment", BAD_OVERRIDES)
def test_bad_set_value_exits_2_and_writes_nothing(tmp_path, capsys, override, fragment):
    code = main(["mlp_mnist1d:smoke", "--set", override, "--out", str(tmp_path / "out"), "--no-progress"])
    _assert_refused(code, capsys.readouterr().err, fragment, {}, tmp_path)


@pytest.mark.parametrize("args, fragment", [
    (["nope"], "unknown experiment 'nope'; available: "),
    (["mlp_mnist1d:huge"], "unknown variant 'huge'; available: default, smoke"),
    (["missing/file.py"], "experiment file 'missing/file.py' does not exist"),
    (["mlp_mnist1d:smoke", "--mode", "turbo"], "invalid choice: 'turbo' (choose from "),
    (["mlp_mnist1d:smoke", "--bogus"], "unrecognized arguments: --bogus"),
    (["mlp_mnist1d:smoke", "--cpu-devices", "0"], "invalid value '0'; allowed: a whole number >= 1"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, args, fragment):
    try:
        code = main([*args, "--out", str(tmp_path / "out"), "--no-progress"])
    except SystemExit as exit:  # argparse's own errors exit from inside main.
        code = exit.code
    _assert_refused(code, capsys.readouterr().err, fragment, {}, tmp_path)


def test_experiment_without_get_config_is_refused(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("CONFIG = None\n")
    before = _snapshot(tmp_path)
    code = main([str(tmp_path / "broken.py"), "--out", str(tmp_path / "out"), "--no-progress"])
    _assert_refused(code, capsys.readouterr().err, "broken.py' defines no get_config()", before, tmp_path)
    with pytest.raises(ConfigError, match="defines no get_config"):
        experiment_config(str(tmp_path / "broken.py"))


# Folders that bad --out and --resume arguments point at. Each builder makes its folder under tmp_path and
# returns the path to pass.
TINY = tiny_run_config()


def _file(tmp_path):
    (tmp_path / "file").write_text("a file")
    return tmp_path / "file"


def _empty(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _not_a_run(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep me")
    return tmp_path / "taken"


def _unfinished(tmp_path, *, state=None, step=4, config=TINY, checkpoint_config=None, damage=None):
    run = run_folder.create(tmp_path / "run", run_meta(config, "tiny")).path
    if state is not None:
        checkpoint.save_checkpoint(run, step, state, config=to_dict(checkpoint_config or config))
    if damage:
        path = run / CHECKPOINT_FILE
        path.write_bytes(damage(path.read_bytes()))
    return run


def _finished(tmp_path):
    run = _unfinished(tmp_path)
    (run / "report.json").write_text("{}")
    return run


def _config_json(text):
    def build(tmp_path):
        run = _unfinished(tmp_path)
        (run / "config.json").write_text(text)
        return run
    return build


STATE = {"w": np.zeros((2, 3), np.float32)}  # Not the trainer's state: only its signature is checked.
FLIP = lambda data: data[:200] + bytes([data[200] ^ 0xFF]) + data[201:]  # noqa: E731
TRUNCATE = lambda data: data[: len(data) // 2]  # noqa: E731

BAD_OUTPUT_FOLDERS = [
    (_file, "exists and is a file; choose another --out"),
    (_not_a_run, "exists and is not a ddjax run; pass --force to replace it"),
    (_unfinished, "is an unfinished run (continue it with --resume); pass --force to replace it"),
    (_finished, "is a finished run; pass --force to replace it"),
    (lambda tmp_path: _file(tmp_path) / "run", "is not writable: "),  # Root may write anywhere, but not here.
    (lambda tmp_path: pathlib.Path("/proc/ddjax-test/run"), "is not writable ("),
]

BAD_RESUMES = [  # (builder, extra CLI arguments, config for the Python API, fragment)
    (lambda tmp_path: tmp_path / "missing", [], None, "no such folder"),
    (_file, [], None, "it is a file, not a run folder"),
    (_empty, [], None, "is not a ddjax run (no config.json)"),
    (_not_a_run, [], None, "is not a ddjax run (no config.json)"),
    (_config_json("{not json"), [], None, "is not a ddjax run (unreadable config.json: "),
    (_config_json('{"config": {}}'), [], None, "is not a ddjax run (its config.json has no ddjax config)"),
    (_config_json('{"ddjax_version": "0", "config": {"steps": -1}}'), [], None,
     "its config.json is invalid (steps=-1 is not allowed: an integer >= 1)"),
    (_finished, [], None, "it is a finished run (it has report.json)"),
    (lambda tmp_path: _unfinished(tmp_path, state=STATE, damage=FLIP), [], None, "is corrupt or truncated"),
    (lambda tmp_path: _unfinished(tmp_path, state=STATE, damage=TRUNCATE), [], None, "is corrupt or truncated"),
    (lambda tmp_path: _unfinished(tmp_path, state=STATE), [], None,
     "checkpoint.npz' does not match this trainer's state (its state has another tree structure; written by "
     "another ddjax version, or on another number of devices?)"),
    (lambda tmp_path: _unfinished(tmp_path, state=STATE, checkpoint_config=replace(TINY, steps=40)), [], None,
     "was written by another config (differing keys: steps)"),
    (_unfinished, ["--set", "steps=31"], replace(TINY, steps=31),
     "with a different config; differing keys: steps (run: 30, given: 31)"),
    (_unfinished, ["mlp_mnist1d:smoke"], experiment_config("mlp_mnist1d", "smoke"),
     "differing keys: dataset (run: gaussian, given: mnist1d), n_samples (run: 200, given: 600)"),
    (_unfinished, ["--out", "elsewhere"], None, "continues that folder in place; it takes no --out"),
    (_unfinished, ["--force"], None, "continues that folder in place; it takes no --force"),
]


@pytest.mark.parametrize("build, fragment", BAD_OUTPUT_FOLDERS)
def test_bad_output_folder_is_refused(tmp_path, capsys, build, fragment):
    out = build(tmp_path)
    before = _snapshot(tmp_path)
    code = main([*TINY_RUN, "--out", str(out), "--no-progress"])
    _assert_refused(code, capsys.readouterr().err, f"output folder {str(out)!r} {fragment}", before, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(fragment)) as error:
        run_experiment(TINY, out)
    assert "\n" not in str(error.value) and _snapshot(tmp_path) == before


@pytest.mark.parametrize("build, args, config, fragment", BAD_RESUMES)
def test_bad_resume_is_refused(tmp_path, capsys, build, args, config, fragment):
    target = build(tmp_path)
    before = _snapshot(tmp_path)
    code = main(["--resume", str(target), *args])
    _assert_refused(code, capsys.readouterr().err, fragment, before, tmp_path)
    if "--out" not in args and "--force" not in args:  # The Python API has no such arguments to misuse.
        with pytest.raises(ConfigError, match=re.escape(fragment)) as error:
            resume_experiment(target, config)
        assert "\n" not in str(error.value) and _snapshot(tmp_path) == before


def test_unvalidated_config_is_refused_by_the_python_api(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("width=(0,) is not allowed: integers >= 1")):
        run_experiment(Config(width=(0,)), tmp_path / "out")
    with pytest.raises(ConfigError, match=re.escape("steps=0 is not allowed: an integer >= 1")):
        run_sweep(Config(steps=0))
    with pytest.raises(ConfigError, match=re.escape("start_step=4 is not allowed without restore")):
        run_sweep(TINY, mode="serial", start_step=4)
    assert list(tmp_path.iterdir()) == []


def test_late_bad_input_leaves_no_folder_behind(tmp_path, monkeypatch):
    # A ConfigError raised once the run folder exists (here from the sweep) must still remove it and the
    # parent folders it created.
    def refuse(*args, **kwargs):
        raise ConfigError("refused late")

    monkeypatch.setattr("ddjax.sweep.run_sweep", refuse)
    with pytest.raises(ConfigError, match="refused late"):
        run_experiment(TINY, tmp_path / "new" / "parents" / "run")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="refused late"):
        run_experiment(TINY, tmp_path / "empty")
    assert list(tmp_path.iterdir()) == [tmp_path / "empty"] and list((tmp_path / "empty").iterdir()) == []


def test_force_never_replaces_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_not_a_run(tmp_path))
    before = _snapshot(tmp_path)
    for out in (".", str(tmp_path)):
        code = main([*TINY_RUN, "--out", out, "--force", "--no-progress"])
        _assert_refused(code, capsys.readouterr().err, "holds the current folder; --force will not replace it",
                        before, tmp_path)


def test_force_replaces_an_existing_folder_only_once_it_can_write(tmp_path, monkeypatch):
    out = _not_a_run(tmp_path)
    monkeypatch.setattr("ddjax.sweep.run_sweep", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(TINY, out, force=True)
    # The old folder is gone, replaced by an unfinished run that --resume can continue.
    assert run_folder.status(out) == "unfinished" and sorted(p.name for p in out.iterdir()) == ["config.json"]


def test_interrupt_prints_how_to_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ddjax.sweep.run_sweep", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "run"
    assert main([*TINY_RUN, "--out", str(out), "--no-progress"]) == 130
    assert capsys.readouterr().err == f"interrupted; continue with: python -m ddjax.run --resume {out}\n"
    assert run_folder.status(out) == "unfinished"
