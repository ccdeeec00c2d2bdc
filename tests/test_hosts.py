"""Multi-host sweeps: two processes on 127.0.0.1, each with 2 CPU devices, against one process with 4.

Each process runs `python -m ddjax.run` in its own working folder (a host's own disk): process 0 must write the
run folder, process 1 nothing; the curves must equal those of one process splitting the same members over 4
devices; a run killed after a checkpoint resumes on both processes to the same curves, and on another process
count it is refused with one line.
"""

import json
import os
import re
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from ddjax.config import ConfigError
from ddjax.run import main
from ddjax.training.hosts import Cluster, detect_cluster

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLLECTIVES = r"all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter"  # As in two_devices.py.
# Packed, 2 seeds = 2 streams, each cut into 2 parts: one part per device of the 4.
RUN = ["mlp_mnist1d:smoke", "--set", "dataset=gaussian", "--set", "n_samples=200", "--set", "input_dim=4",
       "--set", "n_classes=3", "--set", "width=2,4,9", "--set", "seed=0,1", "--set", "n_train=100",
       "--set", "batch_size=8", "--set", "steps=30", "--set", "n_chunks=3", "--set", "n_evals=3", "--no-progress"]


def test_a_job_is_recognized_by_the_flag_or_the_environment():
    assert detect_cluster(environ={}) is None
    assert detect_cluster(environ={"TPU_WORKER_HOSTNAMES": "t1k-0"}) is None  # One host: nothing to join.
    assert detect_cluster(True, environ={}) == Cluster(None, None, None, "--distributed")
    assert detect_cluster(environ={"JAX_COORDINATOR_ADDRESS": "10.0.0.2:1234", "JAX_NUM_PROCESSES": "4",
                                   "JAX_PROCESS_ID": "3"}) == Cluster("10.0.0.2:1234", 4, 3, "JAX_COORDINATOR_ADDRESS")
    pod = detect_cluster(environ={"TPU_WORKER_HOSTNAMES": "t1k-0,t1k-1"})
    assert pod == Cluster(None, None, None, "TPU_WORKER_HOSTNAMES")  # JAX's own detection fills in the rest.
    flags = detect_cluster(True, coordinator_address="h:1", num_processes=2, process_id=1,
                           environ={"JAX_COORDINATOR_ADDRESS": "other:2", "JAX_PROCESS_ID": "0"})
    assert flags == Cluster("h:1", 2, 1, "--distributed")


@pytest.mark.parametrize("environ, message", [
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two"}, "invalid JAX_NUM_PROCESSES='two'"),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "invalid process id 2"),
])
def test_a_bad_job_description_is_one_line(environ, message):
    with pytest.raises(ConfigError, match=message):
        detect_cluster(environ=environ)


def test_the_cli_refuses_a_process_id_outside_the_job(capsys, tmp_path):
    assert main(RUN + ["--out", str(tmp_path / "run"), "--num-processes", "2", "--process-id", "5"]) == 2
    assert capsys.readouterr().err.strip() == "error: invalid process id 5; allowed: 0 .. 1 (one per process of 2)"
    assert not (tmp_path / "run").exists()


def test_a_job_that_cannot_be_joined_is_one_line_and_nothing_written(tmp_path):
    # No coordinator given and none to detect on this machine: JAX's complaint, and what to give instead.
    done = subprocess.run([sys.executable, "-m", "ddjax.run", *RUN, "--out", "run", "--distributed"], cwd=tmp_path,
                          env={k: v for k, v in _env().items() if not k.startswith(("JAX_", "TPU_"))},
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot join the multi-host job (--distributed): ")
    assert "--coordinator HOST:PORT" in lines[0]
    assert sorted(tmp_path.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _start_job(folders, args, *, entry=("-m", "ddjax.run"), dump_hlo=False):
    """The same command on two processes, process i in folders[i], joined at a fresh port of 127.0.0.1;
    `dump_hlo`: each process writes its compiled programs' HLO to folders[i]/../hlo-i."""
    port = _free_port()
    processes = []
    for i, folder in enumerate(folders):
        env = _env()
        if dump_hlo:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_dump_to={folder.parent / f'hlo-{i}'}"
        processes.append(subprocess.Popen(
            [sys.executable, *entry, *args, "--cpu-devices", "2", "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(i)],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def _finish(processes, timeout=240):
    outputs = [p.communicate(timeout=timeout) for p in processes]
    for p, (out, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def _curves(folder):
    with np.load(folder / "curves.npz") as stored:
        return {k: stored[k] for k in stored.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with 4 devices; the same sweep on two processes with 2 each; and one killed, then resumed."""
    base = tmp_path_factory.mktemp("hosts")
    hosts = [base / "host0", base / "host1", base / "killed0", base / "killed1", base / "alone"]
    for folder in hosts:
        folder.mkdir()
    job = _start_job(hosts[:2], RUN + ["--out", "run"], dump_hlo=True)
    # Process 0 waits 60 s after each checkpoint (process 1 waits for it, to gather the next chunk): the job is
    # killed there, after the first.
    killed = _start_job(hosts[2:4], RUN + ["--out", "run"], entry=(str(ROOT / "tests" / "paused_run.py"), "after:60"))
    alone = subprocess.run([sys.executable, "-m", "ddjax.run", *RUN, "--out", "run", "--cpu-devices", "4"],
                           cwd=hosts[4], env=_env(), capture_output=True, text=True, timeout=240)
    assert alone.returncode == 0, alone.stderr[-3000:]
    job_output = _finish(job)
    checkpoint = hosts[2] / "run" / "checkpoint.npz"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline and killed[0].poll() is None:
        time.sleep(0.2)
    for p in killed:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert checkpoint.exists()
    unfinished = sorted(p.name for p in (hosts[2] / "run").iterdir())
    # Another process count (this test's single process): refused before anything is written.
    refused = _main_output(["--resume", str(hosts[2] / "run"), "--no-progress"])
    after_refusal = sorted(p.name for p in (hosts[2] / "run").iterdir())
    resumed_output = _finish(_start_job(hosts[2:4], ["--resume", "run", "--no-progress"]))
    return {"hosts": hosts, "job_output": job_output, "resumed_output": resumed_output, "refused": refused,
            "unfinished": unfinished, "after_refusal": after_refusal}


def _main_output(argv):
    """`main(argv)` in this process: its exit code and what it printed to stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def test_two_processes_give_the_curves_of_one(runs):
    host0, host1, _, _, alone = runs["hosts"]
    assert sorted(p.name for p in host1.iterdir()) == []  # Process 1 writes nothing.
    report = json.loads((host0 / "run" / "report.json").read_text())
    assert report["timing"]["n_devices"] == 4
    meta = json.loads((host0 / "run" / "config.json").read_text())
    assert meta["n_processes"] == 2 and len(meta["devices"]) == 4
    two, one = _curves(host0 / "run"), _curves(alone / "run")
    assert set(two) == set(one)
    for name in one:  # The same program on the same 4-device mesh: bit for bit, not only to 1e-5.
        np.testing.assert_array_equal(two[name], one[name], err_msg=name)
    assert np.isfinite(one["test_loss"]).all()
    assert "process 1 of 2: done" in runs["job_output"][1]


def test_the_training_program_holds_no_collective_on_either_process(runs):
    # Gathering states and sharing decisions use collectives, in programs of their own, outside the loop.
    base = runs["hosts"][0].parent
    for i in range(2):
        chunks = sorted((base / f"hlo-{i}").glob("*jit_run_chunk*after_optimizations.txt"))
        assert chunks, sorted(p.name for p in (base / f"hlo-{i}").iterdir())[:20]
        for chunk in chunks:
            assert re.findall(COLLECTIVES, chunk.read_text()) == [], chunk.name
        gathers = [p for p in (base / f"hlo-{i}").glob("*after_optimizations.txt")
                   if re.search(COLLECTIVES, p.read_text())]
        assert gathers  # The check can fail: the gathers' programs are in the same dump.


def test_another_process_count_is_refused_with_one_line_and_nothing_written(runs):
    code, err = runs["refused"]
    run = str(runs["hosts"][2] / "run")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: cannot resume {run!r} on 1 process(es): it was trained by 2; resume it on the same topology "
        "(see docs/devices.md, Running on TPU and GPU)"]
    assert runs["after_refusal"] == runs["unfinished"] == ["checkpoint.npz", "config.json"]


def test_a_killed_two_process_run_resumes_to_the_same_curves(runs):
    host0, _, killed0, killed1, _ = runs["hosts"]
    report = json.loads((killed0 / "run" / "report.json").read_text())
    assert report["resumed_from_step"] > 0
    assert sorted(p.name for p in killed1.iterdir()) == []
    resumed, straight = _curves(killed0 / "run"), _curves(host0 / "run")
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_a_refused_out_stops_every_process_with_one_line(tmp_path):
    folders = [tmp_path / "host0", tmp_path / "host1"]
    for folder in folders:
        folder.mkdir()
    (folders[0] / "taken").write_text("a file")  # Only process 0's disk has it: process 1 learns it from process 0.
    processes = _start_job(folders, RUN + ["--out", "taken"])
    for p in processes:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 2
        assert [line for line in err.splitlines() if not line.startswith("[Gloo]")] == [
            "error: output folder 'taken' exists and is a file; choose another --out"]
    assert sorted(p.name for p in folders[1].iterdir()) == []
