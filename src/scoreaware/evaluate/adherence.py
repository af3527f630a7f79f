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

from scoreaware.core.files import atomic_write_text
from scoreaware.evaluate.judge import Judge
from scoreaware.evaluate.run import read_samples

ATTRIBUTES = ("instrument", "tempo_band", "mode")
JUDGE_COLUMNS = ("id", "prompt_id", "instrument", "tempo_band", "mode", "heard_instrument", "heard_tempo_band",
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
        out.append({"id": row["id"], "prompt_id": str(row["prompt_id"]), **{a: wanted[a] for a in ATTRIBUTES},
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
        by_prompt[row["prompt_id"]].append(row)
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
                            "met": None if halfway is None else bool(rate >= halfway)}
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
    atomic_write_text(folder / "judge.json", json.dumps({"judge": str(Path(judge).resolve()),
                                                          "ceilings": loaded.ceilings, "adherence": found}, indent=1))
    return found
