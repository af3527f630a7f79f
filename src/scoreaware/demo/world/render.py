"""An excerpt of a work, played by a General MIDI instrument at a sampled tempo and dynamic.

score (music21) → excerpt with repeat signs stripped → MIDI at 120 quarter notes per minute →
(pretty_midi) program, velocities, transposition, time scaled to the sampled tempo, looped to the
clip's length → (midirenderer, TimGM6mb) 48 kHz stereo → 44.1 kHz, loudness set by the dynamic.

Choices and what they cost (measured here, ``../research`` figures on one shared core):

* **Renderer: midirenderer** (MIT, a Rust wheel: soundfont bytes + MIDI bytes → WAV), 0.5–0.6
  CPU-s per minute of audio. tinysoundfont is 2–10× faster but declares a ``pyaudio``
  dependency that does not build without PortAudio's headers, so ``pip install .`` would fail
  on a machine with only ``python3``; pyfluidsynth needs the system libfluidsynth.
* **Soundfont: TimGM6mb** (6 MB, GPL-2), the one inside ``pretty_midi``'s wheel: it installs
  from PyPI with no other step. FluidR3_GM (148 MB, MIT) sounds better but is a Debian package,
  not a Python one. The soundfont is the instrument samples; the rendered audio is a
  performance of public-domain scores with them (say so when you publish renders).
* **Tempo is the beat's**: a 6/8 jig's beat is the dotted quarter, a 2/2 reel's and a 4/2
  motet's the half note, so "fast" means the same felt pulse in every meter.
* **Dynamics are loudness and velocity**: soft, medium and loud clips are rendered at velocity
  40/75/110 and set to −24/−18/−13 LUFS (after rendering, so an instrument's sample level does
  not decide how loud it sounds); velocity also changes the timbre where the soundfont has
  velocity layers.
* **Repeat signs are stripped** before MIDI export: excerpts that cut through a repeat failed
  export ~15 % of the time, 1 in 48 after stripping. A work that still fails is reported as
  `ScoreError` and the planner takes the next work.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 44_100  # the corpus's sample rate (the renderer's 48 kHz, resampled)
RENDER_SR = 48_000


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # General MIDI program, 0-based
    family: str
    words: tuple[str, ...]  # how a caption names it (the first is the canonical name)


INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in (
    Instrument("piano", 0, "keyboard", ("piano", "grand piano", "solo piano")),
    Instrument("harpsichord", 6, "keyboard", ("harpsichord",)),
    Instrument("organ", 19, "keyboard", ("church organ", "pipe organ", "organ")),
    Instrument("guitar", 24, "plucked", ("nylon-string guitar", "classical guitar", "acoustic guitar")),
    Instrument("violin", 40, "bowed", ("violin", "fiddle", "solo violin")),
    Instrument("cello", 42, "bowed", ("cello", "violoncello")),
    Instrument("strings", 48, "bowed", ("string ensemble", "strings", "string orchestra")),
    Instrument("choir", 52, "voice", ("choir", "choir voices", "vocal ensemble")),
    Instrument("trumpet", 56, "brass", ("trumpet",)),
    Instrument("oboe", 68, "wind", ("oboe",)),
    Instrument("clarinet", 71, "wind", ("clarinet",)),
    Instrument("flute", 73, "wind", ("flute",)),
)}
TEMPO_BANDS = {"slow": (58, 76), "moderate": (88, 108), "fast": (120, 144)}  # beats per minute
DYNAMICS = {"soft": (40, -24.0), "medium": (75, -18.0), "loud": (110, -13.0)}  # velocity, LUFS


class ScoreError(RuntimeError):
    """A work that cannot be parsed, excerpted or exported to MIDI."""


@dataclass(frozen=True)
class Excerpt:
    """The first bars of a work as MIDI at 120 quarter notes per minute, with what the score says."""

    midi: bytes
    quarters: float  # length of the excerpt in quarter notes
    beat_quarters: float  # the meter's beat (1.5 in 6/8, 2 in 2/2)
    meter: str
    tonic: str  # of the excerpt, before any transposition, e.g. "F#"
    mode: str  # "major" or "minor"
    voices: int
    bars: int


@functools.lru_cache(maxsize=1)
def soundfont() -> bytes:
    """TimGM6mb, the General MIDI soundfont in pretty_midi's wheel."""
    import pretty_midi

    return (Path(pretty_midi.__file__).parent / "TimGM6mb.sf2").read_bytes()


def pitch_name(tonic: str, semitones: int = 0) -> str:
    """`tonic` (music21 spelling, e.g. "B-") moved by `semitones`, spelled for captions ("Bb")."""
    from music21 import pitch

    moved = pitch.Pitch(tonic).transpose(semitones) if semitones else pitch.Pitch(tonic)
    if semitones:  # the simplest spelling after a transposition (no "E#" or "C-")
        moved = moved.simplifyEnharmonic(mostCommon=True)
    return moved.name.replace("-", "b")


def excerpt(source: str, number: int | None, seconds: float, beat_bpm: float) -> Excerpt:
    """The bars of a work that last at least `seconds` at `beat_bpm` (all of it if it is shorter)."""
    from music21 import bar, corpus, repeat, spanner, stream, tempo
    from music21.midi import translate

    try:
        score = corpus.parse(source, number=number) if number is not None else corpus.parse(source)
        if isinstance(score, stream.Opus):
            score = score.scores[0]
        signature = score.recurse().getElementsByClass("TimeSignature").first()
        if signature is None:
            raise ScoreError(f"{source}: no time signature")
        beat = float(signature.beatDuration.quarterLength)
        bar_quarters = float(signature.barDuration.quarterLength)
        quarter_seconds = 60.0 / (beat_bpm * beat)
        bars = max(2, math.ceil(seconds / (bar_quarters * quarter_seconds)) + 1)
        part = score.parts[0] if score.parts else score
        measures = part.getElementsByClass("Measure")
        first = measures[0].number if measures else 0
        piece = score.measures(first, first + bars)
        for element in list(piece.recurse().getElementsByClass((bar.Repeat, repeat.RepeatExpression,
                                                                 repeat.RepeatMark, tempo.MetronomeMark,
                                                                 tempo.TempoText))):
            element.activeSite.remove(element)
        for bracket in list(piece.recurse().getElementsByClass(spanner.RepeatBracket)):
            for site in list(bracket.sites.get()):
                if hasattr(site, "remove"):
                    site.remove(bracket)
        key = piece.analyze("key")
        midi = translate.streamToMidiFile(piece).writestr()
        quarters = float(piece.highestTime)
        voices = len(piece.parts) if getattr(piece, "parts", None) else 1
    except ScoreError:
        raise
    except Exception as error:  # music21 raises many types on odd scores; the planner takes another work
        raise ScoreError(f"{source}#{number}: {type(error).__name__}: {error}") from error
    if quarters <= 0 or not midi:
        raise ScoreError(f"{source}#{number}: empty excerpt")
    return Excerpt(midi, quarters, beat, signature.ratioString, key.tonic.name, key.mode, voices, bars)


def perform(piece: Excerpt, program: int, beat_bpm: float, velocity: int, transpose: int, seconds: float,
            rng: np.random.Generator) -> bytes:
    """MIDI of `piece` on one GM `program`, at `beat_bpm`, looped to `seconds` (+1 s of tail).

    Velocities scatter ±6 around `velocity` (a player's accents; from `rng`)."""
    import pretty_midi

    source = pretty_midi.PrettyMIDI(io.BytesIO(piece.midi))
    scale = (60.0 / (beat_bpm * piece.beat_quarters)) / 0.5  # music21 writes 120 quarters per minute
    length = piece.quarters * 60.0 / (beat_bpm * piece.beat_quarters)
    out = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    player = pretty_midi.Instrument(program=program)
    notes = sorted((n for i in source.instruments if not i.is_drum for n in i.notes), key=lambda n: (n.start, n.pitch))
    loops = max(1, math.ceil((seconds + 1.0) / length))
    for loop in range(loops):
        for n in notes:
            start = n.start * scale + loop * length
            if start > seconds + 1.0:
                break
            pitch = int(np.clip(n.pitch + transpose, 21, 108))
            loud = int(np.clip(velocity + rng.integers(-6, 7), 1, 127))
            player.notes.append(pretty_midi.Note(loud, pitch, start, n.end * scale + loop * length))
    out.instruments.append(player)
    buffer = io.BytesIO()
    out.write(buffer)
    return buffer.getvalue()


def synthesize(midi: bytes, seconds: float) -> np.ndarray:
    """(2, seconds · 44.1 kHz) float32 audio of `midi` through TimGM6mb, 50 ms fade at the end."""
    import midirenderer
    import soundfile as sf
    from scipy.signal import resample_poly

    wave = midirenderer.render_wave_from(soundfont(), midi)
    audio, rate = sf.read(io.BytesIO(bytes(wave)), dtype="float32", always_2d=True)
    assert rate == RENDER_SR, f"midirenderer wrote {rate} Hz"
    audio = resample_poly(audio.T, 147, 160, axis=-1).astype(np.float32)  # 48 kHz -> 44.1 kHz
    n = int(round(seconds * SR))
    audio = np.pad(audio[:, :n], ((0, 0), (0, max(0, n - audio.shape[-1]))))
    fade = int(0.05 * SR)
    audio[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return audio
