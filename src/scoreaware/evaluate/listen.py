"""A listening page: each prompt's real render beside a clip generated for it, as mel spectrograms
and audio players, with what the judge heard in each.

Why: an adherence rate says how often the judge hears the prompted instrument, tempo band and
mode; it does not say whether a clip has notes. A spectrogram shows it at a glance (onsets are
vertical edges, held pitches horizontal lines, texture a blur), and the player lets a person hear it.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from scoreaware.core.files import atomic_write_text, save_figure

SPECTROGRAM_RATE = 22050
N_MELS = 80


@dataclass(frozen=True)
class ListeningPair:
    """One prompt: its real render and a generated clip (WAV files), and what the judge heard in each."""

    prompt_id: str
    prompt: str
    real: Path
    generated: Path
    heard_real: str
    heard_generated: str


def mel_db(path: Path) -> np.ndarray:
    """(N_MELS, frames) log-mel spectrogram of a WAV (mono mix, at 22.05 kHz), in dB below its peak."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = librosa.resample(audio.mean(axis=1), orig_sr=rate, target_sr=SPECTROGRAM_RATE)
    mel = librosa.feature.melspectrogram(y=mono, sr=SPECTROGRAM_RATE, n_fft=2048, hop_length=256, n_mels=N_MELS)
    return librosa.power_to_db(mel, ref=np.max, top_db=80.0)


def plot_pair(pair: ListeningPair, out: Path) -> Path:
    """Two panels, render left and generated right, on one colour scale; written to `out` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.0), sharey=True)
    for ax, path, title in ((axes[0], pair.real, f"real render — judge: {pair.heard_real}"),
                            (axes[1], pair.generated, f"generated — judge: {pair.heard_generated}")):
        mel = mel_db(path)
        seconds = mel.shape[1] * 256 / SPECTROGRAM_RATE
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0, extent=(0, seconds, 0, N_MELS))
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("seconds")
    axes[0].set_ylabel("mel band")
    fig.suptitle(pair.prompt, fontsize=9)
    return save_figure(fig, out)


def write_listening_page(pairs: list[ListeningPair], folder: Path, title: str, note: str = "") -> Path:
    """`folder`/index.html with each pair's spectrograms and players (the WAVs copied beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair in pairs:
        real, generated = (folder / f"{pair.prompt_id}_{kind}.wav" for kind in ("real", "generated"))
        for source, dest in ((pair.real, real), (pair.generated, generated)):
            if source.resolve() != dest.resolve():
                shutil.copyfile(source, dest)
        png = plot_pair(pair, folder / f"{pair.prompt_id}.png")
        rows.append(f"<h3>{html.escape(pair.prompt_id)}: {html.escape(pair.prompt)}</h3>\n"
                    f"<img src='{png.name}' width='900'>\n<table><tr>"
                    f"<td>real render ({html.escape(pair.heard_real)})<br>"
                    f"<audio controls preload='none' src='{real.name}'></audio></td>"
                    f"<td>generated ({html.escape(pair.heard_generated)})<br>"
                    f"<audio controls preload='none' src='{generated.name}'></audio></td></tr></table>")
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>\n"
            f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(note)}</p>\n" + "\n".join(rows) + "\n")
    atomic_write_text(folder / "index.html", page)
    return folder / "index.html"
