"""Per-training-seed deltas for every metric, and the pre-registered contrasts tested over seeds.

Within a training seed the prompt is the unit: a cell's clips are averaged per prompt, the paired
prompts' deltas averaged into one number per seed. Across seeds, the seed is the unit of a
recipe claim: `seed_test` (paired t over seeds) for a difference, `tost` against the declared
margin for an equivalence. Holm runs over the primary family only; secondary contrasts are
reported with their own family and say so.

Metrics of a cell (``OUT/samples/<arm>/seed<k>/eval/``): ``clap_score`` and ``reward``
(clips.csv), ``label`` (labels.json), the judge's ``instrument``, ``tempo_band``, ``mode`` hits and
``instrument_margin``, ``mode_margin`` (judge.csv), and ``fad_clap`` (one FAD per cell against the
reference: a set metric, so its per-seed delta is the difference of the two cells' FADs).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from scoreaware.evaluate.adherence import read_judge_csv
from scoreaware.evaluate.compare import Run, load_run, reference_of
from scoreaware.evaluate.embeddings import load_reference
from scoreaware.evaluate.frechet import Stats, frechet_from_stats
from scoreaware.evaluate.power import mde, seed_test, tost
from scoreaware.evaluate.stats import holm, prompt_means
from scoreaware.schemas.fields import CLAP_SCORE, REWARD

# contrast metric name → the column of a cell's per-clip table
CLIP_METRICS = {CLAP_SCORE: CLAP_SCORE, REWARD: REWARD, "label": "label_hit",
                "instrument": "hit_instrument", "tempo_band": "hit_tempo_band", "mode": "hit_mode",
                "instrument_margin": "instrument_margin", "mode_margin": "mode_margin"}
SET_METRICS = ("fad_clap",)
METRICS = (*CLIP_METRICS, *SET_METRICS)


def cell_clips(run: Run) -> dict[tuple[str, int], dict]:
    """(prompt id, sampling seed) → {metric column: value} of one scored cell (clips.csv, labels.json,
    judge.csv merged by clip id)."""
    folder = run.path
    labels_file = Path(folder) / "eval" / "labels.json"
    labels = json.loads(labels_file.read_text()) if labels_file.is_file() else {}
    judged = read_judge_csv(Path(folder))
    out = {}
    for key, row in run.clips.items():
        values = {CLAP_SCORE: row.get(CLAP_SCORE), REWARD: row.get(REWARD),
                  "label_hit": float(labels[row["id"]]) if row["id"] in labels else None}
        for column in ("hit_instrument", "hit_tempo_band", "hit_mode", "instrument_margin", "mode_margin"):
            found = judged.get(row["id"], {}).get(column)
            values[column] = float(found) if found not in (None, "") else None
        out[key] = values
    return out


def prompt_delta(treatment: dict, control: dict, column: str) -> float | None:
    """Mean over prompts of the per-prompt mean delta of `column`, clips paired by (prompt, seed)."""
    keys = [k for k, row in treatment.items()
            if k in control and row.get(column) is not None and control[k].get(column) is not None]
    return mean_of_prompts([k[0] for k in keys], [treatment[k][column] - control[k][column] for k in keys])


def prompt_mean(cell: dict, column: str) -> float | None:
    """Mean over prompts of the per-prompt mean of `column` in one cell (None when no clip has it)."""
    return mean_of_prompts([k[0] for k in cell], [row.get(column) for row in cell.values()])


def mean_of_prompts(prompts: list[str], values: list[float | None]) -> float | None:
    """Clips averaged within each prompt (`evaluate.stats.prompt_means`), then prompts averaged."""
    means = prompt_means(prompts, values)
    return float(np.mean(list(means.values()))) if means else None


def load_cells(arms: dict[str, dict[int, Path]]) -> dict[tuple[str, int], tuple[Run, dict]]:
    """(arm, training seed) → (its scored run, its per-clip table): every cell read once for the
    deltas and the means."""
    cells = {}
    for name, folders in arms.items():
        for seed, folder in folders.items():
            run = load_run(folder)
            cells[(name, seed)] = (run, cell_clips(run))
    return cells


def cell_fad(run: Run, reference: Stats) -> float:
    return frechet_from_stats(Stats.of(np.stack([run.clap[k] for k in sorted(run.clap)])), reference).value


def seed_deltas(arms: dict[str, dict[int, Path]], pairs: list[tuple[str, str]],
                cells: dict[tuple[str, int], tuple[Run, dict]] | None = None) -> list[dict]:
    """One row per (treatment, control, training seed, metric): the seed's prompt-level delta
    (`cells`: `load_cells(arms)`, read here when not given)."""
    cells = cells if cells is not None else load_cells(arms)
    runs = {key: run for key, (run, _) in cells.items()}
    tables = {key: table for key, (_, table) in cells.items()}
    reference = load_reference(reference_of(next(iter(runs.values()))))[0]["clap"].stats
    fads: dict[tuple[str, int], float] = {}
    rows = []
    for treatment, control in dict.fromkeys(pairs):
        if treatment not in arms or control not in arms:
            continue
        for seed in sorted(set(arms[treatment]) & set(arms[control])):
            a, b = tables[(control, seed)], tables[(treatment, seed)]
            for metric, column in CLIP_METRICS.items():
                delta = prompt_delta(b, a, column)
                if delta is not None:
                    rows.append({"treatment": treatment, "control": control, "training_seed": seed,
                                 "metric": metric, "delta": delta})
            for name in (treatment, control):
                if (name, seed) not in fads:
                    fads[(name, seed)] = cell_fad(runs[(name, seed)], reference)
            rows.append({"treatment": treatment, "control": control, "training_seed": seed, "metric": "fad_clap",
                         "delta": fads[(treatment, seed)] - fads[(control, seed)]})
    return rows


def arm_means(arms: dict[str, dict[int, Path]],
              cells: dict[tuple[str, int], tuple[Run, dict]] | None = None) -> list[dict]:
    """One row per (arm, training seed, metric): the cell's prompt-level mean (what each arm reached,
    beside the deltas; `cells`: `load_cells(arms)`, read here when not given)."""
    cells = cells if cells is not None else load_cells(arms)
    rows = []
    for name, folders in arms.items():
        for seed in sorted(folders):
            for metric, column in CLIP_METRICS.items():
                value = prompt_mean(cells[(name, seed)][1], column)
                if value is not None:
                    rows.append({"arm": name, "training_seed": seed, "metric": metric, "value": value})
    return rows


def format_arm_means(rows: list[dict], metrics: tuple[str, ...] = ("instrument", "tempo_band", "mode", "label",
                                                                    CLAP_SCORE, REWARD)) -> list[str]:
    """Per arm: each metric's mean over its training seeds, with the SD over seeds."""
    lines = ["each arm's mean over its training seeds (SD over seeds; prompts averaged within a seed):"]
    for name in dict.fromkeys(r["arm"] for r in rows):
        parts = []
        for metric in metrics:
            values = [r["value"] for r in rows if r["arm"] == name and r["metric"] == metric]
            if values:
                sd = f" (SD {np.std(values, ddof=1):.3f})" if len(values) > 1 else ""
                parts.append(f"{metric.replace('_', ' ')} {np.mean(values):.3f}{sd}")
        seeds = len({r["training_seed"] for r in rows if r["arm"] == name})
        lines.append(f"  {name} ({seeds} seed{'s' if seeds != 1 else ''}): " + ", ".join(parts))
    return lines


def write_rows(rows: list[dict], path: Path, fields: list[str]) -> Path:
    """A CSV written atomically (tmp file, then replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def write_seed_deltas(rows: list[dict], path: Path) -> Path:
    return write_rows(rows, path, ["treatment", "control", "training_seed", "metric", "delta"])


def read_seed_deltas(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{**row, "training_seed": int(row["training_seed"]), "delta": float(row["delta"])}
                for row in csv.DictReader(f)]


def deltas_of(rows: list[dict], treatment: str, control: str, metric: str) -> list[float]:
    return [r["delta"] for r in sorted(rows, key=lambda r: r["training_seed"])
            if (r["treatment"], r["control"], r["metric"]) == (treatment, control, metric)]


def contrast_table(contrasts, rows: list[dict], alpha: float = 0.05) -> list[dict]:
    """Each declared contrast tested over training seeds; Holm within the primary and within the
    secondary family; the MDE of the design at the observed seed SD beside each."""
    out = []
    for c in contrasts:
        deltas = deltas_of(rows, c.treatment, c.control, c.metric)
        result = (tost(deltas, c.margin, alpha) if c.claim == "equivalence" else seed_test(deltas)) or {}
        sd = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else None
        out.append({"contrast": c.name, "treatment": c.treatment, "control": c.control, "metric": c.metric,
                    "claim": c.claim, "family": "primary" if c.primary else "secondary", "margin": c.margin,
                    "n_seeds": len(deltas), "delta": result.get("delta"), "ci": result.get("ci"),
                    "p": result.get("p"), "sd": sd, "equivalent": result.get("equivalent"), "test": result.get("test"),
                    "no_spread": bool(result.get("no_spread")), "seed_deltas": deltas})
    for family in ("primary", "secondary"):
        members = [r for r in out if r["family"] == family and r["claim"] == "difference"]
        for row, adjusted in zip(members, holm([r["p"] for r in members])):
            row["p_holm"] = adjusted
        for row in members:
            row["mde"] = mde(row["n_seeds"], row["sd"], alpha, tests=len(members)) if row["sd"] else None
    for row in out:
        row["verdict"] = verdict(row, alpha)
    return out


def verdict(row: dict, alpha: float = 0.05) -> str:
    """What the contrast decides: a difference, an equivalence, or neither (with why)."""
    if row["p"] is None:
        return "not tested (fewer than 2 training seeds finished)"
    if row.get("no_spread") and not (row["claim"] == "difference" and (row.get("p_holm") or 1.0) < alpha):
        return ("undecided: every training seed gave the same delta, so there is no spread to build an interval "
                "from; run more seeds")
    if row["claim"] == "equivalence":
        return (f"equivalent within ±{row['margin']:g}" if row["equivalent"] else
                f"not shown equivalent: the {100 * (1 - 2 * alpha):.0f} % interval reaches past ±{row['margin']:g}")
    if (row.get("p_holm") or 1.0) < alpha:
        return "difference (Holm within its family)"
    low, high = row["ci"]
    if -row["margin"] < low and high < row["margin"]:
        return f"no difference larger than the margin ±{row['margin']:g} (the interval excludes it)"
    return "undecided: not significant, and the interval still holds the margin"


def format_contrasts(table: list[dict]) -> list[str]:
    lines = ["pre-registered contrasts (training seed as the unit; Holm within each family):"]
    for r in table:
        if r["delta"] is None:
            lines.append(f"  {r['contrast']} ({r['family']}): {r['verdict']}")
            continue
        ci = r["ci"]
        p = f"p {r['p']:.3g}" + (f", Holm {r['p_holm']:.3g}" if r.get("p_holm") is not None else "")
        mde_text = f", MDE {r['mde']:.3g}" if r.get("mde") else ""
        lines.append(f"  {r['contrast']} ({r['family']}, {r['metric']}: {r['treatment']} − {r['control']}): "
                     f"{r['delta']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}] over {r['n_seeds']} seeds ({p}{mde_text}) "
                     f"→ {r['verdict']}")
    return lines
