"""A member whose loss goes non-finite stops updating, is flagged and excluded, and disturbs no other member."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np

from ddjax import sweep
from ddjax.analysis.modelwise import analyze
from ddjax.analysis.sweep_report import slices
from ddjax.config import replace
from ddjax.data.registry import load_dataset
from ddjax.experiment import run_experiment
from ddjax.sweep import run_sweep
from ddjax.training.layouts import grouped
from ddjax.training.member import member_init, member_step
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.spec import CURVES

HUGE = 1e30  # Large enough that even Adam, whose steps are about the learning rate, overflows in two steps.


def _give_one_member_a_huge_learning_rate(monkeypatch, width, seed):
    """Patches the grouped layout so that only the member (width, seed) trains with learning rate HUGE."""
    stack = grouped.stack_groups

    def stack_with_one_huge_rate(coords, groups, *args, **kwargs):
        stacked = stack(coords, groups, *args, **kwargs)
        result = []
        for (initial, members), (index, _) in zip(stacked, groups):
            hit = jnp.asarray((coords["width"][index] == width) & (coords["seed"][index] == seed))
            result.append((initial, members._replace(learning_rate=jnp.where(hit, HUGE, members.learning_rate))))
        return result

    monkeypatch.setattr(grouped, "stack_groups", stack_with_one_huge_rate)


def test_diverging_member_is_flagged_excluded_and_isolated(tiny_config, tmp_path, monkeypatch):
    # The grouped path at depth 2: one vmapped group of four members, padded to width 8 (the packed and
    # block-packed paths have their own isolation tests in test_packed.py and test_blockpacked.py).
    config = replace(tiny_config, width=(7, 8), depth=2)
    monkeypatch.setattr(sweep, "run_sweep", functools.partial(run_sweep, scheme="grouped"))  # Read by run_experiment.
    clean = run_sweep(config, scheme="grouped")
    assert clean.group_widths == (8,)
    _give_one_member_a_huge_learning_rate(monkeypatch, width=8, seed=1)
    report = run_experiment(config, tmp_path / "run")
    saved = np.load(tmp_path / "run" / "curves.npz")
    bad = (saved["coord_width"] == 8) & (saved["coord_seed"] == 1)
    assert bad.sum() == 1 and np.all(saved["diverged_step"][~bad] == -1)
    step = int(saved["diverged_step"][bad][0])
    assert 0 <= step < config.steps

    # Every other member's curves are bit for bit those of the run without the diverging member.
    for name in CURVES:
        assert saved[name][~bad].tobytes() == clean.curves[name][~bad].tobytes(), name
        assert np.all(np.isnan(saved[name][bad][0, saved["eval_steps"] > step])), name
    assert np.all(np.isfinite(saved["test_error"][bad][0, saved["eval_steps"] <= step]))

    # report.json flags it with its coordinates and step; the analysis drops it and says so.
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert on_disk["diverged"] == [{"width": 8, "seed": 1, "label_noise": 0.1, "n_train": 200,
                                    "learning_rate": 0.01, "step": step}]
    cut = slices(clean, config)[0]
    row, col = config.seed.index(1), list(cut.x).index(8)
    train, test = cut.train_error.copy(), cut.test_error.copy()
    train[row, col] = test[row, col] = np.nan
    expected = analyze(cut.x, train, test, train_tolerance=config.train_tolerance, n_bootstrap=config.n_bootstrap)
    expected = json.loads(json.dumps(expected.to_dict()))
    expected["notes"].append("1 diverged member(s) excluded from the analysis")
    assert {key: on_disk[key] for key in expected} == expected
    assert expected["n_excluded"] == 2 and "excluded 2 non-finite entries (diverged members)" in expected["notes"]
    assert report["diverged"] == on_disk["diverged"]


def test_diverged_member_stops_updating(tiny_config):
    config = replace(tiny_config, width=(3,), seed=(0,), optimizer="sgd")
    dataset = load_dataset(config)
    spec, data = train_spec(config, dataset), shared_data(dataset, config)
    stacked = stack_members(expand_members(config), np.arange(1), dataset, config, spec, 3)
    initial, members = jax.tree.map(lambda a: a[0], stacked)
    members = members._replace(learning_rate=jnp.float32(HUGE))
    step_fn = jax.jit(functools.partial(member_step, spec))
    states = [member_init(spec, initial, members)]
    for step in range(6):
        states.append(step_fn(states[-1], members, data, step))
    diverged = int(states[-1].diverged_step)
    assert 0 < diverged < 5  # The first update is finite (and applied); a later one is not.
    last_good = states[diverged].params  # The parameters after updates 0 .. diverged - 1.
    assert not np.array_equal(last_good["out"]["w"], initial["params"]["out"]["w"])
    for state in states[diverged + 1:]:
        assert int(state.diverged_step) == diverged
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(last_good)):
            assert np.array_equal(a, b) and np.all(np.isfinite(a))
