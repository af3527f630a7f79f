"""What limits the codec's reward rank: the VAE, the mel, Griffin-Lim, or the lack of a vocoder.

The codec target (issue 20): the shipped reward ranks round trips through the codec as it ranks
the originals, Spearman ≥ 0.8. This script measures, on one fresh corpus of the demo's synthetic
music (a seed no shipped model trained on) and through the targets' own scorers
(`demo.domain.targets`: the shipped CLAP, MERT and reward head), the round trips side by side:

* ``stft+gl``  — the exact linear power spectrogram, then Griffin-Lim: no mel, no VAE. What any
  decoder that ends in Griffin-Lim can reach at best here.
* ``mel+gl``   — the ``mel`` codec (64 log-mel bins, Griffin-Lim).
* ``mel-vae``  — the shipped ``mel-vae`` codec (VAE over the mel frames, then Griffin-Lim).
* ``vocoder``  — with ``--vocoder-steps N``: the mel frames through a `transformers.SpeechT5HifiGan`
  trained here first for N steps on the codec's own training seed (spectral losses, no
  discriminator — a GAN would need far more steps than 2 cores give), saved and reloaded with
  `from_pretrained`: what "a small learned vocoder trained within budget" buys.

For each: the genre the CLAP hears (rate, and its ratio to the originals'), and the Spearman
correlation of the reward over all clips and over the clean ones.

    python benchmarks/codec_decoders.py [--seed 201] [--clips 70] [--iters 32]
                                        [--vocoder-steps 0] [--vocoder-clips 140]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
from scipy.stats import spearmanr

from scoreaware.demo.domain import targets
from scoreaware.demo.domain.build import default_models
from scoreaware.demo.domain.corpus import TRAIN_SEEDS, rendered, training_specs
from scoreaware.demo.synth import SR
from scoreaware.train.codecs import MelCodec, MelCodecConfig, MelVaeCodec
from scoreaware.train.griffin_lim import griffin_lim


class StftGriffinLim:
    """The exact power spectrogram (the mel codec's STFT, without the mel) and Griffin-Lim back."""

    def __init__(self, config: MelCodecConfig) -> None:
        import torchaudio

        self.config = config
        self.sample_rate = self.config.sample_rate
        self._spectrogram = torchaudio.transforms.Spectrogram(self.config.n_fft, hop_length=self.config.hop_length,
                                                              power=2.0, center=True)

    @torch.no_grad()
    def encode(self, audio: np.ndarray, sampling_rate: int) -> torch.Tensor:  # (C, S) -> (n_fft/2+1, frames)
        import torchaudio

        mono = torchaudio.functional.resample(torch.from_numpy(np.asarray(audio, np.float32)).mean(0),
                                              sampling_rate, self.sample_rate)
        return self._spectrogram(mono)

    def decode(self, spectrogram: torch.Tensor) -> np.ndarray:  # -> (1, S)
        c = self.config
        return griffin_lim(spectrogram[None], c.n_fft, c.hop_length, c.griffin_lim_iters).numpy()


class Vocoded:
    """The mel codec's log-mel frames, decoded by a `SpeechT5HifiGan`."""

    def __init__(self, folder: str) -> None:
        from transformers import SpeechT5HifiGan

        self.mel = MelCodec()
        self.sample_rate = self.mel.sample_rate
        self.vocoder = SpeechT5HifiGan.from_pretrained(folder).eval()

    def encode(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:  # (frames, n_mels)
        return self.mel.encode(audio, sampling_rate)

    @torch.no_grad()
    def decode(self, log_mel: np.ndarray) -> np.ndarray:  # -> (1, S)
        return self.vocoder(torch.as_tensor(log_mel)[None]).numpy()


def spectral_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss (spectral convergence + log-magnitude L1; Parallel WaveGAN's)."""
    loss = prediction.new_zeros(())
    for n_fft, hop in ((512, 128), (1024, 256), (2048, 512)):
        window = torch.hann_window(n_fft)
        p = torch.stft(prediction, n_fft, hop, window=window, return_complex=True).abs() + 1e-5
        t = torch.stft(target, n_fft, hop, window=window, return_complex=True).abs() + 1e-5
        loss = loss + (p - t).norm() / t.norm() + (p.log() - t.log()).abs().mean()
    return loss / 3


def train_vocoder(folder: str, steps: int, clips: int, frames: int = 32, batch: int = 8) -> float:
    """Train a small SpeechT5HifiGan (hop 256 = 8·8·2·2, 64 initial channels) on log-mel frames of
    the codec's training seed; save it to `folder`; return the minutes it took."""
    import torchaudio
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    mel, waves, mels = MelCodec(), [], []
    seed = TRAIN_SEEDS["codec"]
    for _, audio in rendered(training_specs(clips, seed, 0.3), 10.0, seed):
        waves.append(torchaudio.functional.resample(torch.from_numpy(audio), SR, mel.sample_rate))
        mels.append(torch.from_numpy(mel.encode(waves[-1][None].numpy(), mel.sample_rate)))  # (frames, n_mels)
    stacked = torch.cat(mels)
    hop = mel.config.hop_length
    config = SpeechT5HifiGanConfig(model_in_dim=mel.channels, sampling_rate=mel.sample_rate,
                                   upsample_initial_channel=64, upsample_rates=[8, 8, 2, 2],
                                   upsample_kernel_sizes=[16, 16, 4, 4], normalize_before=True)
    vocoder = SpeechT5HifiGan(config)
    vocoder.mean.copy_(stacked.mean(0))  # its own input normalization, per mel bin
    vocoder.scale.copy_(stacked.std(0) + 1e-3)
    optimizer = torch.optim.AdamW(vocoder.parameters(), 1e-3, betas=(0.8, 0.99))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    for step in range(steps):
        inputs, outputs = [], []
        for i in rng.integers(len(waves), size=batch):
            offset = int(rng.integers(mels[i].shape[0] - frames))
            inputs.append(mels[i][offset: offset + frames])
            segment = waves[i][offset * hop: (offset + frames) * hop]
            outputs.append(torch.nn.functional.pad(segment, (0, frames * hop - segment.shape[0])))
        loss = spectral_loss(vocoder(torch.stack(inputs)), torch.stack(outputs))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vocoder.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"  vocoder step {step}: spectral loss {loss.item():.3f}", flush=True)
    vocoder.save_pretrained(folder)
    return (time.perf_counter() - start) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=targets.EVAL_SEED, help="the fresh corpus (the targets' seed)")
    parser.add_argument("--clips", type=int, default=70)
    parser.add_argument("--iters", type=int, default=32, help="Griffin-Lim iterations (the codecs': 32)")
    parser.add_argument("--vocoder-steps", type=int, default=0, help="train and add a SpeechT5HifiGan row")
    parser.add_argument("--vocoder-clips", type=int, default=140)
    args = parser.parse_args()
    models = default_models()
    clips = targets.fresh_clips(args.seed, args.clips)
    heard_and_reward = targets.round_trip_scorer(models, clips, args.seed)  # as the codec test scores
    clean = np.array([spec.degradation is None for spec, _ in clips])

    vae = MelVaeCodec(str(models / "codec"))
    vae.mel.config.griffin_lim_iters = args.iters  # the shipped front end, decoded at the iterations asked for
    front_end = replace(vae.mel.config)
    decoders = {"stft+gl": StftGriffinLim(front_end), "mel+gl": MelCodec(front_end), "mel-vae": vae}
    with tempfile.TemporaryDirectory() as scratch:
        if args.vocoder_steps:
            minutes = train_vocoder(scratch, args.vocoder_steps, args.vocoder_clips)
            print(f"vocoder: {args.vocoder_steps} steps of 8 × {32 * 256 / 22050:.2f} s in {minutes:.1f} min")
            decoders[f"vocoder ({args.vocoder_steps} steps)"] = Vocoded(scratch)
        genre_original, reward_original = heard_and_reward(clips)
        print(f"seed {args.seed}, {len(clips)} clips ({int(clean.sum())} clean), Griffin-Lim {args.iters} iterations; "
              f"the CLAP hears the genre in {genre_original:.3f} of the originals")
        print("| decoder | genre heard (ratio) | reward Spearman, all | clean only | seconds |\n|---|---|---|---|---|")
        for name, codec in decoders.items():
            start = time.perf_counter()
            genre, reward = heard_and_reward(targets.round_trip(codec, clips))
            every = spearmanr(reward_original, reward).statistic
            clean_only = spearmanr(reward_original[clean], reward[clean]).statistic
            print(f"| {name} | {genre:.3f} ({genre / genre_original:.3f}) | {every:.3f} | {clean_only:.3f} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
