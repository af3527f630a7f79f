"""A small, deterministic, synthetic music corpus with known attributes (the embedded default).

Each clip is procedurally composed from a genre (drum pattern, instrumentation, tempo range),
a key and mode, and a mood that follows from mode and tempo; captions and Jamendo-style tags
are derived from those attributes. On purpose, the corpus also holds the problems real
collections have: some captions describe a different clip, a few clips are near-silent (one
only in its middle), one file is truncated and one "mp3" is an HTML error page, and a share of
the clips carry a graded quality degradation their metadata does not mention (additive noise,
clipping, a muffling low-pass, mains hum, dropouts). The ground truth of every clip is written
to ``truth.jsonl`` so tests and demos can check curation.

Layout written under DIR::

    audio/<id % 100:02d>/<id>.{mp3,flac,wav}      mp3 / flac / wav in turn; stereo and mono
    metadata/autotagging.tsv                       MTG-Jamendo tags TSV
    metadata/captions.json                         ATTM challenge caption JSON
    metadata/tracks.csv                            plain CSV (id, path, license, artist, title)
    truth.jsonl                                    attributes and planted defects per clip
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, lfilter, sosfilt

from scoreaware.curate.loudness import window_loudness

SR = 44100
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}
PROGRESSIONS = {"major": [0, 4, 5, 3], "minor": [0, 5, 2, 6]}  # I-V-vi-IV, i-VI-III-VII

GENRES = {
    "rock": dict(tempo=(104, 144), lead="guitar", chords="guitar", drums="rock", grid=2),
    "electronic": dict(tempo=(118, 132), lead="synth", chords="pad", drums="four_on_floor", grid=4),
    "ambient": dict(tempo=(60, 80), lead="piano", chords="pad", drums=None, grid=1),
    "jazz": dict(tempo=(92, 132), lead="piano", chords="piano", drums="swing", grid=2),
    "classical": dict(tempo=(66, 104), lead="strings", chords="piano", drums=None, grid=2),
    "folk": dict(tempo=(84, 112), lead="guitar", chords="guitar", drums="light", grid=2),
    "hiphop": dict(tempo=(80, 96), lead="piano", chords="pad", drums="boom_bap", grid=2),
}
INSTRUMENT_TAGS = {
    "guitar": "guitar", "synth": "synthesizer", "pad": "synthesizer", "piano": "piano",
    "strings": "strings", "bass": "bass", "drums": "drums",
}
INSTRUMENT_WORDS = {
    "guitar": "guitar", "synth": "lead synthesizer", "pad": "warm synth pads", "piano": "piano",
    "strings": "strings", "bass": "bass", "drums": "drums",
}
LICENSES = ["CC BY 4.0", "CC BY-SA 4.0", "CC BY-NC 4.0", "CC BY-NC-SA 4.0"]
TEMPLATES = [
    "A {mood} {genre} track at {tempo} BPM in {key}, featuring {instruments}.",
    "{Mood} {genre} music in {key} with {instruments}, around {tempo} BPM.",
    "An instrumental {genre} piece with {instruments}; {mood} mood, {tempo} BPM, {key}.",
]


@dataclass
class ClipSpec:
    """Ground truth of one synthetic clip."""

    id: str
    path: str
    genre: str
    tempo: int
    key: str
    mode: str
    mood: str
    instruments: list[str]
    channels: int
    caption: str
    caption_matches_audio: bool = True
    defect: str | None = None  # near_silent, silent_middle, truncated, not_audio
    degradation: str | None = None  # noise, clipping, lowpass, hum, dropouts (see DEGRADATIONS)
    degradation_strength: int | None = None  # 1 mild, 2 clear, 3 severe
    target_lufs: float = -16.0
    lufs: float | None = None  # measured after rendering (before lossy encoding)


def mood_of(mode: str, tempo: int) -> str:
    """The mood a mode and tempo suggest (what the caption and the tags say)."""
    if mode == "major":
        return "energetic" if tempo >= 120 else "happy" if tempo >= 90 else "calm"
    return "dark" if tempo >= 120 else "melancholic" if tempo >= 90 else "sad"


def caption_of(spec: ClipSpec, rng: np.random.Generator) -> str:
    words = [INSTRUMENT_WORDS[i] for i in spec.instruments]
    listed = ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else words[0]
    text = TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(
        mood=spec.mood, Mood=spec.mood.capitalize(), genre=spec.genre, tempo=spec.tempo,
        key=f"{spec.key} {spec.mode}", instruments=listed,
    )
    text = text.replace("A a", "An a").replace("A e", "An e").replace("A i", "An i").replace("A o", "An o")
    return text[0].upper() + text[1:]


def tags_of(spec: ClipSpec) -> list[str]:
    """Jamendo-style tags (``genre---rock``) from the clip's attributes."""
    instruments = sorted({INSTRUMENT_TAGS[i] for i in spec.instruments})
    return [f"genre---{spec.genre}", *(f"instrument---{i}" for i in instruments), f"mood/theme---{spec.mood}"]


# ---------------------------------------------------------------------------------- sounds
def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _saw(freq: float, t: np.ndarray, harmonics: int = 12) -> np.ndarray:
    k = np.arange(1, min(harmonics, int(SR / 2 / freq)) + 1)[:, None]
    return (np.sin(2 * np.pi * freq * k * t) / k).sum(0) * 0.6


@functools.lru_cache(maxsize=4096)
def note(instrument: str, pitch: float, seconds: float) -> np.ndarray:
    """One note of `instrument` at MIDI `pitch`, `seconds` long (plus its release).

    Cached: a piece repeats its notes, and a note is a pure function of its arguments.
    """
    f = _midi_hz(pitch)
    if instrument == "guitar":  # Karplus-Strong plucked string, excited by seeded noise
        period = max(2, int(round(SR / f)))
        n = int((seconds + 0.3) * SR)
        excitation = np.zeros(n)
        excitation[:period] = np.random.default_rng([int(pitch), int(seconds * 1000)]).uniform(-1, 1, period)
        a = np.zeros(period + 2)
        a[0], a[period], a[period + 1] = 1.0, -0.497, -0.497
        return lfilter([1.0], a, excitation) * 0.8
    if instrument == "piano":
        t = _t(seconds + 0.5)
        k = np.arange(1, 8)[:, None]
        partials = np.sin(2 * np.pi * f * k * (1 + 0.0004 * k**2) * t) / k**1.3 * np.exp(-t * (1.2 + 0.7 * k))
        return partials.sum(0) * np.minimum(1, t / 0.004)
    if instrument == "synth":
        t = _t(seconds + 0.1)
        env = np.minimum(1, t / 0.01) * np.exp(-t * 2.0) * (t < seconds + 0.05)
        return _saw(f, t) * env
    if instrument in ("pad", "strings"):
        t = _t(seconds + 0.4)
        vibrato = 1 + 0.003 * np.sin(2 * np.pi * 5.5 * t) if instrument == "strings" else 1
        tone = sum(_saw(f * d, t * vibrato, 8) for d in (0.996, 1.0, 1.004)) / 3
        attack = 0.25 if instrument == "pad" else 0.08
        env = np.minimum(1, t / attack) * np.clip((seconds + 0.4 - t) / 0.4, 0, 1)
        return tone * env
    if instrument == "bass":
        t = _t(seconds + 0.05)
        return (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) * np.exp(-t * 3) * np.minimum(1, t / 0.005)
    raise ValueError(f"instrument {instrument!r} not implemented")


def drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One drum hit."""
    if kind == "kick":
        t = _t(0.35)
        phase = 2 * np.pi * np.cumsum(45 + 90 * np.exp(-t * 30)) / SR
        return np.sin(phase) * np.exp(-t * 9)
    if kind == "snare":
        t = _t(0.25)
        noise = sosfilt(butter(2, [1500, 7000], "bandpass", fs=SR, output="sos"), rng.standard_normal(t.size))
        return (noise * 1.5 + 0.5 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 22)
    if kind in ("hat", "ride"):
        t = _t(0.08 if kind == "hat" else 0.6)
        noise = sosfilt(butter(2, 7000, "highpass", fs=SR, output="sos"), rng.standard_normal(t.size))
        return noise * np.exp(-t * (70 if kind == "hat" else 7)) * (0.5 if kind == "hat" else 0.35)
    raise ValueError(f"drum {kind!r} not implemented")


DRUM_PATTERNS = {  # (kind, positions in 16ths of a bar)
    "rock": [("kick", [0, 8, 10]), ("snare", [4, 12]), ("hat", range(0, 16, 2))],
    "four_on_floor": [("kick", [0, 4, 8, 12]), ("snare", [4, 12]), ("hat", [2, 6, 10, 14])],
    "swing": [("ride", [0, 4, 7, 8, 12, 15]), ("kick", [0]), ("snare", [12])],
    "light": [("kick", [0, 8]), ("hat", [4, 12])],
    "boom_bap": [("kick", [0, 7, 10]), ("snare", [4, 12]), ("hat", range(0, 16, 2))],
}


# --------------------------------------------------------------------------- degradations
DEGRADATIONS = {  # kind: the parameter at strength 1, 2, 3 (mild, clear, severe)
    "noise": (30.0, 18.0, 6.0),  # SNR of white noise, dB
    "clipping": (0.5, 0.25, 0.08),  # hard-clip threshold as a fraction of the peak
    "lowpass": (5000.0, 2000.0, 700.0),  # cutoff of an 8th-order Butterworth, Hz
    "hum": (-30.0, -20.0, -8.0),  # 50 Hz mains hum and its harmonics relative to the music RMS, dB
    "dropouts": (0.5, 1.5, 3.0),  # gaps of 60-250 ms per second
}
# how a caption of a training corpus says it (the demo corpus's metadata never does)
DEGRADATION_WORDS = {
    "noise": ("with loud background hiss", "buried in static noise", "with noisy hiss"),
    "clipping": ("distorted by clipping", "with harsh clipping distortion", "badly clipped"),
    "lowpass": ("with a muffled, dull sound", "sounding muffled", "muffled as if through a wall"),
    "hum": ("with a loud electrical hum", "over a mains hum", "with a humming buzz"),
    "dropouts": ("with audio dropouts", "with gaps of silence where the audio drops out", "with dropouts"),
}


def degrade(audio: np.ndarray, kind: str, strength: int, rng: np.random.Generator) -> np.ndarray:
    """`audio` (channels, samples) at 44.1 kHz with a known degradation of grade 1-3; the
    loudness is not restored (the caller normalizes)."""
    level = DEGRADATIONS[kind][strength - 1]
    rms = float(np.sqrt(np.mean(audio**2))) or 1e-4
    if kind == "noise":
        return audio + rng.standard_normal(audio.shape) * rms / 10 ** (level / 20)
    if kind == "clipping":
        limit = level * float(np.abs(audio).max())
        return np.clip(audio, -limit, limit)
    if kind == "lowpass":
        return sosfilt(butter(8, level, "lowpass", fs=SR, output="sos"), audio, axis=-1)
    if kind == "hum":
        t = np.arange(audio.shape[-1]) / SR
        hum = sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in range(1, 6))
        hum *= rms * np.sqrt(2) / np.sqrt(np.mean(hum**2)) * 10 ** (level / 20)
        return audio + hum[None]
    if kind == "dropouts":
        out = audio.copy()
        seconds = audio.shape[-1] / SR
        for start in rng.uniform(0, seconds, int(round(level * seconds))):
            a = int(start * SR)
            out[:, a: a + int(rng.uniform(0.06, 0.25) * SR)] = 0.0
        return out
    raise ValueError(f"degradation {kind!r} not implemented; choose from {sorted(DEGRADATIONS)}")


def normalize(audio: np.ndarray, target_lufs: float) -> np.ndarray:
    """To `target_lufs` integrated loudness, then a soft limiter that keeps peaks in full scale."""
    loudness = window_loudness(audio, SR, [(0, audio.shape[-1])])[0]
    if np.isfinite(loudness):
        audio = audio * 10 ** ((target_lufs - loudness) / 20)
    return 0.98 * np.tanh(audio / 0.98)


# ----------------------------------------------------------------------------- composing
def _add(track: np.ndarray, sound: np.ndarray, at: float, gain: float) -> None:
    i = int(at * SR)
    if i < track.size:
        end = min(track.size, i + sound.size)
        track[i:end] += gain * sound[: end - i]


def render(spec: ClipSpec, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Audio of a clip: (channels, samples) float32 at 44.1 kHz, at the spec's loudness."""
    style = GENRES[spec.genre]
    n = int(duration * SR)
    beat = 60.0 / spec.tempo
    root = 48 + NOTE_NAMES.index(spec.key)
    scale = SCALES[spec.mode]
    stems: dict[str, np.ndarray] = {}

    def stem(name: str) -> np.ndarray:
        if name not in stems:
            stems[name] = np.zeros(n)
        return stems[name]

    hits = {kind: drum(kind, rng) for kind in ("kick", "snare", "hat", "ride")}
    bars = int(np.ceil(duration / (4 * beat)))
    melody_degree = 7
    for bar in range(bars):
        t0 = bar * 4 * beat
        degree = PROGRESSIONS[spec.mode][bar % 4]
        chord = [root + 12 + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        # chords: sustained pads/strings, strummed guitar, comped piano
        if style["chords"] in ("pad", "strings"):
            for p in chord:
                _add(stem("chords"), note(style["chords"], p, round(4 * beat, 3)), t0, 0.18)
        else:
            for b in range(4):
                for k, p in enumerate(chord):
                    strum = t0 + b * beat + k * 0.012
                    _add(stem("chords"), note(style["chords"], p, round(beat * 0.9, 3)), strum, 0.16)
        # bass: chord root on every beat (walking line in jazz)
        for b in range(4):
            step = scale[(degree + (b if spec.genre == "jazz" else 0)) % 7]
            _add(stem("bass"), note("bass", root - 12 + step, round(beat * 0.9, 3)), t0 + b * beat, 0.5)
        # melody: random walk on the scale, on the genre's rhythmic grid
        grid = style["grid"]
        for s in range(4 * grid):
            if rng.random() < 0.25:
                continue
            melody_degree = int(np.clip(melody_degree + rng.integers(-2, 3), 2, 13))
            pitch = root + 12 + scale[melody_degree % 7] + 12 * (melody_degree // 7)
            swing = 0.33 * beat / grid if spec.genre == "jazz" and s % 2 else 0.0
            _add(stem("lead"), note(style["lead"], pitch, round(beat / grid, 3)), t0 + s * beat / grid + swing, 0.3)
        if style["drums"]:
            for kind, positions in DRUM_PATTERNS[style["drums"]]:
                for pos in positions:
                    _add(stem("drums"), hits[kind], t0 + pos * beat / 4, 0.6 * rng.uniform(0.8, 1.0))
    pans = {"lead": 0.35, "chords": -0.3, "bass": 0.0, "drums": 0.05}
    if spec.channels == 1:
        audio = sum(stems.values())[None]
    else:
        left = sum(stems[k] * np.cos((pans[k] + 1) * np.pi / 4) for k in stems)
        right = sum(stems[k] * np.sin((pans[k] + 1) * np.pi / 4) for k in stems)
        audio = np.stack([left, right]) * np.sqrt(2)
    audio = normalize(_fade(audio), spec.target_lufs)
    if spec.degradation:  # its own stream: the music is the same with or without it
        damage = np.random.default_rng([int(spec.id), len(spec.degradation), spec.degradation_strength])
        audio = normalize(degrade(audio, spec.degradation, spec.degradation_strength, damage), spec.target_lufs)
    if spec.defect == "silent_middle":
        audio[:, int(n / 3): int(2 * n / 3)] *= 1e-4
    measured = window_loudness(audio, SR, [(0, n)])[0]
    spec.lufs = round(measured, 2) if np.isfinite(measured) else None  # None: below the -70 LUFS gate
    return audio.astype(np.float32)


def _fade(audio: np.ndarray, seconds: float = 0.05) -> np.ndarray:
    ramp = np.minimum(1, np.minimum(np.arange(audio.shape[-1]), np.arange(audio.shape[-1])[::-1]) / (seconds * SR))
    return audio * ramp


# ------------------------------------------------------------------------------- corpus
def plan_corpus(clips: int, seed: int, degraded: float = 0.25, mismatched: float | None = None) -> list[ClipSpec]:
    """Attributes and planted defects of every clip (no audio yet).

    :param degraded: share of the clips (among those with a readable file and a matching
        caption) that get a quality degradation: kinds in turn, strengths 1-3 in turn.
    :param mismatched: share of the readable clips whose caption describes another clip of another
        genre, drawn from their own stream; None keeps the demo's fixed one in eight.
    """
    rng = np.random.default_rng(seed)
    genres = list(GENRES)
    specs = []
    for i in range(clips):
        genre = genres[i % len(genres)]
        style = GENRES[genre]
        tempo = int(rng.integers(*style["tempo"]))
        mode = "major" if rng.random() < 0.5 else "minor"
        ident = str(1_000_000 + 37 * i)
        ext = ("mp3", "flac", "wav")[i % 3]
        drums = ["drums"] if style["drums"] else []
        instruments = list(dict.fromkeys([style["lead"], style["chords"], "bass", *drums]))
        spec = ClipSpec(
            id=ident, path=f"{int(ident) % 100:02d}/{ident}.{ext}", genre=genre, tempo=tempo,
            key=NOTE_NAMES[int(rng.integers(12))], mode=mode, mood=mood_of(mode, tempo),
            instruments=instruments, channels=2 if i % 2 == 0 else 1, caption="",
            target_lufs=float(np.round(rng.uniform(-20, -12), 1)),
        )
        spec.caption = caption_of(spec, rng)
        specs.append(spec)
    # Planted problems, at fixed positions so every corpus size >= 8 has each of them.
    defects = {1: "near_silent", 5: "silent_middle", 3: "truncated", 6: "not_audio"}
    if clips >= 20:
        defects[clips - 2] = "near_silent"
    for index, defect in defects.items():
        if index < clips:
            specs[index].defect = defect
            if defect == "near_silent":
                specs[index].target_lufs = -75.0
            if defect == "truncated":
                specs[index].path = specs[index].path.rsplit(".", 1)[0] + ".flac"
            if defect == "not_audio":
                specs[index].path = specs[index].path.rsplit(".", 1)[0] + ".mp3"
    # About one caption in eight describes another clip of a different genre (or the share asked for).
    readable = [i for i in range(clips) if specs[i].defect is None]
    swapped = range(2, clips, 8) if mismatched is None else sorted(np.random.default_rng([seed, 11]).permutation(
        readable)[: int(round(mismatched * len(readable)))])
    own = [spec.caption for spec in specs]  # a donor gives its own caption, even if it received another
    for index in swapped:
        donor = next((index + k) % clips for k in range(3, clips + 3)
                     if specs[(index + k) % clips].genre != specs[index].genre)
        if specs[index].defect is None:
            specs[index].caption = own[donor]
            specs[index].caption_matches_audio = False
    plant_degradations(specs, seed, degraded)
    return specs


def plant_degradations(specs: list, seed: int, degraded: float) -> None:
    """Give `degraded` of the clean clips (readable, own caption) a degradation, kinds in turn and
    strengths 1–3 in turn, drawn from a stream of their own so adding them changes no other attribute."""
    eligible = [s for s in specs if s.defect is None and s.caption_matches_audio]
    chosen = np.random.default_rng([seed, 7]).permutation(len(eligible))[: int(round(degraded * len(eligible)))]
    kinds = list(DEGRADATIONS)
    for turn, index in enumerate(sorted(chosen)):
        eligible[index].degradation = kinds[turn % len(kinds)]
        eligible[index].degradation_strength = 1 + (turn // len(kinds) + turn) % 3


def write_clip(spec: ClipSpec, audio_dir: Path, duration: float, seed: int) -> ClipSpec:
    """Render and encode one clip (or plant its defect); the spec, with its measured loudness."""
    path = audio_dir / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.defect == "not_audio":  # a failed download saved under an audio name
        path.write_text("<html><head><title>403 Forbidden</title></head><body>Forbidden</body></html>\n")
        return spec
    rng = np.random.default_rng([seed, int(spec.id)])
    audio = render(spec, duration, rng).T  # (time, channels)
    ext = path.suffix.lstrip(".")
    tmp = path.with_name(f".{path.name}.tmp")
    if ext == "mp3":
        sf.write(tmp, audio, SR, format="MP3", subtype="MPEG_LAYER_III")
    elif ext == "flac":
        sf.write(tmp, audio, SR, format="FLAC", subtype="PCM_16")
    else:
        sf.write(tmp, audio, SR, format="WAV", subtype="PCM_16")
    if spec.defect == "truncated":  # an interrupted copy: the decoder loses sync
        data = tmp.read_bytes()
        tmp.write_bytes(data[: int(len(data) * 0.4)])
    os.replace(tmp, path)
    return spec


def write_metadata(specs: list[ClipSpec], root: Path, duration: float) -> None:
    """The Jamendo TSV, the challenge caption JSON, a plain CSV and the truth file."""
    meta = root / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    lines = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
    for s in specs:
        artist, album = f"artist_{int(s.id) % 9:06d}", f"album_{int(s.id) % 13:06d}"
        lines.append("\t".join([f"track_{int(s.id):07d}", artist, album, s.path, f"{duration:.1f}", *tags_of(s)]))
    (meta / "autotagging.tsv").write_text("\n".join(lines) + "\n")
    captions = [{"path": s.path, "caption": s.caption} for s in specs]
    (meta / "captions.json").write_text(json.dumps(captions, indent=1) + "\n")
    rows = ["id,path,license,artist,title"]
    for i, s in enumerate(specs):
        rows.append(f"{s.id},{s.path},{LICENSES[i % len(LICENSES)]},artist_{int(s.id) % 9:06d},Study No. {i + 1}")
    (meta / "tracks.csv").write_text("\n".join(rows) + "\n")
    with open(root / "truth.jsonl", "w") as f:
        for s in specs:
            f.write(json.dumps(asdict(s) | {"tags": tags_of(s)}) + "\n")


def make_corpus(root: str | os.PathLike, clips: int = 40, duration: float = 30.0, seed: int = 0,
                progress=None, degraded: float = 0.25, mismatched: float | None = None,
                workers: int = 1) -> list[ClipSpec]:
    """Synthesize the corpus under `root`; returns the clip specs (the ground truth).

    :param clips: number of clips (at least 8 to plant every defect).
    :param duration: seconds per clip.
    :param seed: the corpus is a pure function of (clips, duration, seed).
    :param progress: optional callable invoked once per written clip.
    :param degraded: share of clean clips with a planted quality degradation.
    :param mismatched: share of readable clips with another genre's caption (None: one in eight).
    :param workers: processes rendering clips (each clip draws from its own seeded generator, so
        the files are the same bytes for any number).
    """
    root = Path(root)
    specs = plan_corpus(clips, seed, degraded, mismatched)
    if workers <= 1:
        for spec in specs:
            write_clip(spec, root / "audio", duration, seed)
            if progress:
                progress(spec)
    else:  # spawn: the caller may hold torch's thread pools, which fork would copy mid-state
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, clips), mp_context=context) as pool:
            futures = {pool.submit(write_clip, spec, root / "audio", duration, seed): spec for spec in specs}
            for future in as_completed(futures):
                rendered, spec = future.result(), futures[future]
                vars(spec).update(vars(rendered))  # what rendering measured (the loudness) comes back
                if progress:
                    progress(spec)
    write_metadata(specs, root, duration)
    return specs
