"""Audio <-> latent codecs behind one interface, used by `train encode` and `train sample`.

* ``mel``: a weightless log-mel "codec" (torchaudio MelSpectrogram; Griffin-Lim decode). It
  needs no checkpoint, so the demo and the tests train end to end with it; audio quality is
  that of Griffin-Lim.
* ``mel-vae``: a 1-D VAE over those log-mel frames — `diffusers.AutoencoderOobleck` with the mel bins
  as its "audio channels", 4× down in time: 21.5 latent frames per second instead of 86, so a
  generator attends over a quarter of the tokens. A folder loaded with `from_pretrained`, exactly
  as the Oobleck codec loads, plus `mel_frontend.json` (the mel settings and the per-bin
  normalization). Decode: latent → log-mel → Griffin-Lim, as ``mel``. The demo ships one
  (`demo train-models --only codec`).
* ``oobleck``: the Stable Audio Open VAE, `diffusers.AutoencoderOobleck` (a local folder or a
  hub id): 44.1 kHz stereo in, 64 channels at ~21.5 Hz out; latents are the posterior means.

Latents are (frames, channels) float32; audio is (channels, samples) float32 at `sample_rate`.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scoreaware.train.griffin_lim import griffin_lim

CODECS = ("mel", "mel-vae", "oobleck")
MEL_FRONTEND = "mel_frontend.json"  # beside a mel-vae folder's config.json


class Codec:
    """What every codec shares: one clip decodes as a batch of one (`decode_batch` does the work)."""

    def decode(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """(frames, channels) -> (audio channels, S) at `sample_rate`."""
        return self.decode_batch(torch.as_tensor(latent)[None])[0]


def load_oobleck(model: str, device: str):
    """`AutoencoderOobleck.from_pretrained(model)` in eval mode, quietly: diffusers' Oobleck still
    calls the deprecated `weight_norm`, which warns at every load, and without `accelerate` the
    default low-memory load prints a recommendation to install it at every load (the full load
    is what happens anyway)."""
    from diffusers import AutoencoderOobleck  # heavy: only the VAE codecs need it

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated", category=FutureWarning)
        return AutoencoderOobleck.from_pretrained(model, low_cpu_mem_usage=False).to(device).eval()


@dataclass
class MelCodecConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    griffin_lim_iters: int = 32
    f_min: float = 0.0
    f_max: float | None = None  # None: half the sample rate


class MelCodec(Codec):
    """log(mel + 1e-5) latents; decode inverts the mel basis and runs Griffin-Lim."""

    name = "mel"

    def __init__(self, config: MelCodecConfig | None = None) -> None:
        self.config = c = config or MelCodecConfig()
        self.sample_rate, self.channels = c.sample_rate, c.n_mels
        self.latent_rate = c.sample_rate / c.hop_length
        import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

        self._mel = torchaudio.transforms.MelSpectrogram(c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
                                                         n_mels=c.n_mels, power=2.0, center=True,
                                                         f_min=c.f_min, f_max=c.f_max)
        self._inverse = torchaudio.transforms.InverseMelScale(c.n_fft // 2 + 1, n_mels=c.n_mels,
                                                              sample_rate=c.sample_rate, f_min=c.f_min,
                                                              f_max=c.f_max)

    def describe(self) -> dict:
        # the band edges only when set, so encode info recorded before they existed still matches
        return {"codec": "mel", **{k: v for k, v in vars(self.config).items()
                                   if k not in ("f_min", "f_max") or v not in (0.0, None)}}

    @torch.no_grad()
    def encode(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """(C, S) audio -> (frames, n_mels) log-mel of the mono mix."""
        mono = torch.from_numpy(np.asarray(audio, dtype=np.float32)).mean(0)
        if sampling_rate != self.sample_rate:
            import torchaudio  # heavy and absent from the vllm environment

            mono = torchaudio.functional.resample(mono, sampling_rate, self.sample_rate)
        return torch.log(self._mel(mono) + 1e-5).T.contiguous().numpy()

    @torch.no_grad()
    def decode_batch(self, latents: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, frames, n_mels) -> (N, 1, S): inverse mel over the batch, then Griffin-Lim clip by clip
        (torchaudio's iterations, ~2× faster: `train.griffin_lim`; one clip at a time stays in cache and
        is faster per clip than the whole batch at once)."""
        c = self.config
        spec = self.power_spectrogram(latents)
        audio = torch.cat([griffin_lim(clip[None], c.n_fft, c.hop_length, c.griffin_lim_iters) for clip in spec])
        return audio[:, None].numpy()

    @torch.no_grad()
    def power_spectrogram(self, latents: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, frames, n_mels) log-mel -> (N, n_fft // 2 + 1, frames) power spectrogram (inverse mel),
        the input of Griffin-Lim."""
        mel = torch.exp(torch.as_tensor(latents, dtype=torch.float32).transpose(1, 2)) - 1e-5  # (N, n_mels, frames)
        return self._inverse(mel.clamp(min=0.0))

    def frames(self, seconds: float) -> int:
        return int(math.floor(seconds * self.sample_rate / self.config.hop_length)) + 1


class OobleckCodec(Codec):
    """Stable Audio Open's VAE through diffusers (`AutoencoderOobleck.from_pretrained`)."""

    name = "oobleck"

    def __init__(self, model: str, device: str = "cpu") -> None:
        self.model_id = str(model)
        self.vae = load_oobleck(model, device)
        self.device = device
        cfg = self.vae.config
        self.sample_rate = int(cfg.sampling_rate)
        self.channels = int(cfg.decoder_input_channels)
        self.audio_channels = int(cfg.audio_channels)
        self.hop = int(np.prod(cfg.downsampling_ratios))
        self.latent_rate = self.sample_rate / self.hop

    def describe(self) -> dict:
        return {"codec": "oobleck", "model": self.model_id, "sample_rate": self.sample_rate, "hop": self.hop,
                "channels": self.channels}

    @torch.no_grad()
    def encode(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """(C, S) audio -> (frames, channels) posterior mean."""
        x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
        if sampling_rate != self.sample_rate:
            import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

            x = torchaudio.functional.resample(x, sampling_rate, self.sample_rate)
        if x.shape[0] != self.audio_channels:  # mono -> stereo by copying, stereo -> mono by mixing
            x = x.mean(0, keepdim=True).expand(self.audio_channels, -1) if self.audio_channels > 1 else x.mean(0)[None]
        pad = (-x.shape[-1]) % self.hop
        x = torch.nn.functional.pad(x, (0, pad))[None].to(self.device)  # (1, C, S)
        latent = self.vae.encode(x).latent_dist.mean  # (1, channels, frames)
        return latent[0].T.float().cpu().numpy()

    @torch.no_grad()
    def decode_batch(self, latents: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, frames, channels) -> (N, audio channels, S)."""
        z = torch.as_tensor(latents, dtype=torch.float32).transpose(1, 2).to(self.device)  # (N, channels, frames)
        return self.vae.decode(z).sample.float().cpu().numpy()

    def frames(self, seconds: float) -> int:
        return math.ceil(seconds * self.sample_rate / self.hop)


class MelVaeCodec(Codec):
    """Log-mel frames (the ``mel`` codec's) through a 1-D `AutoencoderOobleck` whose audio channels
    are the mel bins; latents are the posterior means, (frames / hop, channels)."""

    name = "mel-vae"

    def __init__(self, model: str, device: str = "cpu") -> None:
        folder = Path(model)
        if not (folder / MEL_FRONTEND).is_file():
            raise ValueError(f"{model}: not a mel-vae codec folder (no {MEL_FRONTEND} beside its config.json)")
        frontend = json.loads((folder / MEL_FRONTEND).read_text())
        self.model_id = str(model)
        self.mel = MelCodec(MelCodecConfig(**frontend["mel"]))
        self.mean = torch.tensor(frontend["mean"], dtype=torch.float32)[:, None]  # (n_mels, 1)
        self.std = torch.tensor(frontend["std"], dtype=torch.float32)[:, None]
        self.vae = load_oobleck(model, device)
        self.device = device
        cfg = self.vae.config
        if int(cfg.audio_channels) != self.mel.channels:
            raise ValueError(f"{model}: the VAE takes {cfg.audio_channels} channels, the mel front end gives "
                             f"{self.mel.channels} bins")
        self.hop = int(np.prod(cfg.downsampling_ratios))
        self.sample_rate = self.mel.sample_rate
        self.channels = int(cfg.decoder_input_channels)
        self.latent_rate = self.mel.latent_rate / self.hop

    def describe(self) -> dict:
        return {"codec": "mel-vae", "model": self.model_id, "sample_rate": self.sample_rate, "hop": self.hop,
                "channels": self.channels, "latent_rate": self.latent_rate}

    def normalized_mel(self, audio: np.ndarray, sampling_rate: int) -> torch.Tensor:
        """(C, S) audio -> (n_mels, frames) normalized log-mel, frames padded to a multiple of the hop
        (with the last frame, so the padding is no louder than the clip)."""
        mel = torch.from_numpy(self.mel.encode(audio, sampling_rate)).T  # (n_mels, frames)
        mel = torch.nn.functional.pad(mel[None], (0, (-mel.shape[1]) % self.hop), mode="replicate")[0]
        return (mel - self.mean) / self.std

    @torch.no_grad()
    def encode(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """(C, S) audio -> (frames, channels) posterior mean."""
        x = self.normalized_mel(audio, sampling_rate)[None].to(self.device)  # (1, n_mels, frames)
        return self.vae.encode(x).latent_dist.mean[0].T.float().cpu().numpy()

    @torch.no_grad()
    def decode_batch(self, latents: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, frames, channels) -> (N, 1, S): the VAE's log-mel, then Griffin-Lim."""
        return self.mel.decode_batch(self.log_mel(latents))

    @torch.no_grad()
    def log_mel(self, latents: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, frames, channels) latents -> (N, frames · hop, n_mels) log-mel, the `mel` codec's latents."""
        z = torch.as_tensor(latents, dtype=torch.float32).transpose(1, 2).to(self.device)  # (N, channels, frames)
        mel = self.vae.decode(z).sample.float().cpu() * self.std + self.mean  # (N, n_mels, frames · hop)
        return mel.transpose(1, 2)

    def frames(self, seconds: float) -> int:
        return math.ceil(self.mel.frames(seconds) / self.hop)


def load_codec(name: str, model: str | None = None, device: str = "cpu", **options):
    """Dispatch on the codec name; `model` is the VAE's folder (or, for oobleck, a hub id)."""
    if name == "mel":
        return MelCodec(MelCodecConfig(**options))
    if name == "mel-vae":
        if not model:
            raise ValueError("the mel-vae codec needs --codec-model (a folder; the demo ships one)")
        return MelVaeCodec(model, device)
    if name == "oobleck":
        if not model:
            raise ValueError("the oobleck codec needs --codec-model (a folder or stabilityai/stable-audio-open-1.0)")
        return OobleckCodec(model, device)
    raise ValueError(f"codec {name!r} not implemented; choose from {CODECS}")


def codec_from_description(description: dict, device: str = "cpu"):
    """Rebuild a codec from `describe()` (stored in the run config)."""
    description = dict(description)
    name = description.pop("codec")
    if name == "mel":
        return MelCodec(MelCodecConfig(**description))
    if name == "mel-vae":
        return MelVaeCodec(description["model"], device)
    return OobleckCodec(description["model"], device)
