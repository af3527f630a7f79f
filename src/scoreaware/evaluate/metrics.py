"""Set-level metrics of one scored run of generated clips, against a reference.

Per clip, the CLAP score (against the prompt as written, without the generation prefix) and
the reward come from `curate score clap` / `curate score reward` run on the clips (the same
code path as curation). Per set: FAD-CLAP (with a bootstrap interval over prompts, so that the
seeds of one prompt move together, and n beside it), KAD-CLAP, and when MERT is given FAD-MERT
(all-layer mean, as TuneJury) and MAD (−ln MAUVE on last-layer MERT, when `mauve-text` is installed).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from scoreaware.evaluate.distances import bootstrap_interval, kernel_distance, mauve_available, mauve_distance
from scoreaware.evaluate.embeddings import EmbeddingSet, check_compatible
from scoreaware.evaluate.frechet import bootstrap_frechet, frechet_from_stats
from scoreaware.evaluate.results import CLIP_COLUMNS
from scoreaware.evaluate.stats import prompt_means
from scoreaware.schemas.fields import CLAP_SCORE, PROMPT_ID, REWARD


def mean_interval(values: np.ndarray, level: float = 0.95, bounds: tuple[float, float] | None = None,
                  groups: list[str] | None = None) -> dict:
    """Mean with a t interval (the standard error's, not the clips' spread); n beside it.

    :param bounds: the range the quantity lives in (CLAP score: [−1, 1]); the interval of its mean
        cannot leave it, so with few clips (t for n = 2 is 12.7) it is cut at the bounds.
    :param groups: the prompt of each value: the interval is then over per-prompt means (the
        clips of one prompt are not independent), with ``prompts`` beside n.
    """
    keep = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    clean = np.asarray([values[i] for i in keep], dtype=float)
    if len(clean) == 0:
        return {"mean": None, "ci": None, "n": 0}
    units = clean
    if groups is not None:
        means = prompt_means([groups[i] for i in keep], clean)
        units = np.asarray(list(means.values()), dtype=float)
    out = {"mean": float(clean.mean()), "ci": None, "n": int(len(clean))}
    if groups is not None:
        out["prompts"] = int(len(units))
    if len(units) < 2:
        return out
    half = scipy_stats.t.ppf(0.5 + level / 2, len(units) - 1) * units.std(ddof=1) / math.sqrt(len(units))
    low, high = float(units.mean() - half), float(units.mean() + half)
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    # the interval is centred on the mean of prompt means; the reported mean is over clips (equal
    # when every prompt has as many clips, as `eval generate --seeds K` makes them)
    out["ci"] = [low, high]
    return out


@dataclass
class RunMetrics:
    """What `eval score` reports for one run."""

    metrics: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def set_metrics(clap: EmbeddingSet, reference: dict[str, EmbeddingSet], clips: list[dict], bootstrap: int = 200,
                mert_all: EmbeddingSet | None = None, mert_last: EmbeddingSet | None = None, mad: bool = True,
                seed: int = 0) -> RunMetrics:
    """Per-set metrics of generated embeddings against the reference sets."""
    out = RunMetrics()
    ref = reference["clap"]
    check_compatible(clap.fingerprint, ref.fingerprint, "CLAP embeddings of the clips and of the reference")
    fad = frechet_from_stats(clap.stats, ref.stats)
    prompt_of = {c["id"]: c.get(PROMPT_ID) or c["id"] for c in clips}
    groups = [prompt_of.get(i, i) for i in clap.ids] if len(clap.ids) == len(clap.embeddings) else None
    low, high = bootstrap_frechet(clap.embeddings, ref.stats, resamples=bootstrap, seed=seed, groups=groups)
    out.metrics["fad_clap"] = {**fad.to_dict(), "ci": [low, high]}
    out.warnings += fad.warnings
    kad = kernel_distance(clap.embeddings, ref.embeddings)
    out.metrics["kad_clap"] = {"value": kad, "ci": list(bootstrap_interval(
        lambda x: kernel_distance(x, ref.embeddings), clap.embeddings, resamples=min(bootstrap, 100), seed=seed,
        groups=groups)),
        "n": len(clap.embeddings)}
    prompts = [c.get(PROMPT_ID) or c["id"] for c in clips]
    out.metrics[CLAP_SCORE] = mean_interval([c.get(CLAP_SCORE) for c in clips], bounds=(-1.0, 1.0),
                                              groups=prompts)  # a cosine
    rewards = [c.get(REWARD) for c in clips]
    if any(r is not None for r in rewards):
        out.metrics["reward"] = mean_interval(rewards, groups=prompts)
    if mert_all is not None and "mert_all" in reference:
        check_compatible(mert_all.fingerprint, reference["mert_all"].fingerprint, "MERT features")
        fad_mert = frechet_from_stats(mert_all.stats, reference["mert_all"].stats)
        mert_groups = [prompt_of.get(i, i) for i in mert_all.ids] if len(mert_all.ids) == len(
            mert_all.embeddings) else None
        low, high = bootstrap_frechet(mert_all.embeddings, reference["mert_all"].stats, resamples=bootstrap,
                                      seed=seed, groups=mert_groups)
        out.metrics["fad_mert"] = {**fad_mert.to_dict(), "ci": [low, high]}
    if mad and mert_last is not None and "mert_last" in reference:
        if mauve_available():
            check_compatible(mert_last.fingerprint, reference["mert_last"].fingerprint, "MERT features")
            out.metrics["mad"] = {"value": mauve_distance(mert_last.embeddings, reference["mert_last"].embeddings),
                                  "n": len(mert_last.embeddings)}
        else:
            out.warnings.append("MAD skipped: `pip install 'scoreaware[mad]'` (mauve-text, GPL-3) to compute it")
    return out


def write_clips_csv(path: Path, clips: list[dict]) -> Path:
    """The per-clip table (what `eval compare` pairs across runs)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CLIP_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for clip in clips:
            writer.writerow(clip)
    tmp.replace(path)
    return path
