"""Tiny audio files and cuts for tests: deterministic tones, noise and silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import Recording
from lhotse.audio import AudioSource
from lhotse.utils import fastcopy

SR = 16000


def tone(seconds: float, sr: int = SR, freq: float = 440.0, amplitude: float = 0.3, channels: int = 1) -> np.ndarray:
    """A sine tone shaped (time, channels)."""
    t = np.arange(int(seconds * sr)) / sr
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, sr: int = SR, **kwargs) -> Path:
    """Write (time, channels) audio; format from the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, **kwargs)
    return path


def file_cut(path: Path, cut_id: str | None = None, **custom):
    """A cut over a whole audio file, with optional custom fields."""
    info = sf.info(str(path))
    rec = Recording(
        id=cut_id or path.stem,
        sources=[AudioSource(type="file", channels=list(range(info.channels)), source=str(path))],
        sampling_rate=info.samplerate,
        num_samples=info.frames,
        duration=info.frames / info.samplerate,
    )
    return fastcopy(rec.to_cut(), custom=custom or None)
