"""Rendered clips in memory, for training and measuring models on the world (no files written).

Each model has render seeds of its own, never the demo corpus's (0): the judge trains on
`JUDGE_SEED` and is measured on `JUDGE_EVAL_SEED`, both with works of their own split, so the
judge's ceilings are figures on works and renders it never saw.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scoreaware.core.files import atomic_write_text
from scoreaware.demo.world.corpus import ScoreClip, plan_corpus, render_clip

DEMO_SEED = 0
JUDGE_SEED = 301  # the judge's instrument classifier trains on renders of this seed (train works)
JUDGE_EVAL_SEED = 302  # and its ceilings are measured on this one (test works)


def _render_mono(spec: ScoreClip, seconds: float, seed: int) -> tuple[ScoreClip, np.ndarray]:
    spec, audio = render_clip(spec, seconds, seed)
    return spec, audio.mean(axis=0).astype(np.float32)


def rendered_clips(clips: int, seed: int, seconds: float = 10.0, split: str = "train", degraded: float = 0.0,
                   workers: int | None = None) -> list[tuple[ScoreClip, np.ndarray]]:
    """[(spec, mono 44.1 kHz audio)] of `clips` readable clips with correct captions of the corpus
    plan of `seed` (the planted file defects and mismatches are the curation stages' business)."""
    if seed == DEMO_SEED:
        raise ValueError("seed 0 is the demo corpus: render another seed")
    planned = plan_corpus(int(clips * 1.25) + 8, seed, split=split, degraded=degraded, mismatched=0.0)
    specs = [s for s in planned if s.defect is None][:clips]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    progress = dict(total=len(specs), desc="render", unit="clip", leave=False)
    if workers <= 1:
        return [_render_mono(s, seconds, seed) for s in tqdm(specs, **progress)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(tqdm(pool.map(_render_mono, specs, [seconds] * len(specs), [seed] * len(specs), chunksize=4),
                         **progress))


def write_card(out: Path, name: str, card: dict, eval_clips: int, measure: Callable[[], dict],
               log: Callable[[str], None] = print) -> dict:
    """`card` with ``measured`` = `measure()` on held-out renders (skipped when `eval_clips` is 0),
    written atomically to `out`/`name`; the card."""
    if eval_clips:
        log(f"measuring on {eval_clips} renders of held-out works (seed {JUDGE_EVAL_SEED})")
        card["measured"] = measure()
    atomic_write_text(out / name, json.dumps(card, indent=1) + "\n")
    return card
