import numpy as np
import pytest

from scoreaware.curate.audio import AudioProblem, declared_wav_frames, probe_audio
from scoreaware.testing.dummies import SR, tone, write_audio


def test_probe_measures_the_file(tmp_path):
    path = write_audio(tmp_path / "a.flac", tone(2.5, channels=2))
    info = probe_audio(path)
    assert (info.sampling_rate, info.num_channels, info.num_samples) == (SR, 2, int(2.5 * SR))
    assert info.duration == pytest.approx(2.5)


def test_mp3_decodes(tmp_path):
    path = write_audio(tmp_path / "a.mp3", tone(2.0), format="MP3")
    assert probe_audio(path).duration == pytest.approx(2.0, abs=0.06)


def truncated_wav(tmp_path):
    path = write_audio(tmp_path / "t.wav", tone(3.0), subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_flac(tmp_path):
    path = write_audio(tmp_path / "t.flac", np.random.default_rng(0).uniform(-0.5, 0.5, (SR * 20, 1)).astype("float32"))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.4)])
    return path


def nan_wav(tmp_path):
    audio = tone(1.0)
    audio[100] = np.nan
    return write_audio(tmp_path / "nan.wav", audio, subtype="FLOAT")


def text_file(name, text):
    def make(tmp_path):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    return make


def bytes_file(name, data):
    def make(tmp_path):
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    return make


@pytest.mark.parametrize("make, reason, detail", [
    (truncated_wav, "truncated", "header declares 3.00 s"),
    (truncated_flac, "corrupt", "decoding failed"),
    (nan_wav, "non_finite_samples", "NaN/inf"),
    (bytes_file("e.flac", b""), "empty_file", "0 bytes"),
    (lambda p: write_audio(p / "z.wav", np.zeros((0, 1), "float32")), "empty_audio", "0 samples"),
    (text_file("x.mp3", "<html>404</html>"), "not_audio", "starts with text '<html>404</html>'"),
    (text_file("notes.txt", "liner notes"), "not_audio", "extension .txt"),
    (bytes_file("a.m4a", b"\x00" * 64), "unsupported_format", "FFmpeg"),
])
def test_problems_are_named(tmp_path, make, reason, detail):
    with pytest.raises(AudioProblem) as caught:
        probe_audio(make(tmp_path))
    assert caught.value.reason == reason
    assert detail in caught.value.detail


def test_declared_wav_frames_reads_the_header(tmp_path):
    path = write_audio(tmp_path / "h.wav", tone(1.5, channels=2), subtype="PCM_24")
    assert declared_wav_frames(path) == int(1.5 * SR)
    assert declared_wav_frames(write_audio(tmp_path / "h.flac", tone(0.5))) is None
