"""The power of a finished run's double-descent verdict by seed count: how many seeds its peak needs.

    PYTHONPATH=. python benchmarks/seed_power.py experiments/results/mlp_mnist-2seeds          # 400 draws per S
    PYTHONPATH=. python benchmarks/seed_power.py experiments/results/mlp_mnist-2seeds --quick    # 100 draws per S

The alternative is the run itself: its seed-mean test-error curve m (peak included) is taken as the true curve,
and each simulated data set draws S seeds y[s, k] = m_k + sd_k z[s, k], z standard normal, with the verdict's own
noise model for sd_k (`ddjax.analysis.verdict.smoothed_variance` of the run's seed variances: a point's own
variance, its average with neighbours, the pooled one, whichever is largest). Every data set is analysed as the
run's report analyses the run (`ddjax.analysis.analyze` with the run's train tolerance, x axis, test-set size and
the default min_rise, so the same threshold, peak window and verdict), with the run's seed-mean train error (and
train loss) on every seed, so the threshold is the run's. Two columns:
  known     sd_k as measured: the power the verdict has if the run's noise is the true noise;
  redrawn   each data set redraws sd_k^2 as sd_k^2 dof / chi2(dof), dof as in the verdict ((run seeds - 1) x 5),
            because a few seeds only estimate the noise: a pessimistic spread (with 2 seeds, dof = 5 inflates the
            variance by 5/3 on average).
The chosen count is the smallest S whose known-noise power reaches the target (90%); a range of counts stops two
past it. Taking the measured peak as the truth is a little optimistic (the peak is the highest of noisy points),
the smoothed variance a little pessimistic (the largest of three estimates). A one-seed run has no seed noise: its
sd is the test set's binomial standard error sqrt(m (1 - m) / n_test), a lower bound of the seed noise (so the
power is an upper bound), or `--noise-sd`. `height_se` is the smaller rise of the run's peak in units of the
verdict's noise scale with S seeds, sqrt(mean_k sd_k^2 / S), the unit of the calibration's power figures
(docs/verdict.md). Prints a table and writes JSON (--out, default benchmarks/seed-power-<experiment>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any, Sequence

import numpy as np

from ddjax.analysis import analyze
from ddjax.analysis.sweep_report import Slice, slices, x_axis
from ddjax.analysis.verdict import NOISE_SMOOTHING, seed_stats, smoothed_variance
from ddjax.config import Config
from ddjax.runs.outputs import load_run

TARGET = 0.9  # power the chosen seed count must reach
DRAWS = 400  # simulated data sets per seed count (--quick: QUICK_DRAWS)
QUICK_DRAWS = 100


def seed_noise(test_error: np.ndarray, n_test: int | None,
               noise_sd: float | None = None) -> tuple[np.ndarray, int, str]:
    """(sd per point, degrees of freedom of its estimate (0: taken as known), what it is) of one seed's test error.

    Args:
      test_error: (seeds, K).
      n_test: test examples behind each error, for the binomial noise of a one-seed run.
      noise_sd: a given sd for every point, instead of any estimate.
    """
    mean, variance, count = seed_stats(test_error)
    if noise_sd is not None:
        return np.where(np.isfinite(mean), noise_sd, np.nan), 0, f"given: sd {noise_sd:g} at every point"
    if np.isfinite(variance).any():
        dof = int(max(np.nanmax(count) - 1, 1)) * (2 * NOISE_SMOOTHING + 1)
        return (np.sqrt(smoothed_variance(variance)), dof,
                f"the verdict's smoothed seed variance of {test_error.shape[0]} seeds")
    if n_test is None:
        raise ValueError("one seed and no test-set size: give --noise-sd")
    return (np.sqrt(mean * (1 - mean) / n_test), 0,
            f"one seed: the binomial sd of {n_test} test examples, a lower bound of the seed noise (power is an "
            f"upper bound)")


def simulate(mean: np.ndarray, sd: np.ndarray, n_seeds: int, n_draws: int, rng: np.random.Generator, *,
             dof: int = 0) -> np.ndarray:
    """(n_draws, n_seeds, K) data sets y = mean + sd z; with `dof` > 0 each data set redraws its variances as
    sd^2 dof / chi2(dof), per point."""
    scale = np.broadcast_to(sd, (n_draws, 1, sd.size))
    if dof > 0:
        scale = scale * np.sqrt(dof / rng.chisquare(dof, size=(n_draws, 1, sd.size)))
    return mean + scale * rng.standard_normal((n_draws, n_seeds, mean.size))


def verdicts(cut: Slice, data: np.ndarray, config: Config, n_test: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(double_descent, p-value) of each simulated test-error data set (draws, S, K), analysed as the run's report
    analyses the run, with the run's seed-mean train error (and train loss) on every seed."""
    n_seeds = data.shape[1]
    train = np.repeat(seed_stats(cut.train_error)[0][None], n_seeds, axis=0)
    loss = None if cut.train_loss is None else np.repeat(seed_stats(cut.train_loss)[0][None], n_seeds, axis=0)
    found, p_values = np.zeros(len(data), bool), np.full(len(data), np.nan)
    for i, test in enumerate(data):
        report = analyze(cut.x, train, test, train_tolerance=config.train_tolerance,
                         samplewise=x_axis(config) == "n_train", train_loss=loss, n_test=n_test)
        found[i] = report.double_descent
        p_values[i] = np.nan if report.p_value is None else report.p_value
    return found, p_values


def power_by_seeds(cut: Slice, config: Config, n_test: int | None, sd: np.ndarray, dof: int, *, n_draws: int,
                   seed: int, counts: Sequence[int], target: float = TARGET,
                   beyond: int | None = 2) -> list[dict[str, Any]]:
    """One row per seed count in `counts` (ascending): detection rates with the noise known and redrawn, median
    p-values. Stops `beyond` counts after the first that reaches `target` known, or never (None)."""
    mean = seed_stats(cut.test_error)[0]
    rises = _rises(cut, config, n_test)
    rows, reached = [], None
    for n_seeds in counts:
        rng = np.random.default_rng([seed, n_seeds])
        row: dict[str, Any] = {"n_seeds": n_seeds, "draws": n_draws}
        if rises is not None:
            row["height_se"] = float(min(rises) / np.sqrt(np.nanmean(sd ** 2) / n_seeds))
        for column, redraw in (("known", 0), ("redrawn", dof)):
            found, p_values = verdicts(cut, simulate(mean, sd, n_seeds, n_draws, rng, dof=redraw), config, n_test)
            row[f"power_{column}"] = float(found.mean())
            row[f"median_p_{column}"] = float(np.nanmedian(p_values)) if np.isfinite(p_values).any() else None
        rows.append(row)
        if reached is None and row["power_known"] >= target:
            reached = n_seeds
        if beyond is not None and reached is not None and n_seeds >= reached + beyond:
            break
    return rows


def chosen_seeds(rows: list[dict[str, Any]], target: float = TARGET, column: str = "known") -> int | None:
    """The smallest seed count whose detection rate (`column`: known or redrawn) reaches `target`."""
    return next((r["n_seeds"] for r in rows if r[f"power_{column}"] >= target), None)


def seed_counts(text: str) -> tuple[list[int], bool]:
    """'2-16' -> (2..16, True: a range, stopped once the target is passed); '6,7,8' -> ([6, 7, 8], False)."""
    is_range = "-" in text
    if is_range:
        low, high = (int(v) for v in text.split("-"))
        counts = list(range(low, high + 1))
    else:
        counts = sorted(int(v) for v in text.split(","))
    if not counts or counts[0] < 2:
        raise argparse.ArgumentTypeError(f"seed counts must be >= 2, got {text!r}")
    return counts, is_range


def _rises(cut: Slice, config: Config, n_test: int | None) -> tuple[float, float] | None:
    """The run's own peak rises (above the lowest mean left and right of it), as its report finds them."""
    report = analyze(cut.x, cut.train_error, cut.test_error, train_tolerance=config.train_tolerance,
                     samplewise=x_axis(config) == "n_train", train_loss=cut.train_loss, n_test=n_test)
    peak, low = report.test_error_peak, [report.under_min, report.over_min]
    if peak is None or None in low:
        return None
    return tuple(peak["error"] - point["error"] for point in low)


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder (config.json, curves.npz)")
    parser.add_argument("--slice", type=int, default=0, help="which curve of the run (its report's slices)")
    parser.add_argument("--draws", type=int, default=DRAWS, help="simulated data sets per seed count")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DRAWS} draws per seed count")
    parser.add_argument("--seeds", type=seed_counts, default="2-16",
                        help="seed counts: a range '2-16' (stopped 2 counts after the known-noise power reaches the "
                             "target) or a list '6,7,8' (all of them)")
    parser.add_argument("--target", type=float, default=TARGET, help="the power the chosen count must reach")
    parser.add_argument("--noise-sd", type=float, help="one seed's test-error sd at every point, instead of the run's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file (default benchmarks/seed-power-<experiment>.json)")
    args = parser.parse_args(argv)
    run = load_run(args.run)
    cut = slices(run.result, run.config)[args.slice]
    n_test = run.inputs.n_test
    sd, dof, source = seed_noise(cut.test_error, n_test, args.noise_sd)
    draws = QUICK_DRAWS if args.quick else args.draws
    load_before, start = os.getloadavg(), time.perf_counter()
    counts, is_range = args.seeds
    rows = power_by_seeds(cut, run.config, n_test, sd, dof, n_draws=draws, seed=args.seed, counts=counts,
                          target=args.target, beyond=2 if is_range else None)
    seconds = time.perf_counter() - start
    chosen, pessimistic = chosen_seeds(rows, args.target), chosen_seeds(rows, args.target, "redrawn")
    rises = _rises(cut, run.config, n_test)
    print(f"{args.run} ({run.name}{', ' + str(cut.fixed) if cut.fixed else ''}): {cut.test_error.shape[0]} seeds, "
          f"rises {' and '.join(f'{r:.4f}' for r in rises) if rises else 'none'}; noise: {source}")
    print("\n| seeds | height (se) | power, noise known | power, noise redrawn | median p (known) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['n_seeds']} | {r.get('height_se', float('nan')):.1f} | {r['power_known']:.1%} | "
              f"{r['power_redrawn']:.1%} | {_p(r['median_p_known'])} |")
    print(f"\nsmallest seed count with >= {args.target:.0%} power: {chosen} (noise known), {pessimistic} (redrawn); "
          f"{draws} draws each, {seconds:.0f} s")
    out = pathlib.Path(args.out or f"benchmarks/seed-power-{run.name}.json")
    out.write_text(json.dumps({
        "run": str(args.run), "experiment": run.name, "slice": cut.fixed, "x": cut.x.tolist(),
        "run_seeds": int(cut.test_error.shape[0]), "mean": seed_stats(cut.test_error)[0].tolist(),
        "sd": sd.tolist(), "noise": source, "dof": dof, "rises": rises, "target": args.target, "rows": rows,
        "chosen_seeds": chosen, "chosen_seeds_redrawn": pessimistic, "draws": draws, "seed": args.seed,
        "seconds": seconds,
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "load_before": load_before,
                    "load_after": os.getloadavg(), "python": sys.version.split()[0]},
    }, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
