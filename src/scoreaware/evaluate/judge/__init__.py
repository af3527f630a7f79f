"""The independent judge: attributes of audio estimated by tools no curation, training or selection step uses.

`Judge.hear(audio, sr)` returns the tempo (and its band), the key and mode, and the instrument
with its probabilities; `margin` gives the continuous per-clip score of a prompted class (its
probability minus the best other's). What each estimator achieves on real renders (its ceiling)
is measured by `scoreaware demo train-judge` and stored beside the classifier in ``JUDGE.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoreaware.evaluate.judge.dsp import JUDGE_SR, estimate_key, estimate_tempo, tempo_band
from scoreaware.evaluate.judge.instrument import InstrumentClassifier, features

CLASSIFIER = "instrument.npz"
CARD = "JUDGE.json"


@dataclass(frozen=True)
class Heard:
    """What the judge hears in one clip."""

    tempo_bpm: float
    tempo_band: str | None
    tonic: str
    mode: str
    mode_margin: float  # > 0 major
    instrument: str
    instrument_probabilities: dict[str, float]

    def margin(self, instrument: str) -> float:
        """P(`instrument`) − the largest other probability (> 0 when it is the one heard)."""
        p = self.instrument_probabilities
        return p.get(instrument, 0.0) - max((v for k, v in p.items() if k != instrument), default=0.0)


class Judge:
    """The DSP estimators and the instrument classifier of a judge folder (``instrument.npz`` + ``JUDGE.json``)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        if not (folder / CLASSIFIER).is_file() or not (folder / CARD).is_file():
            raise FileNotFoundError(f"{folder} is not a judge folder (it needs {CLASSIFIER} and {CARD}; "
                                    "`scoreaware demo train-judge` writes them)")
        self.folder = folder
        self.card = json.loads((folder / CARD).read_text())
        self.bands = {name: tuple(b) for name, b in self.card["tempo_bands"].items()}
        self.classifier = InstrumentClassifier.load(folder / CLASSIFIER)

    def hear(self, audio: np.ndarray, sr: int) -> Heard:
        """Judge mono or (channels, samples) `audio` at `sr`."""
        import librosa

        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim > 1:
            audio = audio.mean(axis=0)
        if sr != JUDGE_SR:
            audio = librosa.resample(audio, orig_sr=sr, target_sr=JUDGE_SR, res_type="soxr_hq")
        bpm = estimate_tempo(audio)
        key = estimate_key(audio)
        p = self.classifier.probabilities(features(audio))[0]
        probabilities = {c: float(v) for c, v in zip(self.classifier.classes, p)}
        return Heard(bpm, tempo_band(bpm, self.bands), key.tonic, key.mode, key.mode_margin,
                     max(probabilities, key=probabilities.get), probabilities)

    @property
    def ceilings(self) -> dict:
        """What the judge achieves on real renders of unseen works ({attribute: accuracy})."""
        return self.card["ceilings"]
