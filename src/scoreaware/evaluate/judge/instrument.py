"""An instrument classifier for the judge: summary timbre features and a multinomial logistic regression.

Features (librosa, 22.05 kHz mono): the mean and standard deviation over time of 20 MFCCs and
their deltas, of spectral centroid, bandwidth, flatness and roll-off, of 7 spectral-contrast bands
and of the onset strength: 110 numbers a clip. The classifier is scikit-learn's
`LogisticRegression` on standardized features, stored as plain arrays (``.npz``, loaded with
``allow_pickle=False``): nothing in the file can run code.

The classifier is trained by `scoreaware demo train-judge` on renders of a seed of its own and
is never used to curate, train or select (the layer contract in ``pyproject.toml`` keeps every
curation, training and post-training module from importing this package).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoreaware.evaluate.judge.dsp import JUDGE_SR


def features(audio: np.ndarray, sr: int = JUDGE_SR) -> np.ndarray:
    """(110,) timbre summary of mono `audio` at `sr`."""
    import librosa

    audio = np.asarray(audio, dtype=np.float32)
    if audio.size < 2048:
        audio = np.pad(audio, (0, 2048 - audio.size))
    stft = np.abs(librosa.stft(audio, n_fft=2048, hop_length=512))
    mel = librosa.feature.melspectrogram(S=stft**2, sr=sr)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    frames = np.vstack([
        mfcc, librosa.feature.delta(mfcc, width=3),
        librosa.feature.spectral_centroid(S=stft, sr=sr) / 1000.0,
        librosa.feature.spectral_bandwidth(S=stft, sr=sr) / 1000.0,
        librosa.feature.spectral_flatness(S=stft),
        librosa.feature.spectral_rolloff(S=stft, sr=sr) / 1000.0,
        librosa.feature.spectral_contrast(S=stft, sr=sr),
        librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr)[None],
    ])  # (55, frames)
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)]).astype(np.float32)


@dataclass(frozen=True)
class InstrumentClassifier:
    """Softmax over `classes` of standardized features: p = softmax(((x − mean) / scale) · coef.T + intercept)."""

    classes: tuple[str, ...]
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (C, F)
    intercept: np.ndarray  # (C,)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities of (N, F) features."""
        logits = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.probabilities(x).argmax(axis=1)]

    def save(self, path: Path) -> Path:
        np.savez(path, classes=np.array(self.classes), mean=self.mean, scale=self.scale, coef=self.coef,
                 intercept=self.intercept)
        return path

    @staticmethod
    def load(path: str | Path) -> InstrumentClassifier:
        with np.load(path, allow_pickle=False) as f:
            return InstrumentClassifier(tuple(str(c) for c in f["classes"]), f["mean"], f["scale"], f["coef"],
                                        f["intercept"])


def fit_classifier(x: np.ndarray, labels: list[str], c: float = 1.0, seed: int = 0) -> InstrumentClassifier:
    """Fit the classifier on (N, F) features and their labels (scikit-learn, lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit((x - mean) / scale, labels)
    return InstrumentClassifier(tuple(str(k) for k in model.classes_), mean.astype(np.float32),
                                scale.astype(np.float32), model.coef_.astype(np.float32),
                                model.intercept_.astype(np.float32))
