"""experiments/colab.ipynb: committed without outputs, and its code cells run on a CPU with small settings.

The notebook is plain JSON (nbformat 4), read here without nbformat. Code cells whose first line is
`# colab-only` (install, Google Drive, shell commands) are skipped; the others are joined into one script and run
in a subprocess with DDJAX_NOTEBOOK_SMOKE=1 (the notebook's SMOKE parameter: tiny sweeps) and the CPU split into
2 devices, so the sweep sized by the devices is sized by 2.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "experiments" / "colab.ipynb"
COLAB_ONLY = "# colab-only"


def _cells(kind):
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4
    return [cell for cell in notebook["cells"] if cell["cell_type"] == kind]


def _source(cell) -> str:
    return "".join(cell["source"])


def plain_python_cells() -> list[str]:
    """The code cells a CPU can run: every one not marked colab-only."""
    return [_source(c) for c in _cells("code") if not _source(c).lstrip().startswith(COLAB_ONLY)]


def test_committed_without_outputs():
    for cell in _cells("code"):
        assert cell["outputs"] == [] and cell["execution_count"] is None, _source(cell)[:80]


def test_only_colab_only_cells_use_magics_or_colab():
    # IPython magics (%pip, !cmd) and google.colab exist only on Colab: such a cell must be marked.
    for source in plain_python_cells():
        lines = [line.strip() for line in source.splitlines()]
        assert not any(line.startswith(("%", "!")) for line in lines), source[:80]
        assert "google.colab" not in source, source[:80]
    marked = [_source(c) for c in _cells("code") if _source(c).lstrip().startswith(COLAB_ONLY)]
    assert any("%pip install" in s and "REPO_URL" in s for s in marked)
    assert any("drive.mount" in s for s in marked)
    assert any("--resume" in s for s in marked)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colab")
    script = folder / "notebook.py"
    script.write_text("\n\n".join(plain_python_cells()) + "\n")
    env = {**os.environ, "DDJAX_NOTEBOOK_SMOKE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]), "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done.stdout


def test_notebook_cells_run_on_a_cpu(executed):
    folder, stdout = executed
    assert "2 device(s):" in stdout
    for run in ("mlp_mnist1d", "mlp_mnist1d_larger"):
        names = {p.name for p in (folder / "runs" / run).iterdir()}
        assert {"config.json", "curves.npz", "report.json", "curves.png"} <= names, run
    # The larger sweep: 3 widths x 2 seeds x 2 noise levels, on the 2 devices found.
    report = json.loads((folder / "runs" / "mlp_mnist1d_larger" / "report.json").read_text())
    assert report["timing"]["n_devices"] == 2
    assert "12 members on 2 device(s)" in stdout
    assert "interpolation threshold" in stdout  # The summary of each run was printed.
