"""`scoreaware experiment plan FILE`: what the design can detect, before anything trains.

For each pre-registered contrast: the unit (training seeds, or prompts within one seed), n, the
SD of one unit's delta (declared in the file, or from a pilot: a previous run's
``seed_deltas.csv``), the minimum detectable effect at the target power with Holm's family size,
and the units a margin-sized effect needs. A metric that cannot reach significance at the
design's size (FAD's sign flips over P prompts cannot go below 2/2^P) is flagged and belongs out
of the family. And what the design costs here (from the pilot's own cell times when it has them),
with the command to run part of it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from scoreaware.core.errors import StageError
from scoreaware.evaluate.power import can_reach, mde, units_needed
from scoreaware.evaluate.stats import permutation_floor
from scoreaware.experiment.contrasts import METRICS, deltas_of, read_seed_deltas
from scoreaware.experiment.spec import load_experiment
from scoreaware.train.config import resolve
from scoreaware.train.prompts import read_prompts

# measured on this kind of machine (README, docs/results.md): a tiny run's step with batch 16 on
# 2 cores, one run at a time; a 10 s evaluation clip generated (25 steps), decoded and scored
STEPS_PER_SECOND = 2.5
SECONDS_PER_CLIP = 1.2


def tost_units(margin: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units TOST needs to show equivalence within ±`margin` when the true delta is 0 (normal
    approximation, Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*, 3.2.3)."""
    z = scipy_stats.norm.ppf(1 - alpha) + scipy_stats.norm.ppf(1 - (1 - power) / 2)
    return max(2, math.ceil((z * sd / margin) ** 2) + 1)


def plan_experiment(path: Path, pilot: Path | None = None, alpha: float = 0.05, power: float = 0.8,
                    resamples: int = 2000) -> tuple[dict, list[str]]:
    """(payload, lines) of the plan of the experiment file `path`."""
    experiment = load_experiment(path)
    pilot_rows = []
    if pilot is not None:
        source = pilot / "seed_deltas.csv" if pilot.is_dir() else pilot
        if not source.is_file():
            raise StageError(f"{pilot}: no seed_deltas.csv (an `experiment run` output with two or more seeds)")
        pilot_rows = read_seed_deltas(source)
    prompts = len(read_prompts(experiment.evaluation.prompts))
    n = len(experiment.training_seeds) if experiment.unit == "training_seed" else prompts
    by_name = {arm.name: arm for arm in experiment.arms}
    family = {name: [c for c in experiment.contrasts if c.primary == (name == "primary") and c.claim == "difference"]
              for name in ("primary", "secondary")}
    rows, lines = [], [f"unit: {experiment.unit.replace('_', ' ')} (n = {n}); {prompts} prompts × "
                       f"{experiment.evaluation.seeds} clips within each; α {alpha}, power {power}; Holm over "
                       f"{len(family['primary'])} primary and {len(family['secondary'])} secondary difference "
                       "contrasts"]
    for c in experiment.contrasts:
        if c.metric not in METRICS:
            raise StageError(f"{path}: contrast {c.name!r}: metric {c.metric!r} is not one of {', '.join(METRICS)}")
        sd, source = c.sd, "declared"
        if sd is None and pilot_rows:
            pilot_deltas = deltas_of(pilot_rows, c.treatment, c.control, c.metric)
            if len(pilot_deltas) >= 2:
                sd, source = float(np.std(pilot_deltas, ddof=1)), f"pilot ({len(pilot_deltas)} seeds)"
        tests = max(1, len(family["primary" if c.primary else "secondary"]))
        # over training seeds, a contrast pairs the seeds both of its arms run
        paired = len(set(experiment.seeds_of(by_name[c.treatment])) & set(experiment.seeds_of(by_name[c.control]))) \
            if experiment.unit == "training_seed" else prompts
        row = {"contrast": c.name, "metric": c.metric, "claim": c.claim, "family": "primary" if c.primary else
               "secondary", "n": paired, "margin": c.margin, "sd": sd, "sd_source": source if sd else None,
               "tests": tests, "flag": None}
        if c.metric == "fad_clap" and experiment.unit == "prompt":
            floor = permutation_floor(prompts, resamples)
            if not can_reach(floor, alpha, tests):
                row["flag"] = (f"FAD's sign-flip test over {prompts} prompts cannot go below p = {floor:.3g} > "
                               f"α/{tests}: keep it out of the family")
        if sd is None:
            row["flag"] = row["flag"] or "no variance known: declare sd in the contrast or pass --pilot RUN"
        elif c.claim == "equivalence":
            row["needed"] = tost_units(c.margin, sd, alpha, power)
        else:
            row["mde"] = mde(paired, sd, alpha, power, tests)
            row["needed"] = units_needed(c.margin, sd, alpha, power, tests)
        rows.append(row)
        lines.append(plan_line(row, experiment.unit))
    measured = measured_seconds(pilot) if pilot is not None else {}
    seconds = estimate_seconds(experiment, prompts, measured=measured)
    estimate = {"hours": round(seconds / 3600, 2), "cells": sum(len(experiment.seeds_of(a)) for a in experiment.arms),
                "measured_arms": sorted(measured.keys() & {a.name for a in experiment.arms})}
    basis = (f"the pilot's mean time per cell for {len(estimate['measured_arms'])} of {len(experiment.arms)} arms"
             if estimate["measured_arms"] else "")
    if len(estimate["measured_arms"]) < len(experiment.arms):
        basis += ("; " if basis else "") + f"{STEPS_PER_SECOND} steps/s, {SECONDS_PER_CLIP} s a clip on 2 cores"
    lines.append(f"cost here: about {estimate['hours']:.1f} h for {estimate['cells']} arm × seed cells ({basis})")
    if seconds > 2 * 3600:
        lines.append("  over 2 hours: run part of it with `experiment run FILE -o OUT --seeds 0,1,2`, then the same "
                     "command with more seeds; finished cells are kept and the table uses every one")
    return {"unit": experiment.unit, "n": n, "prompts": prompts, "contrasts": rows, "estimate": estimate}, lines


def measured_seconds(run: Path) -> dict[str, float]:
    """{arm: mean seconds of its finished cells} from a previous run's ``status.json`` ({} without one)."""
    status = (run if run.is_dir() else run.parent) / "status.json"
    if not status.is_file():
        return {}
    times: dict[str, list[float]] = {}
    for cell, entry in json.loads(status.read_text()).items():
        if entry.get("state") == "done" and entry.get("seconds"):
            times.setdefault(cell.rsplit("/", 1)[0], []).append(float(entry["seconds"]))
    return {arm: float(np.mean(values)) for arm, values in times.items()}


def estimate_seconds(experiment, prompts: int | None = None, seeds: tuple[int, ...] | None = None,
                     measured: dict[str, float] | None = None) -> float:
    """What training, generating and scoring every cell (of `seeds`, default all) costs here: an arm's
    mean measured cell time where a pilot has one, else its steps and clips at this machine's rates
    (a post-training arm's own steps and candidates are not counted then)."""
    prompts = prompts if prompts is not None else len(read_prompts(experiment.evaluation.prompts))
    total = 0.0
    for arm in experiment.arms:
        count = len([s for s in experiment.seeds_of(arm) if seeds is None or s in seeds])
        if measured and arm.name in measured:
            total += count * measured[arm.name]
            continue
        steps = resolve(experiment.preset, overrides={**experiment.base, **arm.set, "manifest": "-"}).steps \
            if arm.after is None else 0
        total += count * (prompts * experiment.evaluation.seeds * SECONDS_PER_CLIP + steps / STEPS_PER_SECOND)
    return total


def plan_line(row: dict, unit: str) -> str:
    units = "seeds" if unit == "training_seed" else "prompts"
    head = f"{row['contrast']} ({row['family']}, {row['metric']}, {row['claim']}; margin {row['margin']:g})"
    if row["sd"] is None:
        return f"{head}: {row['flag']}"
    text = f"{head}: SD of a unit's delta {row['sd']:.4g} ({row['sd_source']})"
    if row["claim"] == "equivalence":
        text += f"; TOST needs about {row['needed']} {units} (n = {row['n']})"
    else:
        needed = row["needed"] if row["needed"] is not None else "more than 100000"
        text += (f"; MDE at n = {row['n']}: {row['mde']:.4g} (Holm over {row['tests']}); a margin-sized effect needs "
                 f"{needed} {units}")
    if row["flag"]:
        text += f"; ⚠ {row['flag']}"
    return text
