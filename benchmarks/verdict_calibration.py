"""The specification of the double-descent verdict: its false-positive rate on peak-free curves, its power on
curves with a real peak, for the old rule and the candidate rules.

    PYTHONPATH=. python benchmarks/verdict_calibration.py            # the full study (~20 min on 2 cores)
    PYTHONPATH=. python benchmarks/verdict_calibration.py --quick    # a few draws a setting (minutes)

Null curves (no peak), on K log-spaced points x in [1, 1000], the interpolation threshold at the middle one and
the peak looked for within a factor PEAK_WINDOW of it, as `ddjax.analysis.analyze` does:
  flat      test error 0.4 everywhere;
  falling   0.5 falling linearly in log x to 0.3;
  kink      0.5 falling to 0.3 at the threshold, flat after it;
  u_shape   falling to 0.3 at the threshold, then rising by 0.05 (classical over-fitting, no second descent).
S seeds in {2, 3, 5, 10}, K in {10, 20, 40}, seed noise sd in {0.002, 0.01, 0.04, 0.2} (1% to 100% of the
curves' 0.2 drop), of three kinds: iid per point; hetero (3x larger at the threshold); shared (half the variance
a per-seed offset common to every point, as members of one seed share batches and label noise).

Power curves, a bump of height h seed-mean standard errors (se = sd / sqrt(S)) at the threshold, iid noise sd
0.01, in three families:
  plateau   30 points; 0.5 falling linearly in log x to 0.3 at x = threshold / 4, flat after; the bump Gaussian in
            log x with a standard deviation of one grid step (0.10 decade; full width at half height 0.24 decade);
  falling   25 points; a baseline still falling through the bump: linear in log x over the whole range, 3 se a
            decade (0.40 at the threshold); the bump Gaussian in log x with a full width at half height of a third
            of a decade (standard deviation 0.142 decade, 1.13 grid steps). The target family: `raw_descent`
            finds 82% at 6 se and 40% at 4 with 5 seeds here (200 draws), near an independent study's 82% and 38%
            for such curves;
  steep     as falling, 6 se a decade: a stress family, where the bump barely rises above its left flank
            (3.6 se above the lowest grid point left of it at h = 6).

Rules: `old` (each rise > max(min_rise, 2 combined stderrs at the chosen points)),
`old_bootstrap` (the old rule's rises > min_rise in >= 90% of seed resamples), `flat_null` (`raw_descent`
with a flat null curve), `crossfit` (peak and minima chosen on half the seeds, both rises tested by one-sided
paired t tests on the other half, 2 x the median p over up to 10 splits; needs >= 4 seeds), `raw_descent`
(`peak_test(..., widths=(1,))`: the simulated valley null, the largest descent of the mean alone) and `calibrated`
(`ddjax.analysis.verdict.peak_test` as it is: the largest descents of the mean and of its 3-point running mean,
combined by their smallest simulated tail share). After the false-positive table, the settings where each
calibrated rule erred most often are measured again with more draws (--recheck), to tell chance from a real
excess. `--sides left` runs the false-positive study of the rise test ("more data hurts", monotone curves) of the
calibrated rules instead, on the non-increasing shapes. Writes JSON (--out).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
from scipy import stats

from ddjax.analysis import DEFAULT_MIN_RISE, PEAK_WINDOW
from ddjax.analysis.verdict import ALPHA, descents, peak_test

SHAPES = ("flat", "falling", "kink", "u_shape")
SEEDS = (2, 3, 5, 10)
POINTS = (10, 20, 40)
NOISES = (0.002, 0.01, 0.04, 0.2)
KINDS = ("iid", "hetero", "shared")
POWER_SEEDS = (3, 5, 10)
POWER_HEIGHTS = (2, 4, 6, 8, 10, 12)
POWER_NOISE = 0.01
# family: (grid points, baseline slope in seed-mean standard errors a decade; None: the plateau curve)
POWER_FAMILIES = {"plateau": (30, None), "falling": (25, 3.0), "steep": (25, 6.0)}
BUMP_FWHM_DECADES = 1 / 3  # the falling families' bump: full width at half height, in decades of x
CALIBRATED_RULES = ("raw_descent", "calibrated")


def grid(k: int) -> tuple[np.ndarray, float, np.ndarray]:
    """(x, threshold, candidate mask)."""
    x = np.geomspace(1, 1000, k)
    threshold = x[k // 2]
    return x, threshold, (x >= threshold / PEAK_WINDOW) & (x <= threshold * PEAK_WINDOW)


def null_curve(shape: str, x: np.ndarray, threshold: float) -> np.ndarray:
    t = np.log(x / x[0]) / np.log(x[-1] / x[0])
    t_thr = np.log(threshold / x[0]) / np.log(x[-1] / x[0])
    if shape == "flat":
        return np.full(x.shape, 0.4)
    if shape == "falling":
        return 0.5 - 0.2 * t
    fall = 0.5 - 0.2 * np.minimum(t / t_thr, 1.0)
    if shape == "kink":
        return fall
    return fall + 0.05 * np.maximum(t - t_thr, 0) / (1 - t_thr)  # u_shape


def power_curve(family: str, x: np.ndarray, threshold: float, height: float, stderr: float) -> np.ndarray:
    """A family's curve (module docstring) with a bump of `height` (in error units) at the threshold; `stderr` is
    the seed-mean standard error, the unit of the falling families' slope."""
    slope = POWER_FAMILIES[family][1]
    if slope is None:
        t = np.log(x / x[0]) / np.log(x[-1] / x[0])
        t_flat = np.log(threshold / PEAK_WINDOW / x[0]) / np.log(x[-1] / x[0])
        step = np.log(x[1] / x[0])
        return 0.5 - 0.2 * np.minimum(t / t_flat, 1.0) + height * np.exp(-0.5 * (np.log(x / threshold) / step) ** 2)
    decades = np.log10(x / threshold)
    sigma = BUMP_FWHM_DECADES / (2 * np.sqrt(2 * np.log(2)))
    return 0.4 - slope * stderr * decades + height * np.exp(-0.5 * (decades / sigma) ** 2)


def draw(rng, curve, n_seeds, sd, kind, x, threshold) -> np.ndarray:
    """(S, K) errors: curve + seed noise of the given kind."""
    noise = rng.standard_normal((n_seeds, curve.size))
    if kind == "hetero":
        scale = 1 + 2 * np.exp(-0.5 * (np.log(x / threshold) / 0.5) ** 2)
        return curve + sd * scale * noise
    if kind == "shared":
        return curve + sd * np.sqrt(0.5) * (noise + rng.standard_normal((n_seeds, 1)))
    return curve + sd * noise


def _choose(mean, candidates):
    d = np.where(candidates, descents(mean), -np.inf)
    if not np.isfinite(d).any():
        return None
    peak = int(np.argmax(d))
    ks = np.arange(mean.size)
    left = int(np.argmin(np.where(ks < peak, mean, np.inf))) if peak > 0 else None
    right = int(np.argmin(np.where(ks > peak, mean, np.inf))) if peak < mean.size - 1 else None
    return peak, left, right


def old_rule(errors, candidates, min_rise=DEFAULT_MIN_RISE) -> bool:
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(errors.shape[0])
    chosen = _choose(mean, candidates)
    if chosen is None or None in chosen:
        return False
    peak, left, right = chosen
    return all(mean[peak] - mean[i] > max(min_rise, 2 * np.hypot(se[peak], se[i])) for i in (left, right))


def old_bootstrap(errors, candidates, rng, n_resamples=100, min_rise=DEFAULT_MIN_RISE, confidence=0.9) -> bool:
    rows = rng.integers(0, errors.shape[0], size=(n_resamples, errors.shape[0]))
    hits = 0
    for r in rows:
        mean = errors[r].mean(axis=0)
        chosen = _choose(mean, candidates)
        if chosen is not None and None not in chosen:
            peak, left, right = chosen
            hits += min(mean[peak] - mean[left], mean[peak] - mean[right]) > min_rise
    return hits / n_resamples >= confidence


def crossfit(errors, candidates, rng, n_splits=10, min_rise=0.0) -> bool | None:
    s = errors.shape[0]
    if s < 4:
        return None
    p_values = []
    for _ in range(n_splits):
        order = rng.permutation(s)
        choose, measure = order[: s // 2], order[s // 2:]
        chosen = _choose(errors[choose].mean(axis=0), candidates)
        if chosen is None or None in chosen:
            p_values.append(1.0)
            continue
        peak, left, right = chosen
        ps = []
        for i in (left, right):
            rise = errors[measure, peak] - errors[measure, i]
            sd = rise.std(ddof=1)
            t = (rise.mean() - min_rise) / (sd / np.sqrt(rise.size)) if sd > 0 else np.inf * np.sign(rise.mean())
            ps.append(float(stats.t.sf(t, rise.size - 1)))
        p_values.append(max(ps))
    return bool(min(1.0, 2 * np.median(p_values)) <= ALPHA)


def flat_fit(y, w):
    return np.full(y.shape, np.sum(w * y) / np.sum(w))


def decide(rule, errors, candidates, rng, min_rise, sides="both"):
    if rule == "old":
        return old_rule(errors, candidates)
    if rule == "old_bootstrap":
        return old_bootstrap(errors, candidates, rng)
    if rule == "crossfit":
        return crossfit(errors, candidates, rng, min_rise=min_rise)
    if rule == "flat_null":
        return peak_test(errors, candidates, min_rise=min_rise, null_fit=flat_fit, widths=(1,)).significant
    if rule == "raw_descent":
        return peak_test(errors, candidates, min_rise=min_rise, widths=(1,), sides=sides).significant
    if rule == "calibrated":
        return peak_test(errors, candidates, min_rise=min_rise, sides=sides).significant
    raise ValueError(f"unknown rule {rule!r}")


def false_positives(rules, draws, seed, min_rise, settings, sides="both"):
    rng = np.random.default_rng(seed)
    rows = []
    for shape, n_seeds, k, sd, kind in settings:
        x, threshold, candidates = grid(k)
        curve = null_curve(shape, x, threshold)
        data = [draw(rng, curve, n_seeds, sd, kind, x, threshold) for _ in range(draws)]
        row = {"shape": shape, "n_seeds": n_seeds, "n_points": k, "noise_sd": sd, "noise_kind": kind,
               "draws": draws}
        for rule in rules:
            # The bootstrap is slow: a quarter of the draws.
            used = data[: max(1, draws // 4)] if rule == "old_bootstrap" else data
            calls = [decide(rule, e, candidates, rng, min_rise, sides) for e in used]
            row[rule] = None if calls[0] is None else float(np.mean(calls))
        rows.append(row)
    return rows


def power(rules, draws, seed, min_rise, families=tuple(POWER_FAMILIES), heights=POWER_HEIGHTS, seeds=POWER_SEEDS):
    rng = np.random.default_rng(seed)
    rows = []
    for family, n_seeds, height in itertools.product(families, seeds, heights):
        x, threshold, candidates = grid(POWER_FAMILIES[family][0])
        stderr = POWER_NOISE / np.sqrt(n_seeds)
        curve = power_curve(family, x, threshold, height * stderr, stderr)
        data = [draw(rng, curve, n_seeds, POWER_NOISE, "iid", x, threshold) for _ in range(draws)]
        row = {"family": family, "n_seeds": n_seeds, "height_stderr": height, "draws": draws}
        for rule in rules:
            calls = [decide(rule, e, candidates, rng, min_rise) for e in data]
            row[rule] = None if calls[0] is None else float(np.mean(calls))
        rows.append(row)
    return rows


def recheck(rules, null_rows, n_worst, draws, seed, min_rise, sides="both"):
    """The `n_worst` settings with the most false positives of each rule, measured again for every rule with
    `draws` fresh draws."""
    settings = []
    for rule in rules:
        rated = sorted((r for r in null_rows if r.get(rule) is not None), key=lambda r: -r[rule])
        for r in rated[:n_worst]:
            key = tuple(r[k] for k in ("shape", "n_seeds", "n_points", "noise_sd", "noise_kind"))
            if key not in settings:
                settings.append(key)
    return false_positives(rules, draws, seed, min_rise, settings, sides)


def margins(rows, rule):
    """FPR by each factor's level (pooled over the others) and the largest single-setting rate."""
    out = {}
    for factor in ("shape", "n_seeds", "n_points", "noise_sd", "noise_kind"):
        levels = sorted({r[factor] for r in rows}, key=str)
        out[factor] = {str(level): float(np.mean([r[rule] for r in rows if r[factor] == level and r[rule] is not None]
                                                 or [np.nan])) for level in levels}
    rated = [r for r in rows if r[rule] is not None]
    worst = max(rated, key=lambda r: r[rule]) if rated else None
    out["overall"] = float(np.mean([r[rule] for r in rated])) if rated else None
    out["worst_setting"] = worst
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few draws per setting")
    parser.add_argument("--draws", type=int, default=20, help="null draws per setting")
    parser.add_argument("--power-draws", type=int, default=200, help="draws per power setting")
    parser.add_argument("--rules", default="old,old_bootstrap,flat_null,crossfit,raw_descent,calibrated",
                        help="rules of the false-positive study")
    parser.add_argument("--power-rules", default=",".join(CALIBRATED_RULES), help="rules of the power study")
    parser.add_argument("--families", default=",".join(POWER_FAMILIES), help="power families")
    parser.add_argument("--heights", default=",".join(map(str, POWER_HEIGHTS)), help="power heights (stderrs)")
    parser.add_argument("--recheck", type=int, default=3, help="worst settings per calibrated rule measured again")
    parser.add_argument("--recheck-draws", type=int, default=400, help="draws of each rechecked setting")
    parser.add_argument("--min-rise", type=float, default=0.0, help="min_rise of the calibrated rules")
    parser.add_argument("--kinds", default=",".join(KINDS), help="noise kinds of the null settings")
    parser.add_argument("--sides", default="both", choices=("both", "left"),
                        help="left: the rise test of the calibrated rules on the non-increasing null shapes")
    parser.add_argument("--no-null", action="store_true", help="power only")
    parser.add_argument("--no-power", action="store_true", help="false positives only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/verdict_calibration.json")
    args = parser.parse_args()
    rules, power_rules = args.rules.split(","), args.power_rules.split(",")
    if args.sides == "left" and not set(rules) <= set(CALIBRATED_RULES):
        parser.error(f"--sides left tests only the rules {', '.join(CALIBRATED_RULES)}")
    draws, power_draws, recheck_draws = (5, 20, 40) if args.quick else (args.draws, args.power_draws,
                                                                        args.recheck_draws)
    shapes = SHAPES if args.sides == "both" else tuple(s for s in SHAPES if s != "u_shape")
    settings = list(itertools.product(shapes, SEEDS, POINTS, NOISES, args.kinds.split(",")))
    start = time.perf_counter()
    null_rows, summary, rechecked = [], {}, []
    if not args.no_null:
        null_rows = false_positives(rules, draws, args.seed, args.min_rise, settings, args.sides)
        summary = {rule: margins(null_rows, rule) for rule in rules}
        print_false_positives(rules, summary, null_rows, len(settings), draws, args.min_rise)
        checked = [r for r in rules if r in CALIBRATED_RULES]
        if checked and args.recheck > 0:
            rechecked = recheck(checked, null_rows, args.recheck, recheck_draws, args.seed + 2, args.min_rise,
                                args.sides)
            print(f"\nthe worst settings again, {recheck_draws} fresh draws each:")
            print("\n| setting | " + " | ".join(f"{r} (study)" for r in checked) + " | "
                  + " | ".join(f"{r} (again)" for r in checked) + " |")
            print("| --- " * (2 * len(checked) + 1) + "|")
            for row in rechecked:
                key = [row[k] for k in ("shape", "n_seeds", "n_points", "noise_sd", "noise_kind")]
                first = next(r for r in null_rows if [r[k] for k in ("shape", "n_seeds", "n_points", "noise_sd",
                                                                    "noise_kind")] == key)
                print(f"| {', '.join(map(str, key))} | " + " | ".join(f"{first[r]:.0%}" for r in checked) + " | "
                      + " | ".join(f"{row[r]:.1%}" for r in checked) + " |")
    power_rows = [] if args.no_power else power(power_rules, power_draws, args.seed + 1, args.min_rise,
                                                families=args.families.split(","),
                                                heights=tuple(_number(h) for h in args.heights.split(",")))
    if power_rows:
        print_power(power_rules, power_rows, power_draws)
    seconds = time.perf_counter() - start
    print(f"\n{seconds:.0f} s")
    with open(args.out, "w") as f:
        json.dump({"rules": rules, "power_rules": power_rules, "sides": args.sides, "min_rise": args.min_rise,
                   "seed": args.seed,
                   "null": null_rows, "null_summary": summary, "recheck": rechecked, "power": power_rows,
                   "seconds": seconds}, f, indent=1)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def print_false_positives(rules, summary, null_rows, n_settings, draws, min_rise) -> None:
    print(f"false positives on peak-free curves ({n_settings} settings x {draws} draws; "
          f"old_bootstrap on a quarter of them), min_rise of the calibrated rules {min_rise:g}:")
    for factor in ("shape", "n_seeds", "n_points", "noise_sd", "noise_kind"):
        levels = list(summary[rules[0]][factor])
        print(f"\n| {factor} | " + " | ".join(rules) + " |")
        print("| --- " * (len(rules) + 1) + "|")
        for level in levels:
            print(f"| {level} | " + " | ".join(f"{summary[r][factor][level]:.1%}" for r in rules) + " |")
    print("\n| overall | " + " | ".join(f"{summary[r]['overall']:.1%}" if summary[r]["overall"] is not None
                                       else "-" for r in rules) + " |")
    for rule in rules:
        worst = summary[rule]["worst_setting"]
        if worst:
            print(f"worst setting for {rule}: {worst[rule]:.0%} at " + ", ".join(
                f"{k}={worst[k]}" for k in ("shape", "n_seeds", "n_points", "noise_sd", "noise_kind")))
        counts = [round(r[rule] * r["draws"]) for r in null_rows if r[rule] is not None and rule != "old_bootstrap"]
        if counts:
            print(f"settings with 0, 1, 2, ... false positives for {rule}: {np.bincount(counts).tolist()}")


def print_power(rules, power_rows, draws) -> None:
    print(f"\npower: detection rate against the peak height in seed-mean standard errors (noise sd {POWER_NOISE}, "
          f"{draws} draws):")
    for rule in rules:
        print(f"\n{rule}:\n\n| family | seeds | " + " | ".join(f"h = {h}" for h in POWER_HEIGHTS) + " |")
        print("| --- " * (len(POWER_HEIGHTS) + 2) + "|")
        for family, n_seeds in dict.fromkeys((r["family"], r["n_seeds"]) for r in power_rows):
            cells = {r["height_stderr"]: r[rule] for r in power_rows if (r["family"], r["n_seeds"]) == (family, n_seeds)}
            print(f"| {family} | {n_seeds} | " + " | ".join("-" if cells.get(h) is None else f"{cells[h]:.0%}"
                                                            for h in POWER_HEIGHTS) + " |")


if __name__ == "__main__":
    main()
