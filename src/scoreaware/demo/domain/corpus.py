"""Training clips for the domain models: the synthetic corpus's music, rendered in memory.

Training corpora use other seeds than the demo corpus (the demo's is 0), so no demo clip is
ever a training clip. Only readable clips are used (the planted file defects are the curation
stages' business, not the models').
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from scoreaware.curate.scoring.audio import resampler
from scoreaware.demo.synth import SR, ClipSpec, plan_corpus, render
from scoreaware.train.codecs import MelCodec

DEMO_SEED = 0
TRAIN_SEEDS = {"clap": 101, "reward": 102, "captioners": 103, "codec": 104}


def training_specs(clips: int, seed: int, degraded: float) -> list[ClipSpec]:
    """`clips` readable clips of the corpus with `seed` (`degraded` of them with a degradation)."""
    if seed == DEMO_SEED:
        raise ValueError("seed 0 is the demo corpus: train on another seed")
    specs = [s for s in plan_corpus(int(clips * 1.2) + 8, seed, degraded) if s.defect is None]
    return specs[:clips]


def rendered(specs: list[ClipSpec], seconds: float, seed: int) -> Iterator[tuple[ClipSpec, np.ndarray]]:
    """(spec, mono float32 audio at 44.1 kHz) for every spec."""
    for spec in specs:
        audio = render(spec, seconds, np.random.default_rng([seed, int(spec.id)])).mean(0)
        yield spec, audio.astype(np.float32)


def codec_round_trip(audio: np.ndarray, codec) -> np.ndarray:
    """`audio` (44.1 kHz mono) encoded and decoded by `codec`, back at 44.1 kHz and its own length."""
    decoded = np.asarray(codec.decode(codec.encode(audio[None], SR)), np.float32).mean(0)  # at the codec's rate
    with torch.inference_mode():
        back = resampler(codec.sample_rate, SR)(torch.from_numpy(decoded)).numpy()
    back = back[: audio.shape[-1]]
    return np.pad(back, (0, audio.shape[-1] - back.shape[-1])).astype(np.float32)


def mel_round_trip(audio: np.ndarray) -> np.ndarray:
    """`audio` (44.1 kHz mono) through the demo generator's mel codec (Griffin-Lim decode), so a
    scorer can be fair to generated clips, which reach it that way."""
    return codec_round_trip(audio, MelCodec())
