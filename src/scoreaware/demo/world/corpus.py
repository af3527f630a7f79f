"""A corpus of real compositions, rendered: the realistic embedded world.

Each clip is an excerpt of a work of music21's corpus (`catalog`), played by one of 12 General
MIDI instruments at a sampled tempo band, dynamic and transposition (`render`). Its labels come
from the score (collection and style, composer, meter, key and mode of the excerpt, voices,
work id) and from the render (instrument and family, tempo, dynamics, transposition), so the
truth is exact. Captions are written from the labels in several phrasings (`captions`).

As the synthetic corpus (`demo.synth`) does, the corpus holds the problems real collections
have, at the same fixed positions: captions of another clip (of another instrument), near-silent
clips (one silent only in its middle), a truncated file, an HTML page saved as ``.mp3``, and
graded degradations (noise, clipping, low-pass, hum, dropouts) the metadata does not mention.

Layout written under DIR (as `demo.synth`, plus ``descriptions.jsonl``)::

    audio/<id % 100:02d>/<id>.{mp3,flac,wav}      mp3 / flac / wav in turn; stereo and mono
    metadata/autotagging.tsv                       MTG-Jamendo tags TSV
    metadata/captions.json                         ATTM challenge caption JSON
    metadata/tracks.csv                            plain CSV (id, path, license, artist, title)
    metadata/descriptions.jsonl                    plain JSONL (id, caption, tags, license, work)
    truth.jsonl                                    every label and planted problem per clip

The same (clips, duration, seed, collections, split) gives the same bytes, with any number of
worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from scoreaware.curate.loudness import window_loudness
from scoreaware.demo.synth import degrade, normalize, plant_degradations
from scoreaware.demo.world import catalog
from scoreaware.demo.world.captions import caption_of, tags_of
from scoreaware.demo.world.render import (
    DYNAMICS,
    INSTRUMENTS,
    SR,
    TEMPO_BANDS,
    ScoreError,
    excerpt,
    perform,
    pitch_name,
    synthesize,
)

DEFECTS = {1: "near_silent", 5: "silent_middle", 3: "truncated", 6: "not_audio"}
FALLBACKS = 8  # works tried after the planned one fails to export


@dataclass
class ScoreClip:
    """Ground truth of one rendered clip: the work, the render settings, the planted problems."""

    id: str
    path: str
    work_id: str
    collection: str
    style: str
    composer: str
    title: str
    license: str
    split: str
    instrument: str
    program: int
    family: str
    tempo_band: str
    tempo_bpm: int
    dynamics: str
    velocity: int
    transpose: int
    channels: int
    target_lufs: float
    # from the score, filled in when the excerpt is made
    meter: str = ""
    key: str = ""  # tonic after transposition, e.g. "Bb"
    mode: str = ""
    voices: int = 0
    bars: int = 0
    caption: str = ""
    caption_matches_audio: bool = True
    defect: str | None = None
    degradation: str | None = None
    degradation_strength: int | None = None
    lufs: float | None = None


def plan_corpus(clips: int, seed: int, collections: tuple[str, ...] = catalog.DEFAULT_COLLECTIONS,
                split: str = "train", degraded: float = 0.25, mismatched: float | None = None,
                transpose: int = 2) -> list[ScoreClip]:
    """Works, render settings and planted problems of every clip (no score parsed yet).

    Collections take turns; instruments go through a fresh permutation of the 12 every 12 clips
    (so any 12 consecutive clips hold each once); tempo band, dynamic and transposition (within
    ±`transpose` semitones, 0 half the time) are drawn per clip.

    :param split: the works' split ("train", "test", or "all").
    :param degraded: share of the clean clips with a planted degradation.
    :param mismatched: share of readable clips captioned as another clip (None: one in eight).
    """
    rng = np.random.default_rng(seed)
    pools = {c: catalog.works((c,), None if split == "all" else split) for c in collections}
    empty = [c for c, pool in pools.items() if not pool]
    if empty:
        raise ValueError(f"collection {empty[0]!r} has no {split} works")
    orders = {c: list(rng.permutation(len(pool))) for c, pool in pools.items()}
    names, specs = list(INSTRUMENTS), []
    for i in range(clips):
        collection = collections[i % len(collections)]
        pool, order = pools[collection], orders[collection]
        work = pool[int(order[(i // len(collections)) % len(order)])]
        if i % len(names) == 0:
            instruments = [names[k] for k in rng.permutation(len(names))]
        instrument = INSTRUMENTS[instruments[i % len(names)]]
        band = list(TEMPO_BANDS)[int(rng.integers(len(TEMPO_BANDS)))]
        dynamics = list(DYNAMICS)[int(rng.integers(len(DYNAMICS)))]
        shifts = [k for k in range(-transpose, transpose + 1) if k]
        shift = 0 if rng.random() < 0.5 or not transpose else int(rng.choice(shifts))
        ident = str(2_000_000 + 37 * i)
        specs.append(ScoreClip(
            id=ident, path=f"{int(ident) % 100:02d}/{ident}.{('mp3', 'flac', 'wav')[i % 3]}", work_id=work.id,
            collection=collection, style=catalog.COLLECTIONS[collection].style, composer=work.composer,
            title=work.title, license=work.license, split=work.split, instrument=instrument.name,
            program=instrument.program, family=instrument.family, tempo_band=band,
            tempo_bpm=int(rng.integers(TEMPO_BANDS[band][0], TEMPO_BANDS[band][1] + 1)), dynamics=dynamics,
            velocity=DYNAMICS[dynamics][0], transpose=shift, channels=2 if i % 2 == 0 else 1,
            target_lufs=float(np.round(DYNAMICS[dynamics][1] + rng.uniform(-1, 1), 1)), meter=work.meter))
    for index, defect in {**DEFECTS, **({clips - 2: "near_silent"} if clips >= 20 else {})}.items():
        if index < clips:
            spec = specs[index]
            spec.defect = defect
            if defect == "near_silent":
                spec.target_lufs = -75.0
            if defect in ("truncated", "not_audio"):
                spec.path = spec.path.rsplit(".", 1)[0] + (".flac" if defect == "truncated" else ".mp3")
    readable = [i for i in range(clips) if specs[i].defect is None]
    swapped = [i for i in range(2, clips, 8) if specs[i].defect is None] if mismatched is None else sorted(
        np.random.default_rng([seed, 11]).permutation(readable)[: int(round(mismatched * len(readable)))])
    for index in swapped:
        specs[index].caption_matches_audio = False
    plant_degradations(specs, seed, degraded)
    return specs


def render_clip(spec: ScoreClip, seconds: float, seed: int) -> tuple[ScoreClip, np.ndarray]:
    """The clip's audio, (channels, samples) float32 at 44.1 kHz, and its spec with the score's labels.

    When the planned work cannot be exported, the next works of its collection (in id order) are
    tried: the choice is still a function of the seed."""
    pool = catalog.works((spec.collection,), None)
    start = next(i for i, w in enumerate(pool) if w.id == spec.work_id)
    errors = []
    for work in (pool[(start + k) % len(pool)] for k in range(FALLBACKS + 1)):
        try:
            piece = excerpt(work.source, work.number, seconds, spec.tempo_bpm)
            break
        except ScoreError as error:
            errors.append(str(error))
    else:
        raise ScoreError(f"clip {spec.id}: no work of {spec.collection} near {spec.work_id} exports: {errors}")
    spec = replace(spec, work_id=work.id, composer=work.composer, title=work.title, split=work.split,
                   meter=piece.meter, key=pitch_name(piece.tonic, spec.transpose), mode=piece.mode,
                   voices=piece.voices, bars=piece.bars)
    rng = np.random.default_rng([seed, int(spec.id)])
    midi = perform(piece, spec.program, spec.tempo_bpm, spec.velocity, spec.transpose, seconds, rng)
    audio = synthesize(midi, seconds)
    if spec.channels == 1:
        audio = audio.mean(0, keepdims=True)
    audio = normalize(audio, spec.target_lufs)
    if spec.degradation:  # its own stream: the music is the same with or without it
        damage = np.random.default_rng([int(spec.id), len(spec.degradation), spec.degradation_strength])
        audio = normalize(degrade(audio, spec.degradation, spec.degradation_strength, damage), spec.target_lufs)
    n = audio.shape[-1]
    if spec.defect == "silent_middle":
        audio[:, n // 3: 2 * n // 3] *= 1e-4
    measured = window_loudness(audio, SR, [(0, n)])[0]
    spec.lufs = round(float(measured), 2) if np.isfinite(measured) else None  # None: below the −70 LUFS gate
    return spec, audio.astype(np.float32)


def write_clip(spec: ScoreClip, audio_dir: Path, seconds: float, seed: int) -> ScoreClip:
    """Render and encode one clip (or plant its file defect); the spec with the score's labels."""
    path = audio_dir / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    spec, audio = render_clip(spec, seconds, seed)
    if spec.defect == "not_audio":  # a failed download saved under an audio name
        path.write_text("<html><head><title>403 Forbidden</title></head><body>Forbidden</body></html>\n")
        return spec
    tmp = path.with_name(f".{path.name}.tmp")
    kind = {"mp3": dict(format="MP3", subtype="MPEG_LAYER_III"), "flac": dict(format="FLAC", subtype="PCM_16"),
            "wav": dict(format="WAV", subtype="PCM_16")}[path.suffix.lstrip(".")]
    sf.write(tmp, audio.T, SR, **kind)
    if spec.defect == "truncated":  # an interrupted copy: the decoder loses sync
        data = tmp.read_bytes()
        tmp.write_bytes(data[: int(len(data) * 0.4)])
    os.replace(tmp, path)
    return spec


def write_captions(specs: list[ScoreClip], seed: int) -> None:
    """Each clip's caption from its labels; a mismatched clip gets the caption of the next clip that
    differs from it in instrument (its own stream of phrasings, so the rest stay the same)."""
    own = {s.id: caption_of(asdict(s), np.random.default_rng([seed, int(s.id), 1])).text for s in specs}
    for index, spec in enumerate(specs):
        spec.caption = own[spec.id]
        if not spec.caption_matches_audio:
            donor = next(specs[(index + k) % len(specs)] for k in range(1, len(specs))
                         if specs[(index + k) % len(specs)].instrument != spec.instrument)
            spec.caption = own[donor.id]


def write_metadata(specs: list[ScoreClip], root: Path, seconds: float, seed: int) -> None:
    """The four metadata layouts and the truth file."""
    meta = root / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    lines = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
    for s in specs:
        tags = tags_of(asdict(s))
        lines.append("\t".join([f"track_{int(s.id):07d}", f"artist_{int(s.id) % 9:06d}",
                                f"album_{int(s.id) % 13:06d}", s.path, f"{seconds:.1f}", *tags]))
    (meta / "autotagging.tsv").write_text("\n".join(lines) + "\n")
    (meta / "captions.json").write_text(json.dumps([{"path": s.path, "caption": s.caption} for s in specs],
                                                   indent=1, ensure_ascii=False) + "\n")
    rows = ["id,path,license,artist,title"]
    for s in specs:
        rows.append(",".join([s.id, s.path, _csv(s.license), _csv(s.composer), _csv(s.title)]))
    (meta / "tracks.csv").write_text("\n".join(rows) + "\n")
    with open(meta / "descriptions.jsonl", "w", encoding="utf-8") as f:
        for s in specs:
            second = caption_of(asdict(s), np.random.default_rng([seed, int(s.id), 2])).text
            f.write(json.dumps({"id": s.id, "path": s.path, "caption": s.caption if not s.caption_matches_audio
                                else second, "license": s.license, "work": s.work_id}, ensure_ascii=False) + "\n")
    with open(root / "truth.jsonl", "w", encoding="utf-8") as f:
        for s in specs:
            f.write(json.dumps(asdict(s) | {"tags": tags_of(asdict(s))}, ensure_ascii=False) + "\n")


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def make_corpus(root: str | os.PathLike, clips: int = 40, duration: float = 30.0, seed: int = 0,
                progress=None, degraded: float = 0.25, mismatched: float | None = None, workers: int = 1,
                collections: tuple[str, ...] = catalog.DEFAULT_COLLECTIONS, split: str = "train"
                ) -> list[ScoreClip]:
    """Render the corpus under `root`; the clip specs (the ground truth, also in ``truth.jsonl``).

    :param clips: number of clips (at least 8 to plant every problem).
    :param progress: optional callable invoked with each rendered spec.
    :param workers: processes rendering clips (each clip has its own seeded streams: the same bytes
        for any number).
    :param collections: music21 collections to draw works from (`catalog.COLLECTIONS`).
    :param split: "train" (the default: evaluation prompts come from "test" works), "test" or "all".
    """
    root = Path(root)
    planned = plan_corpus(clips, seed, collections, split, degraded, mismatched)
    done: dict[str, ScoreClip] = {}
    if workers <= 1:
        for spec in planned:
            done[spec.id] = write_clip(spec, root / "audio", duration, seed)
            if progress:
                progress(done[spec.id])
    else:  # spawn: the caller may hold torch's thread pools, which fork would copy mid-state
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, clips), mp_context=context) as pool:
            futures = [pool.submit(write_clip, spec, root / "audio", duration, seed) for spec in planned]
            for future in as_completed(futures):
                spec = future.result()
                done[spec.id] = spec
                if progress:
                    progress(spec)
    specs = [done[s.id] for s in planned]
    write_captions(specs, seed)
    write_metadata(specs, root, duration, seed)
    return specs
