"""Opening a run folder never runs code: `--report` reads config.json and curves.npz only, and `--resume` runs the
file that registered a user's family or data set only when the command line names it, with the sha256 the run
recorded. A hostile config.json (it names a file inside the folder) gets no code run, and a one-line refusal."""

import json
import pathlib
import runpy
import shutil

import pytest
from conftest import tiny_run_config

from ddjax.analysis.inputs import inputs_from_dict
from ddjax.config import ConfigError, replace
from ddjax.data import registry as data_registry
from ddjax.experiment import resume_experiment, run_experiment, run_meta
from ddjax.models import registry as model_registry
from ddjax.registration import file_sha256
from ddjax.run import main
from ddjax.runs import folder as run_folder
from ddjax.runs.files import CONFIG_FILE, REPORT_FILE
from ddjax.runs.outputs import load_run

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Run as a module, it leaves a marker file beside itself: proof that it ran.
NOTES = '''
import pathlib
pathlib.Path(__file__).with_name("ran.txt").write_text("notes.py ran")
'''

FAMILY = '''
import flax.linen as nn
import ddjax

class Net(nn.Module):
    width: int
    n_classes: int = 3

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_classes)(nn.relu(nn.Dense(self.width)(x)))

ddjax.register_model("named_net", Net)
'''


@pytest.fixture(autouse=True)
def restore_tables():
    """Every test registers under its own names; the tables are restored afterwards."""
    tables = (model_registry.MODELS, model_registry.REGISTERED_IN, data_registry.DATASETS,
              data_registry.REGISTERED_IN)
    saved = [dict(table) for table in tables]
    yield
    for table, contents in zip(tables, saved):
        table.clear()
        table.update(contents)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of the built-in tiny sweep, trained once."""
    out = tmp_path_factory.mktemp("finished") / "run"
    run_experiment(tiny_run_config(), out, name="tiny")
    return out


def _hostile(finished, tmp_path, *, analysis=True, finished_run=True):
    """A copy of a run whose config.json names a user's family and data set registered by notes.py, a file in
    the folder itself (with its sha256: the hash alone proves nothing about a file's intent)."""
    folder = tmp_path / "shared_run"
    shutil.copytree(finished, folder)
    (folder / "notes.py").write_text(NOTES)
    meta = json.loads((folder / CONFIG_FILE).read_text())
    meta["config"].update(model="evil_net", dataset="evil_data")
    meta["registered_in"] = {key: str(folder / "notes.py") for key in ("model", "dataset")}
    meta["registered_sha256"] = {key: file_sha256(folder / "notes.py") for key in ("model", "dataset")}
    if not analysis:
        del meta["analysis"]
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    if not finished_run:
        (folder / REPORT_FILE).unlink()
    return folder


def _one_line_refusal(code, err, fragment):
    assert code == 2 and fragment in err and err.count("\n") == 1, err


def test_report_of_a_hostile_folder_runs_nothing(finished, tmp_path):
    folder = _hostile(finished, tmp_path)
    before = json.loads((finished / REPORT_FILE).read_text())
    assert main(["--report", str(folder)]) == 0
    assert not (folder / "ran.txt").exists()
    assert "evil_net" not in model_registry.MODELS and "evil_data" not in data_registry.DATASETS
    assert json.loads((folder / REPORT_FILE).read_text()) == before


def test_report_without_recorded_analysis_inputs_is_refused_in_one_line_and_runs_nothing(finished, tmp_path, capsys):
    folder = _hostile(finished, tmp_path, analysis=False)
    code = main(["--report", str(folder)])
    _one_line_refusal(code, capsys.readouterr().err, "records no \"analysis\" (n_test, theory)")
    assert not (folder / "ran.txt").exists()


def test_report_of_a_built_in_run_without_recorded_analysis_inputs_asks_the_registry(finished, tmp_path):
    folder = tmp_path / "old_run"
    shutil.copytree(finished, folder)
    meta = json.loads((folder / CONFIG_FILE).read_text())
    del meta["analysis"]
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    assert main(["--report", str(folder)]) == 0
    assert (json.loads((folder / REPORT_FILE).read_text())["double_descent"]
            == json.loads((finished / REPORT_FILE).read_text())["double_descent"])


def test_resume_of_a_hostile_folder_runs_nothing_and_names_the_file_to_name(finished, tmp_path, capsys):
    folder = _hostile(finished, tmp_path, finished_run=False)
    code = main(["--resume", str(folder), "--no-progress"])
    _one_line_refusal(code, capsys.readouterr().err,
                      f"its model 'evil_net' is registered by {str(folder / 'notes.py')!r}, which runs only when "
                      f"named: python -m ddjax.run --resume {folder} --registered-in {folder / 'notes.py'}")
    with pytest.raises(ConfigError, match="runs only when named"):
        resume_experiment(folder)
    assert not (folder / "ran.txt").exists() and not (folder / REPORT_FILE).exists()


def _unfinished_with_named_family(tmp_path):
    """An unfinished run of family named_net, registered by family.py (run here, as a user's notebook would)."""
    family = tmp_path / "family.py"
    family.write_text(FAMILY)
    runpy.run_path(str(family))
    config = replace(tiny_run_config(), model="named_net")
    folder = run_folder.create(tmp_path / "run", run_meta(config, "named")).path
    del model_registry.MODELS["named_net"]  # A fresh process has registered nothing.
    return family, folder


def test_resume_with_a_named_file_whose_sha256_differs_is_refused_before_it_runs(tmp_path, capsys):
    family, folder = _unfinished_with_named_family(tmp_path)
    meta = json.loads((folder / CONFIG_FILE).read_text())
    assert meta["registered_in"] == {"model": str(family)}
    assert meta["registered_sha256"] == {"model": file_sha256(family)}
    family.write_text(FAMILY + NOTES)  # Changed since the run began; would leave ran.txt if it ran.
    before = sorted(p.name for p in folder.iterdir())
    code = main(["--resume", str(folder), "--registered-in", str(family), "--no-progress"])
    _one_line_refusal(code, capsys.readouterr().err, f"cannot resume {str(folder)!r} with {str(family)!r}: its "
                                                     f"sha256 {file_sha256(family)[:16]} is not the one the run "
                                                     f"recorded (model from {str(family)!r}: "
                                                     f"{meta['registered_sha256']['model'][:16]})")
    assert not (tmp_path / "ran.txt").exists() and sorted(p.name for p in folder.iterdir()) == before
    assert "named_net" not in model_registry.MODELS


def test_resume_runs_the_named_file_with_the_recorded_sha256(tmp_path, capsys):
    family, folder = _unfinished_with_named_family(tmp_path)
    code = main(["--resume", str(folder), "--registered-in", str(family), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert run_folder.status(folder) == "finished" and model_registry.REGISTERED_IN["named_net"] == str(family)


@pytest.mark.parametrize("args, fragment", [
    (["--report", "{run}", "--registered-in", "x.py"], "applies only with --resume"),
    (["--resume", "{run}", "--registered-in", "x.py"], "the family and data set of {run!r} are built in"),
])
def test_registered_in_where_it_has_no_use_is_refused(tmp_path, capsys, args, fragment):
    run = str(run_folder.create(tmp_path / "run", run_meta(tiny_run_config(), "tiny")).path)
    code = main([a.format(run=run) for a in args])
    _one_line_refusal(code, capsys.readouterr().err, fragment.format(run=run))


@pytest.mark.parametrize("folder", sorted(p.name for p in (ROOT / "experiments" / "results").iterdir()))
def test_shipped_runs_read_without_registries_and_name_repository_files(folder):
    run = ROOT / "experiments" / "results" / folder
    meta = json.loads((run / CONFIG_FILE).read_text())
    stored = load_run(run)  # Reads only: the shipped report.json and figures stay as they are.
    assert stored.inputs == inputs_from_dict(meta["analysis"], folder)
    for key, file in meta.get("registered_in", {}).items():
        assert not pathlib.Path(file).is_absolute() and (ROOT / file).is_file()
        assert len(meta["registered_sha256"][key]) == 64
