"""Audio file checks and decoding helpers shared by the stages.

Decoding goes through libsndfile (``soundfile``), the backend Lhotse itself uses for wav, flac,
mp3 and ogg, so what ingest accepts is exactly what later stages can load.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif"})
NEEDS_FFMPEG = frozenset({".m4a", ".aac", ".wma", ".mp4", ".webm"})
TRUNCATION_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class AudioInfo:
    """Facts about a decodable audio file, measured by decoding all of it."""

    sampling_rate: int
    num_channels: int
    num_samples: int
    format: str

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate


class AudioProblem(Exception):
    """A file that must not enter the manifests; `reason` is a short code for the quarantine."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def declared_wav_frames(path: str | os.PathLike) -> int | None:
    """Frames a RIFF/WAVE header declares, or None when it cannot tell.

    libsndfile silently shortens a truncated WAV to the bytes present, so a header check is
    the only way to see that the file was cut off.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = f.read(size)
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                if size % 2:
                    f.seek(1, os.SEEK_CUR)
            elif name == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):  # streaming writers leave 0 / -1
                    return None
                return size // block_align
            else:
                f.seek(size + (size % 2), os.SEEK_CUR)


def probe_audio(path: str | os.PathLike, block_frames: int = 1 << 18) -> AudioInfo:
    """Decode the whole file in blocks and check it; raises :class:`AudioProblem`.

    Checks: the extension is an audio format libsndfile reads, the file opens, every block
    decodes, there is at least one sample, all samples are finite, and a WAV holds as many
    frames as its header declares.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in NEEDS_FFMPEG:
        raise AudioProblem("unsupported_format", f"{suffix} needs FFmpeg; convert to flac/wav/mp3")
    if suffix not in AUDIO_EXTENSIONS:
        raise AudioProblem("not_audio", f"extension {suffix or '(none)'} is not an audio format")
    if path.stat().st_size == 0:
        raise AudioProblem("empty_file", "file is 0 bytes")
    try:
        info = sf.info(str(path))
    except Exception:
        raise AudioProblem("not_audio", f"not a recognised audio file ({_sniff(path)})") from None
    frames = 0
    try:
        for block in sf.blocks(str(path), blocksize=block_frames, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise AudioProblem("non_finite_samples", f"NaN/inf samples near frame {frames}")
            frames += len(block)
    except AudioProblem:
        raise
    except Exception as exc:
        raise AudioProblem("corrupt", f"decoding failed after {frames} frames: {_short(exc)}") from None
    if frames == 0:
        raise AudioProblem("empty_audio", "file decodes to 0 samples")
    if suffix == ".wav":
        declared = declared_wav_frames(path)
        if declared is not None and declared - frames > TRUNCATION_TOLERANCE_S * info.samplerate:
            raise AudioProblem(
                "truncated",
                f"header declares {declared / info.samplerate:.2f} s, file holds {frames / info.samplerate:.2f} s",
            )
    return AudioInfo(
        sampling_rate=int(info.samplerate),
        num_channels=int(info.channels),
        num_samples=frames,
        format=info.format,
    )


def _sniff(path: Path) -> str:
    """A hint at what a non-audio file is: its first bytes, as text when they are text."""
    with open(path, "rb") as f:
        head = f.read(24)
    try:
        text = head.decode("utf-8")
        if text.isprintable() or text.strip().isprintable():
            return f"starts with text {text.strip()[:20]!r}"
    except UnicodeDecodeError:
        pass
    return f"starts with bytes {head[:8].hex(' ')}"


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def load_cut_audio(cut) -> np.ndarray:
    """The samples of a Lhotse cut as (channels, time) float32, whatever its type."""
    audio = cut.load_audio()
    return np.atleast_2d(np.asarray(audio, dtype=np.float32))
