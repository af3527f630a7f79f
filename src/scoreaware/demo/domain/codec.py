"""The domain codec: a 1-D VAE over the demo's log-mel frames (the shipped ``mel-vae`` codec).

`diffusers.AutoencoderOobleck` with the 64 mel bins as its audio channels and two 2× stages:
86 mel frames per second become 21.5 latent frames of `latent_channels` (hidden 64 → 32). Trained
on clips of a seed of its own (never the demo's), with L1 + MSE on the normalized log-mel and a
small KL term (Stable Audio Open's VAE uses a KL weight of 1e-4 too), then saved with
`save_pretrained` beside `mel_frontend.json` — the folder `train encode --codec mel-vae
--codec-model DIR` loads.

Why not a waveform VAE: on 2 cores `AutoencoderOobleck` over 22 kHz audio costs ~60 s per step,
a 2-D `AutoencoderKL` over the mel image 4–22 s; over mel frames a step of 16 × 3 s is ~0.1 s.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from scoreaware.demo.domain.corpus import TRAIN_SEEDS, rendered, training_specs
from scoreaware.demo.synth import SR
from scoreaware.train.codecs import MEL_FRONTEND, MelCodec, MelCodecConfig


@dataclass(frozen=True)
class CodecRecipe:
    clips: int = 280  # 40 per genre
    seconds: float = 10.0
    degraded: float = 0.3  # the generator's training data has degraded clips too
    hidden: int = 64  # encoder width; the latent has hidden / 2 channels
    decoder_channels: int = 64
    downsampling: tuple[int, ...] = (2, 2)  # 86 Hz -> 21.5 Hz
    channel_multiples: tuple[int, ...] = (1, 2)  # encoder width per stage (× hidden)
    crop_frames: int = 256  # ~3 s per example
    batch_size: int = 16
    steps: int = 3000
    lr: float = 1e-3
    kl_weight: float = 1e-4
    seed: int = TRAIN_SEEDS["codec"]
    # the mel front end (MelCodecConfig); the defaults are the shipped codec's
    n_mels: int = 64
    n_fft: int = 1024
    f_min: float = 0.0
    f_max: float | None = None

    def mel_config(self) -> MelCodecConfig:
        return MelCodecConfig(n_fft=self.n_fft, n_mels=self.n_mels, f_min=self.f_min, f_max=self.f_max)


def mel_frames(mel: MelCodec, recipe: CodecRecipe, log=print) -> list[np.ndarray]:
    """The log-mel (n_mels, frames) of every training clip, as the codec's front end computes it."""
    specs = training_specs(recipe.clips, recipe.seed, recipe.degraded)
    log(f"rendering {len(specs)} clips × {recipe.seconds:g} s (seed {recipe.seed}) into log-mel frames")
    return [mel.encode(audio[None], SR).T for _, audio in tqdm(rendered(specs, recipe.seconds, recipe.seed),
                                                                total=len(specs), desc="render", unit="clip",
                                                                leave=False)]


def train_codec(out: Path, recipe: CodecRecipe = CodecRecipe(), log=print,
                audio: list[np.ndarray] | None = None) -> dict:
    """Train the VAE on `recipe`'s clips (or on `audio`: mono 44.1 kHz clips of another world) and save
    it to `out` (a `from_pretrained` folder)."""
    from diffusers import AutoencoderOobleck  # heavy: only this part of train-models needs it

    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    mel = MelCodec(recipe.mel_config())
    clips = mel_frames(mel, recipe, log) if audio is None else [mel.encode(a[None], SR).T for a in audio]
    stacked = np.concatenate(clips, axis=1)  # (n_mels, all frames)
    mean, std = stacked.mean(axis=1), stacked.std(axis=1) + 1e-3
    data = [torch.from_numpy((c - mean[:, None]) / std[:, None]).float() for c in clips]
    vae = AutoencoderOobleck(encoder_hidden_size=recipe.hidden, downsampling_ratios=list(recipe.downsampling),
                             channel_multiples=list(recipe.channel_multiples),
                             decoder_channels=recipe.decoder_channels, decoder_input_channels=recipe.hidden // 2,
                             audio_channels=len(mean), sampling_rate=mel.config.sample_rate)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=recipe.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / recipe.steps)))
    history, start = [], time.perf_counter()
    vae.train()
    for step in tqdm(range(recipe.steps), desc="codec", unit="step", leave=False):
        picks = rng.integers(len(data), size=recipe.batch_size)
        batch = []
        for i in picks:
            offset = int(rng.integers(data[i].shape[1] - recipe.crop_frames + 1))
            batch.append(data[i][:, offset: offset + recipe.crop_frames])
        x = torch.stack(batch)  # (B, n_mels, crop)
        posterior = vae.encode(x).latent_dist
        y = vae.decode(posterior.sample()).sample
        reconstruction = (y - x).abs().mean() + (y - x).pow(2).mean()
        kl = posterior.kl() / (recipe.crop_frames // int(np.prod(recipe.downsampling)))  # per latent frame
        loss = reconstruction + recipe.kl_weight * kl
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == recipe.steps - 1:
            history.append({"step": step, "reconstruction": float(reconstruction), "kl": float(kl)})
            log(f"  step {step}: reconstruction {float(reconstruction):.4f}, kl/frame {float(kl):.2f}")
    vae.eval()
    out.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(out)
    frontend = {"mel": asdict(mel.config), "mean": mean.tolist(), "std": std.tolist(),
                "normalization": f"per mel bin over {stacked.shape[1]} frames of the training clips"}
    (out / MEL_FRONTEND).write_text(json.dumps(frontend, indent=1) + "\n")
    return {"recipe": asdict(recipe), "history": history, "minutes": round((time.perf_counter() - start) / 60, 1),
            "params": sum(p.numel() for p in vae.parameters())}
