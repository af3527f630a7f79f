"""Attribute adherence of generated clips, as the independent judge hears them, beside its ceiling.

A prompt of the world's evaluation set carries the attributes it asks for (``instrument``,
``tempo_band``, ``mode``: extra columns of the prompts file, kept by `eval generate` in each
row's ``attributes``). The judge (`evaluate.judge`) hears each clip; a clip adheres to an
attribute when the judge hears the prompted value. Each attribute is reported with:

* its rate over clips and over prompts (clips of a prompt averaged first: the prompt is the unit);
* chance: the rate of always answering the most common prompted value (1/12, 1/3 and 1/2 on the
  balanced 48-prompt set);
* the judge's ceiling: its accuracy on real renders of held-out works (``JUDGE.json``; for mode and
  tempo band its balanced accuracy, the mean of per-class recalls, since the prompt set is balanced);
* the halfway mark between chance and ceiling, and whether the prompt-level rate reaches it.

The continuous per-clip scores beside the 0/1 hits: the instrument margin (probability of the
prompted instrument minus the best other) and the signed mode margin (positive when the judge's
major correlation wins; sign-flipped for a minor prompt, so positive always means "as prompted").
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from scoreaware.core.files import atomic_write_text, save_figure
from scoreaware.core.locations import record
from scoreaware.evaluate.judge import Judge
from scoreaware.evaluate.score_run import read_samples
from scoreaware.schemas.fields import PROMPT_ID

ATTRIBUTES = ("instrument", "tempo_band", "mode")
JUDGE_COLUMNS = ("id", PROMPT_ID, "instrument", "tempo_band", "mode", "heard_instrument", "heard_tempo_band",
                 "heard_tempo_bpm", "heard_mode", "instrument_margin", "mode_margin", "hit_instrument",
                 "hit_tempo_band", "hit_mode")


def judge_clips(judge: Judge, samples: Path, rows: list[dict], progress=None) -> list[dict]:
    """One row of `JUDGE_COLUMNS` per sample row that names its prompt's attributes (others are skipped)."""
    out = []
    for row in rows:
        wanted = row.get("attributes") or {}
        if not all(wanted.get(a) for a in ATTRIBUTES):
            continue
        audio, rate = sf.read(samples / row["path"], dtype="float32", always_2d=True)
        heard = judge.hear(audio.T, rate)
        sign = 1.0 if wanted["mode"] == "major" else -1.0
        out.append({"id": row["id"], PROMPT_ID: str(row[PROMPT_ID]), **{a: wanted[a] for a in ATTRIBUTES},
                    "heard_instrument": heard.instrument, "heard_tempo_band": heard.tempo_band,
                    "heard_tempo_bpm": round(heard.tempo_bpm, 1), "heard_mode": heard.mode,
                    "instrument_margin": round(heard.margin(wanted["instrument"]), 4),
                    "mode_margin": round(sign * heard.mode_margin, 4),
                    "hit_instrument": int(heard.instrument == wanted["instrument"]),
                    "hit_tempo_band": int(heard.tempo_band == wanted["tempo_band"]),
                    "hit_mode": int(heard.mode == wanted["mode"])})
        if progress:
            progress(1)
    return out


def adherence(judged: list[dict], ceilings: dict) -> dict:
    """{attribute: rate over clips and prompts, chance, ceiling, halfway mark, met} plus the margins."""
    if not judged:
        return {}
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    for row in judged:
        by_prompt[row[PROMPT_ID]].append(row)
    found = {"clips": len(judged), "prompts": len(by_prompt)}
    for attribute in ATTRIBUTES:
        prompted = [rows[0][attribute] for rows in by_prompt.values()]
        chance = max(prompted.count(v) for v in set(prompted)) / len(prompted)
        per_prompt = [np.mean([r[f"hit_{attribute}"] for r in rows]) for rows in by_prompt.values()]
        # a balanced prompt set is read against the judge's balanced accuracy (the mean of per-class recalls:
        # its minor-key recall is below its major one), where the card has it
        ceiling = ceilings.get(f"{attribute}_balanced", ceilings.get(attribute))
        halfway = None if ceiling is None else chance + (ceiling - chance) / 2
        rate = float(np.mean(per_prompt))
        found[attribute] = {"rate_clips": float(np.mean([r[f"hit_{attribute}"] for r in judged])),
                            "rate_prompts": rate, "chance": chance, "ceiling": ceiling, "halfway": halfway,
                            "met": None if halfway is None else bool(rate >= halfway),
                            "per_prompt": [float(x) for x in per_prompt]}
    for margin in ("instrument_margin", "mode_margin"):
        per_prompt = [np.mean([r[margin] for r in rows]) for rows in by_prompt.values()]
        found[margin] = {"mean_prompts": float(np.mean(per_prompt))}
    return found


def write_judge_csv(path: Path, judged: list[dict]) -> Path:
    """The per-clip judge table (what `eval compare` and experiments pair across runs)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=JUDGE_COLUMNS)
        writer.writeheader()
        writer.writerows(judged)
    tmp.replace(path)
    return path


def read_judge_csv(samples: Path) -> dict[str, dict]:
    """Clip id → its row of SAMPLES/eval/judge.csv (strings, as written); empty when there is none."""
    path = samples / "eval" / "judge.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def format_adherence(found: dict) -> list[str]:
    """One line per attribute: the rate over prompts, chance, ceiling and the halfway mark."""
    lines = []
    for attribute in ATTRIBUTES:
        item = found.get(attribute)
        if not item:
            continue
        ceiling = "—" if item["ceiling"] is None else f"{item['ceiling']:.3f}"
        halfway = "—" if item["halfway"] is None else f"{item['halfway']:.3f}"
        verdict = "" if item["met"] is None else ("  ✓ halfway" if item["met"] else "  below halfway")
        lines.append(f"{attribute.replace('_', ' ')} heard as prompted: {item['rate_prompts']:.3f} over "
                     f"{found['prompts']} prompts ({found['clips']} clips); chance {item['chance']:.3f}, judge's "
                     f"ceiling on renders {ceiling}, halfway {halfway}{verdict}")
    return lines


def judge_run(samples: Path, judge: str | Path) -> dict:
    """Judge every clip of `samples` (an `eval generate` folder) whose prompt names its attributes;
    writes SAMPLES/eval/judge.csv and judge.json and returns the adherence (empty when no prompt
    names them). Kept apart from `score_run`, which the post-training drivers call: no step that
    selects or trains can reach the judge (the import contract in pyproject.toml)."""
    loaded = Judge(judge)
    judged = judge_clips(loaded, samples, read_samples(samples))
    found = adherence(judged, loaded.ceilings)
    folder = samples / "eval"
    folder.mkdir(exist_ok=True)
    if judged:
        write_judge_csv(folder / "judge.csv", judged)
    recorded, digest = record(str(judge), folder)  # relative to judge.json, with its digest (core.locations)
    atomic_write_text(folder / "judge.json", json.dumps({"judge": recorded, "judge_sha256": digest,
                                                          "ceilings": loaded.ceilings, "adherence": found}, indent=1))
    return found


def adherence_curve(points: list[tuple[float, dict]], ceilings: dict, out: Path, xlabel: str = "training steps"
                    ) -> Path:
    """Plot each attribute's prompt-level adherence (with its 95 % interval over prompts) against
    `points` [(x, adherence of `adherence()` with `per_prompt` rates)], beside chance, the judge's
    ceiling and the halfway mark; a PNG at `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats as scipy_stats

    fig, axes = plt.subplots(1, len(ATTRIBUTES), figsize=(4 * len(ATTRIBUTES), 3.4), sharex=True)
    for ax, attribute in zip(axes, ATTRIBUTES):
        xs, means, lows, highs = [], [], [], []
        for x, found in points:
            rates = np.asarray(found[attribute]["per_prompt"], dtype=float)
            half = (scipy_stats.t.ppf(0.975, len(rates) - 1) * rates.std(ddof=1) / np.sqrt(len(rates))
                    if len(rates) > 1 else 0.0)
            xs.append(x)
            means.append(rates.mean())
            lows.append(rates.mean() - half)
            highs.append(rates.mean() + half)
        ax.fill_between(xs, lows, highs, alpha=0.2)
        ax.plot(xs, means, marker="o", label="generated, as prompted")
        last = points[-1][1][attribute]
        ceiling = ceilings.get(f"{attribute}_balanced", ceilings.get(attribute))
        ax.axhline(last["chance"], color="grey", ls=":", label="chance")
        if ceiling is not None:
            ax.axhline(ceiling, color="green", ls="--", label="judge's ceiling on renders")
            ax.axhline(last["chance"] + (ceiling - last["chance"]) / 2, color="orange", ls="-.", label="halfway")
        ax.set_title(attribute.replace("_", " "))
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share heard as prompted (prompt-level)")
    axes[-1].legend(fontsize=7, loc="upper right")
    fig.supxlabel(xlabel, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)
