"""benchmarks/seed_power.py: the verdict's power by seed count, simulated around a run's own curve."""

import importlib.util
import json
import pathlib

import numpy as np

from ddjax.analysis.sweep_report import Slice
from ddjax.experiment import experiment_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("benchmarks_seed_power", ROOT / "benchmarks" / "seed_power.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed_power = _script()
CONFIG = experiment_config("mlp_mnist1d", "smoke")  # width is its x axis, train tolerance 0.01


def _curve(bump: float, n_seeds: int = 2, sd: float = 0.01) -> Slice:
    """A run of `n_seeds` on 15 widths: test error falling in log width, a Gaussian bump at the threshold."""
    x = np.geomspace(2, 1000, 15)
    t = np.log(x / 2) / np.log(500)
    mean = 0.5 - 0.3 * t + bump * np.exp(-0.5 * ((t - 0.5) / 0.05) ** 2)
    test = mean + sd * np.random.default_rng(0).standard_normal((n_seeds, x.size))
    train = np.broadcast_to(np.where(x >= x[7], 0.0, 0.2), test.shape)
    return Slice({}, x, train, test)


def test_seed_noise_is_the_verdicts_smoothed_variance_or_the_binomial_floor():
    errors = np.array([[0.30, 0.20, 0.10, 0.10], [0.32, 0.20, 0.10, 0.10]])
    sd, dof, words = seed_power.seed_noise(errors, n_test=1000)
    assert dof == 5 and "smoothed" in words
    np.testing.assert_allclose(sd[0], 0.02 / np.sqrt(2))  # Its own variance, the largest of the three.
    np.testing.assert_allclose(sd[3], np.sqrt(0.0002 / 4))  # The pooled floor.
    sd, dof, words = seed_power.seed_noise(errors[:1], n_test=1000)
    assert dof == 0 and "lower bound" in words
    np.testing.assert_allclose(sd, np.sqrt(errors[0] * (1 - errors[0]) / 1000))
    sd, dof, _ = seed_power.seed_noise(errors[:1], n_test=None, noise_sd=0.05)
    assert dof == 0 and np.all(sd == 0.05)


def test_a_tall_peak_is_found_and_a_peak_free_curve_is_not():
    for bump, low, high in ((0.1, 0.9, 1.0), (0.0, 0.0, 0.15)):
        cut = _curve(bump)
        sd, dof, _ = seed_power.seed_noise(cut.test_error, None)
        rows = seed_power.power_by_seeds(cut, CONFIG, None, sd, dof, n_draws=40, seed=0, counts=[3], beyond=None)
        assert low <= rows[0]["power_known"] <= high, (bump, rows)


def test_power_grows_with_seeds_and_the_choice_is_the_first_count_at_the_target():
    cut = _curve(0.03)
    sd, dof, _ = seed_power.seed_noise(cut.test_error, None)
    rows = seed_power.power_by_seeds(cut, CONFIG, None, sd, dof, n_draws=40, seed=0, counts=[2, 8], beyond=None)
    assert rows[0]["power_known"] < rows[1]["power_known"] and rows[0]["height_se"] < rows[1]["height_se"]
    fake = [{"n_seeds": s, "power_known": p, "power_redrawn": p - 0.2} for s, p in ((2, 0.5), (3, 0.91), (4, 0.95))]
    assert seed_power.chosen_seeds(fake) == 3 and seed_power.chosen_seeds(fake, column="redrawn") is None
    assert seed_power.seed_counts("2-4") == ([2, 3, 4], True) and seed_power.seed_counts("7,5") == ([5, 7], False)


def test_main_reads_a_stored_run_and_writes_json(tmp_path):
    out = tmp_path / "power.json"
    assert seed_power.main([str(ROOT / "experiments" / "results" / "mlp_mnist"), "--seeds", "2,3", "--draws", "10",
                            "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["experiment"] == "mlp_mnist" and [r["n_seeds"] for r in table["rows"]] == [2, 3]
    assert len(table["sd"]) == len(table["x"]) == 15 and table["machine"]["cores"] >= 1
