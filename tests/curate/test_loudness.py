import numpy as np
import pyloudnorm as pyln
import pytest

from scoreaware.curate.loudness import window_loudness

SR = 44100


def music_like(seconds: float, seed: int = 0, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t)
    tones = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate([110, 220, 330, 1760], start=1))
    noise = 0.05 * rng.standard_normal((channels, t.size))
    return (0.2 * envelope * tones + noise).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2])
def test_first_window_matches_pyloudnorm_exactly(channels):
    audio = music_like(12.0, channels=channels)
    ours = window_loudness(audio, SR, [(0, 10 * SR)])[0]
    reference = pyln.Meter(SR).integrated_loudness(audio[:, : 10 * SR].T)
    assert ours == pytest.approx(reference, abs=1e-3)


def test_later_windows_match_pyloudnorm_within_five_hundredths_of_a_lu():
    audio = music_like(30.0, seed=3)
    audio[:, 10 * SR : 20 * SR] *= 0.05  # a quiet middle window
    spans = [(0, 10 * SR), (10 * SR, 20 * SR), (20 * SR, 30 * SR), (5 * SR, 15 * SR)]
    ours = window_loudness(audio, SR, spans)
    meter = pyln.Meter(SR)
    reference = [meter.integrated_loudness(audio[:, b:e].T) for b, e in spans]
    assert ours == pytest.approx(reference, abs=0.05)  # filter state carries over
    assert ours[1] < ours[0] - 20  # the quiet window is ~26 dB down


def test_silence_and_too_short_spans_are_minus_infinity():
    audio = np.zeros((1, SR * 2), dtype=np.float32)
    assert window_loudness(audio, SR, [(0, SR * 2)]) == [float("-inf")]
    loud = music_like(1.0, channels=1)
    assert window_loudness(loud, SR, [(0, 100)]) == [float("-inf")]


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="channels, time"):
        window_loudness(np.zeros(100, dtype=np.float32), SR, [(0, 100)])



def test_more_than_five_channels_weigh_every_channel_one():
    """BS.1770 stops at 5 channels; 7.1 and stem files are measured with unit gains, not refused."""
    rng = np.random.default_rng(0)
    mono = (0.1 * rng.standard_normal(SR * 2)).astype(np.float32)
    eight = np.stack([mono] * 8)
    (one,) = window_loudness(mono[None], SR, [(0, mono.size)])
    (all8,) = window_loudness(eight, SR, [(0, mono.size)])
    assert all8 == pytest.approx(one + 10 * np.log10(8), abs=1e-6)  # eight equal channels: 8× the power
