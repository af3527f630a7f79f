import numpy as np
import pytest

from scoreaware.train.codecs import MelCodec, MelVaeCodec, OobleckCodec, codec_from_description, load_codec


def chirp(seconds=2.0, rate=22050):
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * (220 + 200 * t) * t)).astype(np.float32)[None]


def test_mel_round_trip_keeps_the_spectral_content():
    codec = MelCodec()
    audio = chirp()
    latent = codec.encode(audio, 22050)
    assert latent.shape == (codec.frames(2.0), 64)
    decoded = codec.decode(latent)
    assert decoded.shape[0] == 1 and abs(decoded.shape[1] - audio.shape[1]) <= codec.config.hop_length
    again = codec.encode(decoded[:, : audio.shape[1]], 22050)
    energetic = latent > np.percentile(latent, 50)  # compare where there is energy (log of ~0 is noise)
    corr = np.corrcoef(latent[energetic], again[: latent.shape[0]][energetic])[0, 1]
    assert corr > 0.7, corr  # Griffin-Lim (32 iterations) loses phase, not the spectrum


def test_mel_encodes_other_rates_and_stereo():
    codec = MelCodec()
    stereo = np.concatenate([chirp(1.0, 44100), chirp(1.0, 44100)])
    assert codec.encode(stereo, 44100).shape == (codec.frames(1.0), 64)


def test_oobleck_runs_through_the_diffusers_loading_code(tmp_path):
    from scoreaware.demo.tiny_models import make_tiny_oobleck

    folder = make_tiny_oobleck(tmp_path / "vae")
    codec = load_codec("oobleck", str(folder))
    assert isinstance(codec, OobleckCodec) and codec.channels == 8 and codec.sample_rate == 44100
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 44100))).astype(np.float32)
    latent = codec.encode(audio, 44100)
    assert latent.shape == (codec.frames(1.0), 8)
    decoded = codec.decode(latent)
    assert decoded.shape == (2, latent.shape[0] * codec.hop)
    rebuilt = codec_from_description(codec.describe())
    assert np.allclose(rebuilt.encode(audio, 44100), latent, atol=1e-5)


def test_mel_vae_encodes_at_a_quarter_of_the_mel_rate_and_decodes_to_audio(tmp_path):
    from scoreaware.demo.domain.codec import CodecRecipe, train_codec

    train_codec(tmp_path / "codec", CodecRecipe(clips=7, steps=2, batch_size=2), log=lambda _: None)
    codec = load_codec("mel-vae", str(tmp_path / "codec"))
    assert isinstance(codec, MelVaeCodec) and codec.channels == 32 and codec.hop == 4
    assert codec.latent_rate == MelCodec().latent_rate / 4
    for seconds in (1.0, 2.3):
        latent = codec.encode(chirp(seconds, 44100), 44100)
        assert latent.shape == (codec.frames(seconds), 32)
        decoded = codec.decode(latent)
        assert decoded.shape == (1, latent.shape[0] * 4 * MelCodec().config.hop_length - MelCodec().config.hop_length)
    rebuilt = codec_from_description(codec.describe())
    audio = chirp(1.0)
    assert np.allclose(rebuilt.encode(audio, 22050), codec.encode(audio, 22050), atol=1e-5)
    with pytest.raises(ValueError, match="mel_frontend.json"):
        load_codec("mel-vae", str(tmp_path))  # a folder without the front end is not a mel-vae codec


def test_unknown_codec_and_missing_model():
    with pytest.raises(ValueError, match="not implemented"):
        load_codec("encodec")
    with pytest.raises(ValueError, match="--codec-model"):
        load_codec("oobleck")
    with pytest.raises(ValueError, match="--codec-model"):
        load_codec("mel-vae")
