"""The listening page: spectrograms on a known tone, players beside them, escaped prompts."""

import numpy as np
import soundfile as sf

from scoreaware.evaluate.listen import N_MELS, SPECTROGRAM_RATE, ListeningPair, mel_db, write_listening_page


def tone(path, hz: float, seconds: float = 2.0, rate: int = 44100):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate)
    return path


def test_a_tone_lights_the_mel_band_of_its_pitch(tmp_path):
    import librosa

    mel = mel_db(tone(tmp_path / "a.wav", 440.0))
    centres = librosa.mel_frequencies(N_MELS + 2, fmax=SPECTROGRAM_RATE / 2)[1:-1]
    loudest = int(np.argmax(mel.mean(axis=1)))
    assert mel.shape[0] == N_MELS and abs(centres[loudest] - 440.0) < 60.0, centres[loudest]
    assert mel.max() == 0.0 and mel.min() >= -80.0


def test_the_page_shows_both_clips_of_each_prompt(tmp_path):
    pairs = [ListeningPair(f"p0{i}", f"<b>prompt {i}</b> & more", tone(tmp_path / f"r{i}.wav", 220.0 * (i + 1)),
                           tone(tmp_path / f"g{i}.wav", 330.0), "piano, slow (70 BPM), major", "violin, fast, minor")
             for i in range(2)]
    page = write_listening_page(pairs, tmp_path / "listen", "a title", "a note")
    html = page.read_text()
    assert html.count("<audio") == 4 and html.count("<img") == 2 and "<b>prompt" not in html
    assert "&lt;b&gt;prompt 0&lt;/b&gt; &amp; more" in html
    for i in range(2):
        assert (tmp_path / "listen" / f"p0{i}.png").stat().st_size > 1000
        assert (tmp_path / "listen" / f"p0{i}_real.wav").read_bytes() == (tmp_path / f"r{i}.wav").read_bytes()
