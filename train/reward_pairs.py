"""Preference pairs -> feature matrices for reward training.

Two JSONL row shapes are accepted (mixed freely):

* cut-id pairs ``{"cut_a": "...", "cut_b": "...", "winner": "a"}``, resolved in a scored
  manifest: its stored ``clap_audio_emb``, ``clap_text_emb`` and ``mert_emb`` are used, so no
  model runs (MERT runs only for cuts the reward stage has not seen);
* audio-file pairs ``{"prompt": "...", "audio_a": "x.wav", "audio_b": "y.wav", "winner": "b"}``
  (paths relative to the pairs file); CLAP and MERT run on them (center 10 s for CLAP).

``winner`` is ``"a"`` or ``"b"`` (also ``0``/``1``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lhotse import Recording

from scoreaware.core.errors import StageError
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import provenance_chain, weights_fingerprint
from scoreaware.curate.scoring.audio import mono_resampled, policy_windows
from scoreaware.curate.scoring.reward import assemble_features
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, CLAP_TEXT_EMB, MERT_EMB


class PairsError(StageError, ValueError):
    """A pairs file that cannot be used; names the line."""


@dataclass
class PairFeatures:
    a: np.ndarray
    b: np.ndarray
    a_wins: np.ndarray
    clap_dim: int
    mert_dim: int
    a_ids: list[str] | None = None  # which clip each side is (for a split by clip)
    b_ids: list[str] | None = None
    groups: list[str | None] | None = None  # an optional "group" per pair (e.g. the source clip)


def _winner(row: dict, where: str) -> bool:
    value = row.get("winner")
    if value in ("a", "A", 0, "0"):
        return True
    if value in ("b", "B", 1, "1"):
        return False
    raise PairsError(f"{where}: winner must be 'a' or 'b', got {value!r}")


def read_pairs(path: str | os.PathLike) -> list[tuple[dict, bool, str]]:
    """(row, a_wins, where) for every line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PairsError(f"{where}: invalid JSON ({exc})") from None
            if not ({"cut_a", "cut_b"} <= row.keys() or {"audio_a", "audio_b"} <= row.keys()):
                raise PairsError(f"{where}: needs cut_a/cut_b or audio_a/audio_b")
            rows.append((row, _winner(row, where), where))
    if not rows:
        raise PairsError(f"{path}: no pairs")
    return rows


def pair_features(path: str | os.PathLike, manifest: str | os.PathLike | None = None, clap=None, mert=None,
                  prompt_protocol: str = "empty") -> PairFeatures:
    """Feature rows for both sides of every pair (see the module docstring)."""

    rows = read_pairs(path)
    cuts = {}
    needed = {row[k] for row, _, _ in rows for k in ("cut_a", "cut_b") if k in row}
    if needed:
        if manifest is None:
            raise PairsError(f"{path}: cut-id pairs need --manifest (a scored manifest)")
        cuts = {c.id: c for c in read_cuts(manifest) if c.id in needed}
        missing = sorted(needed - cuts.keys())
        if missing:
            raise PairsError(f"{path}: cut ids not in {manifest}: {missing[:5]}")
    root = Path(path).parent
    cache: dict[str, np.ndarray] = {}
    dims: dict[str, int] = {}

    def assemble(clap_audio: np.ndarray, mert_feat: np.ndarray, text) -> np.ndarray:
        dims.update(clap=int(np.shape(clap_audio)[-1]), mert=int(np.shape(mert_feat)[-1]))
        return assemble_features(clap_audio, mert_feat, text)[0]

    def from_cut(cut_id: str) -> np.ndarray:
        if cut_id not in cache:
            cut = cuts[cut_id]
            if not cut.has_custom(CLAP_AUDIO_EMB):
                raise PairsError(f"cut {cut_id} has no clap_audio_emb; score the manifest with `score clap`")
            if cut.has_custom(MERT_EMB):
                mert_feat = cut.load_custom(MERT_EMB)
            elif mert is not None:
                mert_feat = mert.embed([mono_resampled(cut, mert.sampling_rate)])[0]
            else:
                raise PairsError(f"cut {cut_id} has no mert_emb; pass --mert-model or score reward first")
            text = cut.load_custom(CLAP_TEXT_EMB) if prompt_protocol == "caption" else None
            cache[cut_id] = assemble(cut.load_custom(CLAP_AUDIO_EMB), mert_feat, text)
        return cache[cut_id]

    def from_file(audio: str, prompt: str) -> np.ndarray:
        key = f"{audio}\n{prompt}"
        if key not in cache:
            if clap is None or mert is None:
                raise PairsError("audio-file pairs need --clap-model and --mert-model")

            recording = Recording.from_file(root / audio)
            cut = recording.to_cut()
            windows = policy_windows(mono_resampled(cut, clap.sampling_rate), clap.window, "center")
            clap_audio = clap.embed_audio(clap.preprocessor(windows)).mean(axis=0)
            clap_audio /= max(np.linalg.norm(clap_audio), 1e-12)
            text = clap.embed_text([prompt])[0] if prompt_protocol == "caption" and prompt else None
            mert_feat = mert.embed([mono_resampled(cut, mert.sampling_rate)])[0]
            cache[key] = assemble(clap_audio, mert_feat, text)
        return cache[key]

    a, b, wins, a_ids, b_ids, groups = [], [], [], [], [], []
    for row, a_wins, _ in rows:
        if "cut_a" in row:
            a.append(from_cut(row["cut_a"]))
            b.append(from_cut(row["cut_b"]))
            a_ids.append(str(row["cut_a"]))
            b_ids.append(str(row["cut_b"]))
        else:
            prompt = row.get("prompt", "") or ""
            a.append(from_file(row["audio_a"], prompt))
            b.append(from_file(row["audio_b"], prompt))
            a_ids.append(str(row["audio_a"]))
            b_ids.append(str(row["audio_b"]))
        groups.append(str(row["group"]) if row.get("group") is not None else None)
        wins.append(a_wins)
    return PairFeatures(np.stack(a), np.stack(b), np.asarray(wins), dims["clap"], dims["mert"], a_ids, b_ids,
                        groups if any(g is not None for g in groups) else None)


def feature_models(manifest: str | os.PathLike | None, clap=None, mert=None) -> dict:
    """Fingerprints of the CLAP and MERT weights the pair features came from."""

    found = {}
    if manifest is not None:
        for sidecar in provenance_chain(manifest):
            options = sidecar.get("options", {})
            if sidecar.get("stage") == "clap" and options.get("weights"):
                found.setdefault("clap_weights", options["weights"])
            if sidecar.get("stage") == "reward" and options.get("mert_weights"):
                found.setdefault("mert_weights", options["mert_weights"])
    if clap is not None:
        found.setdefault("clap_weights", clap.fingerprint)
    if mert is not None:
        found.setdefault("mert_weights", weights_fingerprint(mert.model_id))
    return found
