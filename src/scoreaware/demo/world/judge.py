"""Train the judge's instrument classifier on renders of its own seed, and measure the judge's ceilings.

`scoreaware demo train-judge -o DIR` runs `train_judge`: it renders `JudgeRecipe.clips` clips of
the judge's seed (train works; a share degraded as the corpus degrades them, a share passed
through the plain mel codec's Griffin-Lim, so the classifier hears through the phase of decoded
audio), fits the classifier, then measures every estimator of the judge on renders of another
seed and of held-out works: the ceilings a generated clip's adherence is read against.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scoreaware.core.files import atomic_write_text
from scoreaware.demo.domain.corpus import mel_round_trip
from scoreaware.demo.world.clips import JUDGE_EVAL_SEED, JUDGE_SEED, rendered_clips
from scoreaware.demo.world.corpus import ScoreClip
from scoreaware.demo.world.render import INSTRUMENTS, SR, TEMPO_BANDS
from scoreaware.evaluate.judge import CARD, CLASSIFIER, Judge
from scoreaware.evaluate.judge.dsp import JUDGE_SR, key_relation
from scoreaware.evaluate.judge.instrument import features, fit_classifier

COMMAND = "scoreaware demo train-judge -o src/scoreaware/demo/default_models/judge"
OCTAVE_FACTORS = (1.0, 2.0, 0.5, 1.5, 2 / 3, 3.0, 1 / 3)


@dataclass(frozen=True)
class JudgeRecipe:
    clips: int = 480  # 40 per instrument
    eval_clips: int = 240  # 20 per instrument, held-out works, another seed
    seconds: float = 10.0
    degraded: float = 0.2
    round_trip: float = 0.25  # share of training clips also seen after the mel codec's Griffin-Lim
    c: float = 0.5  # inverse L2 strength of the logistic regression
    seed: int = JUDGE_SEED
    eval_seed: int = JUDGE_EVAL_SEED


def _at_judge_rate(audio: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.resample(audio, orig_sr=SR, target_sr=JUDGE_SR, res_type="soxr_hq")


def train_judge(out: Path, recipe: JudgeRecipe = JudgeRecipe(), log=print) -> dict:
    """Fit the classifier into `out`, measure the judge, write ``JUDGE.json``; the card."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(recipe.seed)
    log(f"rendering {recipe.clips} clips × {recipe.seconds:g} s (seed {recipe.seed}, train works)")
    clips = rendered_clips(recipe.clips, recipe.seed, recipe.seconds, "train", recipe.degraded)
    rows, labels = [], []
    for spec, audio in tqdm(clips, desc="features", unit="clip", leave=False):
        rows.append(features(_at_judge_rate(audio)))
        labels.append(spec.instrument)
        if rng.random() < recipe.round_trip:
            rows.append(features(_at_judge_rate(mel_round_trip(audio))))
            labels.append(spec.instrument)
    classifier = fit_classifier(np.stack(rows), labels, c=recipe.c, seed=recipe.seed)
    classifier.save(out / CLASSIFIER)
    card = {"command": COMMAND, "recipe": asdict(recipe), "examples": len(rows),
            "tempo_bands": {k: list(v) for k, v in TEMPO_BANDS.items()}, "instruments": list(INSTRUMENTS),
            "ceilings": {}}
    atomic_write_text(out / CARD, json.dumps(card, indent=1) + "\n")  # `Judge(out)` reads it to measure itself
    log(f"measuring on {recipe.eval_clips} clips (seed {recipe.eval_seed}, held-out works)")
    held_out = rendered_clips(recipe.eval_clips, recipe.eval_seed, recipe.seconds, "test")
    judge = Judge(out)
    card["ceilings"] = measure_judge(judge, held_out)
    card["ceilings_mel_round_trip"] = measure_judge(judge, [(s, mel_round_trip(a)) for s, a in held_out])
    card["chance"] = chance_rates(held_out)
    card["minutes"] = round((time.perf_counter() - start) / 60, 1)
    atomic_write_text(out / CARD, json.dumps(card, indent=1) + "\n")
    return card


def tempo_hits(estimate: float, truth: float) -> tuple[bool, bool]:
    """(within 8 %, within 8 % of the truth times 1, 2, ½, 3/2, 2/3, 3 or ⅓)."""
    close = [abs(estimate - truth * f) <= 0.08 * truth * f for f in OCTAVE_FACTORS]
    return close[0], any(close)


def measure_judge(judge: Judge, clips: list[tuple[ScoreClip, np.ndarray]]) -> dict:
    """Accuracy of each estimator of `judge` on `clips` (mono 44.1 kHz) against their truth."""
    hits = {k: [] for k in ("instrument", "tempo_band", "tempo_8pct", "tempo_8pct_octave", "mode", "key_exact",
                            "key_related")}
    for spec, audio in tqdm(clips, desc="judge", unit="clip", leave=False):
        heard = judge.hear(audio, SR)
        hits["instrument"].append(heard.instrument == spec.instrument)
        hits["tempo_band"].append(heard.tempo_band == spec.tempo_band)
        near, octave = tempo_hits(heard.tempo_bpm, spec.tempo_bpm)
        hits["tempo_8pct"].append(near)
        hits["tempo_8pct_octave"].append(octave)
        hits["mode"].append(heard.mode == spec.mode)
        relation = key_relation(heard.tonic, heard.mode, spec.key, spec.mode)
        hits["key_exact"].append(relation == "exact")
        hits["key_related"].append(relation in ("exact", "relative", "fifth"))
    found = {k: round(float(np.mean(v)), 4) for k, v in hits.items()}
    for attribute in ("mode", "tempo_band"):  # the mean of per-class recalls: 0.5 / 0.33 for a constant guess
        truth = [getattr(spec, attribute) for spec, _ in clips]
        recalls = [np.mean([h for h, t in zip(hits[attribute], truth) if t == label]) for label in sorted(set(truth))]
        found[f"{attribute}_balanced"] = round(float(np.mean(recalls)), 4)
    return found | {"clips": len(clips)}


def chance_rates(clips: list[tuple[ScoreClip, np.ndarray]]) -> dict:
    """What guessing the most common label would score on `clips`, per attribute (instrument: 1/12
    when balanced)."""
    out = {}
    for attribute in ("instrument", "tempo_band", "mode"):
        values = [getattr(spec, attribute) for spec, _ in clips]
        out[attribute] = round(max(values.count(v) for v in set(values)) / len(values), 4)
    return out


def describe_card(card: dict) -> list[str]:
    """The judge's ceilings as lines, beside chance and through the mel codec's Griffin-Lim."""
    c, m, chance = card["ceilings"], card.get("ceilings_mel_round_trip", {}), card.get("chance", {})
    lines = [f"on {c['clips']} renders of held-out works (seed {card['recipe']['eval_seed']}); through the mel "
             "codec's Griffin-Lim in brackets"]
    for name, key in (("instrument", "instrument"), ("tempo band", "tempo_band"), ("mode", "mode")):
        balanced = f", balanced {c[key + '_balanced']:.3f}" if key + "_balanced" in c else ""
        lines.append(f"{name}: {c[key]:.3f}{balanced} [{m.get(key, float('nan')):.3f}] (most common label: "
                     f"{chance.get(key, float('nan')):.3f})")
    lines.append(f"tempo within 8 %: {c['tempo_8pct']:.3f} ({c['tempo_8pct_octave']:.3f} counting octave errors); "
                 f"key exact {c['key_exact']:.3f}, within the relative key or a fifth {c['key_related']:.3f}")
    return lines
