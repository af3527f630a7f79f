"""The judge's DSP estimators on signals whose tempo and key are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from scoreaware.evaluate.judge.dsp import JUDGE_SR, estimate_key, estimate_tempo, key_relation, pitch_class, tempo_band

BANDS = {"slow": (58, 76), "moderate": (88, 108), "fast": (120, 144)}


def tone(midi: int, seconds: float, sr: int = JUDGE_SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-3 * t)


def melody(notes: list[int], bpm: float, sr: int = JUDGE_SR) -> np.ndarray:
    beat = 60.0 / bpm
    return np.concatenate([tone(n, beat, sr) for n in notes]).astype(np.float32)


@pytest.mark.parametrize("bpm", [66, 100, 132])
def test_tempo_of_a_click_track(bpm):
    clicks = melody([72, 67, 64, 67] * 12, bpm)
    estimate = estimate_tempo(clicks)
    assert any(abs(estimate - bpm * f) <= 0.08 * bpm * f for f in (1, 2, 0.5)), estimate


def test_tempo_band_reads_the_band_or_folds_octaves():
    assert tempo_band(100, BANDS) == "moderate" and tempo_band(70, BANDS) == "slow" and tempo_band(150, BANDS) == \
        "fast"
    assert tempo_band(264, BANDS) == "fast"  # 132 doubled
    assert tempo_band(35, BANDS) == "slow"  # 70 halved
    assert tempo_band(0.0, BANDS) is None and tempo_band(float("nan"), BANDS) is None


# C major scale and chords (C E G, F A C, G B D) against A harmonic minor (A C E, D F A, E G# B)
C_MAJOR = [60, 64, 67, 72, 65, 69, 72, 77, 67, 71, 74, 79, 60, 62, 64, 65, 67, 69, 71, 72] * 2
A_MINOR = [57, 60, 64, 69, 62, 65, 69, 74, 64, 68, 71, 76, 57, 59, 60, 62, 64, 65, 68, 69] * 2


@pytest.mark.parametrize("notes, tonic, mode", [(C_MAJOR, "C", "major"), (A_MINOR, "A", "minor"),
                                                ([n + 2 for n in C_MAJOR], "D", "major"),
                                                ([n + 5 for n in A_MINOR], "D", "minor")])
def test_key_and_mode_of_known_melodies(notes, tonic, mode):
    found = estimate_key(melody(notes, 120))
    assert (found.tonic, found.mode) == (tonic, mode), found
    assert (found.mode_margin > 0) == (mode == "major")


def test_silence_has_no_confident_key():
    found = estimate_key(np.zeros(JUDGE_SR * 2, dtype=np.float32))
    assert found.mode_margin == 0.0 and found.correlation == 0.0


def test_key_relations():
    assert key_relation("C", "major", "C", "major") == "exact"
    assert key_relation("A", "minor", "C", "major") == "relative"
    assert key_relation("C", "major", "A", "minor") == "relative"
    assert key_relation("G", "major", "C", "major") == "fifth"
    assert key_relation("C", "minor", "C", "major") == "parallel"
    assert key_relation("Db", "major", "C#", "major") == "exact"
    assert key_relation("E", "major", "C", "major") == "other"
    assert pitch_class("B-") == pitch_class("Bb") == pitch_class("A#") == 10
