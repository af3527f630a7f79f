"""Tempo and key/mode of audio by signal processing (librosa): no learned weights, nothing trained here.

* **Tempo**: librosa's beat tracker on the onset envelope (hop 512 at 22.05 kHz). A beat tracker
  often locks to twice or half the felt beat (or to the eighth notes of a 6/8 jig: ×3/2), so
  `tempo_band` reads a band only where the estimate falls inside it (±8 %), and otherwise folds it
  by octaves into the bands' span and takes the nearest band in log tempo.
* **Key and mode**: the Krumhansl–Kessler profiles (Krumhansl 1990, *Cognitive Foundations of
  Musical Pitch*, table 4.1) correlated with the clip's mean constant-Q chroma, over the 24 major
  and minor keys; the mode margin is the best major correlation minus the best minor one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

JUDGE_SR = 22_050
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_ENHARMONIC = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B", "Fb": "E", "E#": "F",
               "B#": "C"}
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class KeyEstimate:
    tonic: str  # one of TONICS
    mode: str  # "major" or "minor"
    mode_margin: float  # best major correlation − best minor correlation (> 0: major)
    correlation: float


def pitch_class(name: str) -> int:
    """0–11 of a tonic spelled "C#", "Db", "B-" (music21) or "Bb"."""
    name = name.replace("-", "b")
    name = _ENHARMONIC.get(name, name)
    return TONICS.index(name)


def estimate_tempo(audio: np.ndarray, sr: int = JUDGE_SR) -> float:
    """Beats per minute of mono `audio` (0.0 when no beat is found)."""
    import librosa

    onset = librosa.onset.onset_strength(y=audio, sr=sr, hop_length=512)
    tempo, _ = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=512, start_bpm=100.0)
    return float(np.atleast_1d(tempo)[0])


def tempo_band(bpm: float, bands: dict[str, tuple[float, float]]) -> str | None:
    """The band of `bands` ({name: (low, high)} in BPM) that `bpm` falls in (±8 %), else the nearest in
    log tempo after folding `bpm` by octaves into the bands' span; None for no tempo."""
    if not bpm or not math.isfinite(bpm):
        return None
    for name, (low, high) in bands.items():
        if low * 0.92 <= bpm <= high * 1.08:
            return name
    low, high = min(b[0] for b in bands.values()), max(b[1] for b in bands.values())
    while bpm > high * 1.08:
        bpm /= 2
    while bpm < low * 0.92:
        bpm *= 2
    centre = {name: math.log(math.sqrt(lo * hi)) for name, (lo, hi) in bands.items()}
    return min(centre, key=lambda name: abs(centre[name] - math.log(bpm)))


def chroma(audio: np.ndarray, sr: int = JUDGE_SR) -> np.ndarray:
    """(12,) mean constant-Q chroma of mono `audio`, C first."""
    import librosa

    return librosa.feature.chroma_cqt(y=audio, sr=sr, hop_length=2048).mean(axis=1)


def estimate_key(audio: np.ndarray, sr: int = JUDGE_SR) -> KeyEstimate:
    """The best of the 24 Krumhansl–Kessler keys for mono `audio`."""
    profile = chroma(audio, sr)
    if not np.any(profile > 0) or np.allclose(profile, profile[0]):
        return KeyEstimate("C", "major", 0.0, 0.0)
    scores = {}
    for mode, template in (("major", MAJOR), ("minor", MINOR)):
        for k in range(12):
            scores[(k, mode)] = float(np.corrcoef(profile, np.roll(template, k))[0, 1])
    (k, mode), best = max(scores.items(), key=lambda item: item[1])
    margin = max(v for (_, m), v in scores.items() if m == "major") - max(
        v for (_, m), v in scores.items() if m == "minor")
    return KeyEstimate(TONICS[k], mode, float(margin), best)


def key_relation(tonic: str, mode: str, true_tonic: str, true_mode: str) -> str:
    """'exact', 'relative' (C major / A minor), 'fifth' (a fifth either way, same mode), 'parallel'
    (C major / C minor) or 'other'."""
    a, b = pitch_class(tonic), pitch_class(true_tonic)
    if (a, mode) == (b, true_mode):
        return "exact"
    if mode != true_mode:
        major, minor = (a, b) if mode == "major" else (b, a)
        if (major - minor) % 12 == 3:
            return "relative"
        if a == b:
            return "parallel"
        return "other"
    return "fifth" if (a - b) % 12 in (5, 7) else "other"
