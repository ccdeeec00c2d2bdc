"""The epoch-wise verdict's power on a finished many-seed run: its seeds cut into groups, each group analysed as a
run of that many seeds.

    PYTHONPATH=. python benchmarks/seed_groups.py RUN_FOLDER [--group 5]

For every width of the run (the other axes at one value each), seeds 0..S-1 are cut into S // group consecutive
groups; each group's curves go through `ddjax.analysis.epochwise.epochwise_analysis` with the run's train tolerance,
as the run's report would analyse a run of those seeds. Prints, per width, the groups whose verdict is true, and
each group's p-value, peak step and rise. Nothing is trained; the run folder's files are read as data only.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

from ddjax.analysis.epochwise import epochwise_analysis
from ddjax.analysis.inputs import inputs_from_dict


def group_verdicts(steps: np.ndarray, train: np.ndarray, test: np.ndarray, group: int, *, train_tolerance: float,
                   n_test: int | None) -> list[dict]:
    """The epoch-wise report of each consecutive group of `group` seeds (rows of `train`, `test`)."""
    reports = []
    for start in range(0, len(test) - group + 1, group):
        rows = slice(start, start + group)
        report = epochwise_analysis(steps, train[rows], test[rows], train_tolerance=train_tolerance,
                                    n_test=n_test).to_dict()
        reports.append({"seeds": [start, start + group - 1], "double_descent": report["epochwise_double_descent"],
                        "p_value": report["p_value"], "shape": report["shape"]})
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=pathlib.Path)
    parser.add_argument("--group", type=int, default=5, help="seeds per group")
    args = parser.parse_args()
    stored = json.loads((args.run / "config.json").read_text())
    config, n_test = stored["config"], inputs_from_dict(stored["analysis"], str(args.run)).n_test
    with np.load(args.run / "curves.npz", allow_pickle=False) as saved:
        curves = {key: saved[key] for key in saved.files}
    for width in sorted(set(curves["coord_width"].tolist())):
        rows = np.flatnonzero(curves["coord_width"] == width)
        rows = rows[np.argsort(curves["coord_seed"][rows])]
        reports = group_verdicts(curves["eval_steps"], curves["train_error"][rows], curves["test_error"][rows],
                                 args.group, train_tolerance=config["train_tolerance"], n_test=n_test)
        true = sum(bool(r["double_descent"]) for r in reports)
        p_values = ", ".join("-" if r["p_value"] is None else f"{r['p_value']:.3f}" for r in reports)
        print(f"width {width}: epoch-wise double descent in {true} of {len(reports)} groups of {args.group} seeds "
              f"(p = {p_values})")


if __name__ == "__main__":
    main()
