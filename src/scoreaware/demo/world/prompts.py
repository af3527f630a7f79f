"""The evaluation prompt set: distinct attribute combinations, each tied to a held-out work.

A prompt names an instrument, a tempo band, a mode and a style (`captions.prompt_of`); every
prompt of the set is a different combination, so each is an independent unit of a test. The
set is balanced: each instrument appears n/12 times, each mode n/2, each band and style about
equally often. Each prompt carries a work of the *test* split of its style whose excerpt is in
the prompted mode: the generator never trained on it, and `reference_render` plays it with the
prompt's settings, the real render a generated clip is shown beside.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import numpy as np

from scoreaware.demo.world import catalog
from scoreaware.demo.world.captions import prompt_of
from scoreaware.demo.world.corpus import ScoreClip, render_clip
from scoreaware.demo.world.render import INSTRUMENTS, TEMPO_BANDS, ScoreError, excerpt

PROMPT_SEED = 401
SHIPPED = Path(__file__).with_name("prompts48.csv")  # evaluation_prompts(48) (tested equal), read in 1 ms
FIELDS = ("id", "prompt", "instrument", "tempo_band", "mode", "style", "collection", "work_id", "tempo_bpm")


def combinations(n: int, seed: int = PROMPT_SEED,
                 collections: tuple[str, ...] = catalog.DEFAULT_COLLECTIONS) -> list[dict]:
    """`n` distinct (instrument, tempo band, mode, collection) combinations, balanced, in a seeded order."""
    rng = np.random.default_rng(seed)
    instruments, bands, modes = list(INSTRUMENTS), list(TEMPO_BANDS), ["major", "minor"]
    every = list(itertools.product(instruments, bands, modes, collections))
    if n > len(every):
        raise ValueError(f"only {len(every)} combinations exist; asked for {n}")
    chosen, seen = [], set()
    order = [every[i] for i in rng.permutation(len(every))]
    # greedy balance: at each turn take the first unused combination whose instrument, band, mode
    # and collection are the least used so far (ties broken by the seeded order)
    counts = {k: {} for k in range(4)}
    while len(chosen) < n:
        def load(combo):
            return sum(counts[k].get(v, 0) for k, v in enumerate(combo))

        combo = min((c for c in order if c not in seen), key=load)
        seen.add(combo)
        for k, v in enumerate(combo):
            counts[k][v] = counts[k].get(v, 0) + 1
        chosen.append(combo)
    return [{"instrument": i, "tempo_band": b, "mode": m, "collection": c,
             "style": catalog.COLLECTIONS[c].style} for i, b, m, c in chosen]


def evaluation_prompts(n: int = 48, seed: int = PROMPT_SEED,
                       collections: tuple[str, ...] = catalog.DEFAULT_COLLECTIONS) -> list[dict]:
    """The prompt set: rows of `FIELDS`, ids ``p00``…; each with a test-split work in its mode."""
    rng = np.random.default_rng([seed, 1])
    rows = []
    used: set[str] = set()
    for index, combo in enumerate(combinations(n, seed, collections)):
        low, high = TEMPO_BANDS[combo["tempo_band"]]
        bpm = int(round((low + high) / 2))
        pool = [w for w in catalog.works((combo["collection"],), "test") if w.id not in used]
        work = None
        for k in rng.permutation(len(pool))[:40]:
            candidate = pool[int(k)]
            try:
                if excerpt(candidate.source, candidate.number, 10.0, bpm).mode == combo["mode"]:
                    work = candidate
                    break
            except ScoreError:
                continue
        if work is None:
            raise ScoreError(f"no test work of {combo['collection']} in {combo['mode']} among 40 tried")
        used.add(work.id)
        rows.append({"id": f"p{index:02d}", "prompt": prompt_of(combo), **combo, "work_id": work.id,
                     "tempo_bpm": bpm})
    return rows


def prompts_csv(rows: list[dict]) -> str:
    """The rows as a prompts CSV `eval generate` reads (id, prompt, and the attributes as extra columns)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k in FIELDS} for row in rows)
    return buffer.getvalue()


def reference_render(row: dict, seconds: float = 10.0, seed: int = PROMPT_SEED) -> np.ndarray:
    """(channels, samples) 44.1 kHz render of the prompt's held-out work with the prompt's settings
    (medium dynamics, no transposition)."""
    work = next(w for w in catalog.works((row["collection"],), None) if w.id == row["work_id"])
    instrument = INSTRUMENTS[row["instrument"]]
    spec = ScoreClip(id=str(3_000_000 + int(row["id"][1:])), path="", work_id=work.id, collection=work.collection,
                     style=row["style"], composer=work.composer, title=work.title, license=work.license,
                     split=work.split, instrument=instrument.name, program=instrument.program,
                     family=instrument.family, tempo_band=row["tempo_band"], tempo_bpm=int(row["tempo_bpm"]),
                     dynamics="medium", velocity=75, transpose=0, channels=2, target_lufs=-18.0)
    return render_clip(spec, seconds, seed)[1]


def read_shipped() -> list[dict]:
    """The shipped 48-prompt set as rows of strings (`evaluation_prompts(48)` takes ~25 s of parsing)."""
    with open(SHIPPED, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
