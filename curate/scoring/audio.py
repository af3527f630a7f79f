"""Audio preparation for scorers: mono, resampled, and cut into deterministic windows.

laion_clap and the transformers CLAP feature extractor both crop clips longer than 10 s at a
*random* offset. Scorers here never hand them more than one window: windows are chosen by a
fixed policy, so scores are reproducible.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

POLICIES = ("first", "center", "mean")


class NonFiniteAudio(ValueError):
    """Decoded audio holds NaN or inf samples."""


def mono_resampled(cut, sampling_rate: int) -> np.ndarray:
    """The cut's audio down-mixed to mono and resampled (torchaudio): (time,) float32."""
    audio = np.atleast_2d(cut.load_audio()).astype(np.float32)
    if not np.isfinite(audio).all():  # a NaN would reach the model and every statistic after it
        bad = int((~np.isfinite(audio)).sum())
        raise NonFiniteAudio(f"{bad} non-finite sample(s) (NaN or inf) in the decoded audio")
    audio = audio.mean(axis=0)
    if cut.sampling_rate != sampling_rate:
        with torch.inference_mode():
            audio = resampler(cut.sampling_rate, sampling_rate)(torch.from_numpy(audio)).numpy()
    return audio


@functools.lru_cache(maxsize=8)
def resampler(source_rate: int, target_rate: int):
    """A torchaudio resampler whose sinc kernel is computed once per rate pair (per process)."""
    import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

    return torchaudio.transforms.Resample(source_rate, target_rate)


def policy_windows(audio: np.ndarray, window: int, policy: str) -> list[np.ndarray]:
    """Windows of at most `window` samples chosen by `policy`.

    ``first``: the first window. ``center``: the window around the middle. ``mean``: every
    non-overlapping window (a tail shorter than half a window is dropped unless it is all
    there is); their embeddings are averaged. Audio no longer than a window is one window.
    """
    if policy not in POLICIES:
        raise ValueError(f"window policy {policy!r} not implemented; choose from {POLICIES}")
    n = audio.shape[-1]
    if n <= window:
        return [audio]
    if policy == "first":
        return [audio[:window]]
    if policy == "center":
        start = (n - window) // 2
        return [audio[start : start + window]]
    starts = range(0, n, window)
    pieces = [audio[s : s + window] for s in starts]
    return [p for p in pieces if p.shape[-1] >= window // 2] or pieces[:1]


def repeat_pad(audio: np.ndarray, length: int) -> np.ndarray:
    """laion_clap's ``repeatpad``: tile whole copies, then zero-pad to `length`."""
    n = audio.shape[-1]
    if n >= length:
        return audio[:length]
    tiled = np.tile(audio, max(1, length // max(n, 1)))
    return np.pad(tiled, (0, length - tiled.shape[-1]))
