"""The world's shipped codec: loads as the mel-vae codec `train encode` runs, and keeps what the judge hears."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.demo.world.codec import CARD

FOLDER = DEFAULT_MODELS / "world_codec"


def test_loads_through_the_codec_loader_with_a_160_mel_front_end():
    from scoreaware.train.codecs import load_codec

    codec = load_codec("mel-vae", model=str(FOLDER))
    assert codec.mel.config.n_mels == 160 and codec.mel.config.f_max == 8000.0
    assert codec.latent_rate == pytest.approx(21.533, abs=1e-3) and codec.channels == 64
    card = json.loads((FOLDER / CARD).read_text())
    assert card["recipe"]["recipe"]["seed"] == 304 and card["command"].startswith("scoreaware demo train-world-codec")


def test_reconstructions_keep_the_mode_the_64_mel_front_end_loses():
    """On 24 renders of a seed neither its training (304) nor its card (302) used: the judge hears the
    mode of the reconstructions near its rate on the originals, and far above what the 64-mel
    front end's round trip leaves (0.55 on the card's renders)."""
    from scoreaware.demo.domain.corpus import codec_round_trip
    from scoreaware.demo.world.clips import rendered_clips
    from scoreaware.demo.world.judge import measure_judge
    from scoreaware.evaluate.judge import Judge
    from scoreaware.train.codecs import MelVaeCodec

    clips = rendered_clips(24, seed=305, seconds=8.0, split="test", workers=2)
    codec, judge = MelVaeCodec(str(FOLDER)), Judge(DEFAULT_MODELS / "judge")
    originals = measure_judge(judge, clips)
    rebuilt = measure_judge(judge, [(spec, codec_round_trip(audio, codec)) for spec, audio in clips])
    card = json.loads((FOLDER / CARD).read_text())["measured"]
    assert card["ratio"]["mode"] >= 0.85 and card["reconstructed"]["key_related"] >= 0.7
    slack = 2.5 * np.sqrt(0.25 / len(clips))
    assert rebuilt["mode"] >= originals["mode"] * card["ratio"]["mode"] - slack, (originals, rebuilt)
    assert rebuilt["instrument"] >= 1 / 12 + 0.3, rebuilt  # far above chance, though the judge learned GL-64 timbre
