"""Embedding sets for the distribution metrics: built with `curate.scoring`, stored with a fingerprint.

A reference file (``eval reference``) is an ``.npz`` with, per model, the embeddings of every
clip (rows), their mean and covariance, the clip ids, and a JSON fingerprint: which model and
weights, which crop policy, which sample rate and window. Two sets are comparable only when
their fingerprints agree on those (`check_compatible`); otherwise FAD compares two different
embedding spaces and means nothing.

CLAP audio embeddings come from `curate.stages.score_clap.score_clap` (the scoring stage itself,
run on cuts without captions, so it only embeds); MERT features from
`curate.scoring.reward.MertEncoder` (last layer, as the reward and MAD use it; all layers, as
TuneJury's FAD-MERT does).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lhotse import CutSet, Recording

from scoreaware.core.arrays import ArrayStore
from scoreaware.core.errors import StageError
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import Rejection
from scoreaware.core.progress import progress
from scoreaware.core.provenance import provenance_chain, read_provenance, weights_fingerprint
from scoreaware.curate.audio import AudioProblem, probe_audio
from scoreaware.curate.scoring.audio import mono_resampled, policy_windows
from scoreaware.curate.stages.score_clap import ClapScoreConfig, score_clap
from scoreaware.evaluate.frechet import Stats
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, MERT_EMB
from scoreaware.schemas.validation import check_input

FORMAT = "scoreaware.reference/1"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif")
# what must agree for two sets to be comparable ("model" is where the weights were; informational)
COMPARED = ("weights", "backend", "policy", "sampling_rate", "window", "layers")


class EmbeddingError(StageError, ValueError):
    """Embeddings that cannot be read or compared; the message says why."""


@dataclass
class EmbeddingSet:
    """Rows of one model's embeddings, with their ids and fingerprint."""

    embeddings: np.ndarray  # (n, d)
    ids: list[str] = field(default_factory=list)
    fingerprint: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        matrix = np.asarray(self.embeddings)
        if matrix.dtype.kind not in "fiu":
            raise EmbeddingError(f"{self.source or 'embeddings'}: expected a numeric matrix, got dtype {matrix.dtype}")
        if matrix.ndim == 2 and matrix.size and not np.isfinite(matrix).all():
            row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
            which = self.ids[row] if row < len(self.ids) else str(row)
            raise EmbeddingError(f"{self.source or 'embeddings'}: row {row} (id {which}) holds NaN or inf; "
                                 "no distance is computed from non-finite embeddings")
        largest = float(np.abs(matrix).max()) if matrix.size else 0.0  # a Python float: no cast to float32
        if largest > 1e150:  # its covariance would overflow to inf
            raise EmbeddingError(f"{self.source or 'embeddings'}: values up to {largest:.3g}, too large "
                                 "for a covariance (their squares overflow); these are not embeddings")

    @property
    def stats(self) -> Stats:
        return Stats.of(self.embeddings)


def check_compatible(a: dict, b: dict, what: str = "embeddings") -> None:
    """Refuse to compare embeddings made by different models, crops, rates or layers."""
    differ = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in COMPARED
              if k in a and k in b and a.get(k) != b.get(k)]
    if differ:
        raise EmbeddingError(f"the {what} were not made the same way ({'; '.join(differ)}); a distance between "
                             "different embedding spaces means nothing — embed both with the same model and crop")


# --------------------------------------------------------------------------- building
def check_same_width(a: EmbeddingSet, b: EmbeddingSet) -> None:
    """Refuse sets whose rows have different sizes (another model or layer), naming both files."""
    if a.embeddings.shape[1:] != b.embeddings.shape[1:]:
        raise EmbeddingError(f"{a.source}: {a.embeddings.shape[1]}-dimensional rows, {b.source}: "
                             f"{b.embeddings.shape[1]}-dimensional: embeddings of different models cannot be compared")


MIN_SECONDS = 0.1  # shorter clips carry no music to embed (a 1-sample WAV would be padded into a vector)


def audio_cuts(source: str | os.PathLike, rejected: list | None = None, notes: list | None = None):
    """Cuts of a manifest (validated), or of every audio file under a folder (sorted).

    Files of a folder are probed first (the ingest check: decodable, non-empty, finite samples,
    a WAV as long as its header says) and must last `MIN_SECONDS`; the others are appended to
    `rejected` as `Rejection`s with their reason instead of failing the run; files of more than
    two channels (down-mixed to mono for the models) are named in `notes`.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise EmbeddingError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        cuts = []
        for path in files:
            ident = path.relative_to(source).as_posix()
            try:
                info = probe_audio(path)
                if info.num_samples < MIN_SECONDS * info.sampling_rate:
                    raise AudioProblem("too_short", f"{info.num_samples} samples: shorter than {MIN_SECONDS} s")
            except AudioProblem as problem:
                if rejected is not None:
                    rejected.append(Rejection(ident, "reference", problem.reason, problem.detail, str(path)))
                continue
            if info.num_channels > 2 and notes is not None:
                notes.append(f"{ident}: {info.num_channels} channels, down-mixed to mono")
            cuts.append(Recording.from_file(path, recording_id=ident).to_cut())
        return CutSet.from_cuts(cuts)
    check_input(source)
    return read_cuts(source)


def clap_embeddings(cuts, encoder, policy: str = "first", batch_size: int = 16, workers: int = 2,
                    source: str | None = None) -> tuple[EmbeddingSet, list]:
    """CLAP audio embeddings of every cut through the scoring stage; (set, rejections)."""

    config = ClapScoreConfig(caption_field="__no_caption__", policy=policy, batch_size=batch_size,
                             workers=workers)

    ids, rows, rejected = [], [], []
    total = len(cuts) if hasattr(cuts, "__len__") else None
    with tempfile.TemporaryDirectory(prefix="scoreaware-embed-") as tmp, progress(total, "embed clap", "clip") as bar:
        for item in score_clap(cuts, encoder, ArrayStore(tmp), config):
            bar.update(1)
            if hasattr(item, "reason"):
                rejected.append(item)
                continue
            ids.append(item.id)
            rows.append(item.load_custom(CLAP_AUDIO_EMB))
    fingerprint = {"model": encoder.model_id, "weights": encoder.fingerprint, "backend": encoder.backend,
                   "policy": policy, "sampling_rate": encoder.sampling_rate, "window": encoder.window,
                   "source": source or encoder.model_id}
    return EmbeddingSet(np.stack(rows) if rows else np.zeros((0, encoder.dim), np.float32), ids, fingerprint), rejected


def mert_embedding_sets(cuts, mert, layers: Sequence[str] = ("last", "all"), window_seconds: float = 10.0,
                        policy: str = "first") -> dict[str, EmbeddingSet]:
    """MERT features of every cut (the same crop as CLAP), one set per `layers` setting ("last": the
    last layer, "all": the mean of all layers); each cut is decoded and run through MERT once."""

    ids, rows = [], {name: [] for name in layers}
    window = int(window_seconds * mert.sampling_rate)
    for cut in cuts:
        try:
            audio = mono_resampled(cut, mert.sampling_rate)
        except Exception:
            continue
        for name, features in mert.embed_layers(policy_windows(audio, window, policy), layers).items():
            rows[name].append(features.mean(axis=0))
        ids.append(cut.id)
    fingerprint = {"model": mert.model_id, "weights": weights_fingerprint(mert.model_id), "policy": policy,
                   "sampling_rate": mert.sampling_rate, "window": window}
    return {name: EmbeddingSet(np.stack(rows[name]) if rows[name] else np.zeros((0, mert.dim), np.float32),
                               list(ids), {**fingerprint, "layers": name}) for name in layers}


# ------------------------------------------------------------------------ reference files
def save_reference(path: str | os.PathLike, sets: dict[str, EmbeddingSet], extra: dict | None = None) -> Path:
    """Write a reference ``.npz`` atomically: per name, embeddings, mean, cov, ids, fingerprint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "sets": {}, **(extra or {})}
    for name, item in sets.items():
        stats = item.stats
        arrays[f"{name}__embeddings"] = item.embeddings.astype(np.float32)
        arrays[f"{name}__mean"] = stats.mean
        arrays[f"{name}__cov"] = stats.cov
        meta["sets"][name] = {"n": int(stats.n), "dim": int(stats.mean.shape[0]), "ids": item.ids,
                              "fingerprint": item.fingerprint}
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_reference(path: str | os.PathLike) -> tuple[dict[str, EmbeddingSet], dict]:
    """The sets and the metadata of a reference ``.npz`` (no pickle: plain arrays and JSON)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT:
                raise EmbeddingError(f"{path}: not a scoreaware reference (format {meta.get('format')!r})")
            sets = {name: EmbeddingSet(np.asarray(data[f"{name}__embeddings"]), info["ids"], info["fingerprint"],
                                       str(path)) for name, info in meta["sets"].items()}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated, garbage, other npz
        if isinstance(exc, EmbeddingError):
            raise
        raise EmbeddingError(f"{path}: not a readable reference file ({type(exc).__name__}: {exc})"[:300]) from None
    return sets, meta


def load_embedding_set(path: str | os.PathLike, name: str = "clap") -> EmbeddingSet:
    """An embedding set from an ``.npy`` matrix, a reference ``.npz``, or a scored manifest
    (its stored ``clap_audio_emb``, or ``mert_emb`` for name ``mert``)."""
    path = Path(path)
    name = {"mert": "mert_last"}.get(name, name)
    if path.suffix == ".npy":
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # empty, truncated, garbage, or an object array
            raise EmbeddingError(f"{path}: not a readable .npy matrix ({type(exc).__name__}: {exc})"[:300]) from None
        if matrix.ndim != 2:
            raise EmbeddingError(f"{path}: expected a 2-D matrix (rows = clips), got shape {matrix.shape}")
        if len(matrix) < 2:
            raise EmbeddingError(f"{path}: {len(matrix)} row(s); a Fréchet distance needs at least 2 clips")
        return EmbeddingSet(matrix, [str(i) for i in range(len(matrix))], {}, str(path))
    if path.suffix == ".npz":
        sets, _ = load_reference(path)
        if name not in sets:
            raise EmbeddingError(f"{path}: has no {name!r} embeddings (it has {sorted(sets)})")
        return sets[name]
    if path.name.endswith((".jsonl.gz", ".jsonl")):
        return manifest_embeddings(path, name)
    raise EmbeddingError(f"{path}: expected an .npy matrix, a reference .npz or a scored manifest")


def _manifest_rows(path: str | os.PathLike, name: str) -> tuple[list[str], list[np.ndarray], dict]:
    """(ids, rows, fingerprint) of the stored embeddings of a scored manifest."""

    name = {"mert_last": "mert"}.get(name, name)
    if name not in ("clap", "mert"):
        raise EmbeddingError(f"a scored manifest stores clap and mert (last layer) embeddings, not {name!r}")
    field_name = {"clap": CLAP_AUDIO_EMB, "mert": MERT_EMB}[name]
    check_input(path)
    ids, rows = [], []
    for cut in read_cuts(path):
        if cut.has_custom(field_name):
            ids.append(cut.id)
            rows.append(cut.load_custom(field_name))
    if not rows:
        raise EmbeddingError(f"{path}: no cut has a stored {field_name}; score it with `curate score "
                             f"{'clap' if name == 'clap' else 'reward'}` first")
    fingerprint = {}
    stage = "clap" if name == "clap" else "reward"
    sidecar = next((p for p in provenance_chain(path) if p.get("stage") == stage), None) or read_provenance(path)
    if sidecar and name == "clap":
        opts = sidecar.get("options", {})
        fingerprint = {"model": opts.get("model"), "weights": opts.get("weights"), "backend": opts.get("backend"),
                       "policy": opts.get("policy"), "sampling_rate": opts.get("sampling_rate"),
                       "window": opts.get("window_samples")}
        fingerprint = {k: v for k, v in fingerprint.items() if v is not None}
    return ids, rows, fingerprint


def manifest_embeddings(path: str | os.PathLike, name: str = "clap") -> EmbeddingSet:
    """Stored embeddings of a scored manifest, with the fingerprint its sidecar records."""
    ids, rows, fingerprint = _manifest_rows(path, name)
    return EmbeddingSet(np.stack(rows), ids, fingerprint, str(path))


def finite_manifest_embeddings(path: str | os.PathLike, name: str = "clap") -> tuple[EmbeddingSet, list[str]]:
    """`manifest_embeddings` without the rows that hold NaN or inf, and the ids of those rows
    (callers quarantine them); an `EmbeddingError` when no row is finite."""
    ids, rows, fingerprint = _manifest_rows(path, name)
    matrix = np.stack(rows)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.any():
        raise EmbeddingError(f"{path}: no cut has a finite {name} embedding (the audio or the model is broken)")
    dropped = [i for i, ok in zip(ids, finite) if not ok]
    return EmbeddingSet(matrix[finite], [i for i, ok in zip(ids, finite) if ok], fingerprint, str(path)), dropped
