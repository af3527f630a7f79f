"""Audio <-> latent codecs behind one interface, used by `train encode` and `train sample`.

* ``mel``: a weightless log-mel "codec" (torchaudio MelSpectrogram; Griffin-Lim decode). It
  needs no checkpoint, so the demo and the tests train end to end with it; audio quality is
  that of Griffin-Lim.
* ``oobleck``: the Stable Audio Open VAE, `diffusers.AutoencoderOobleck` (a local folder or a
  hub id): 44.1 kHz stereo in, 64 channels at ~21.5 Hz out; latents are the posterior means.

Latents are (frames, channels) float32; audio is (channels, samples) float32 at `sample_rate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

CODECS = ("mel", "oobleck")


@dataclass
class MelCodecConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    griffin_lim_iters: int = 32


class MelCodec:
    """log(mel + 1e-5) latents; decode inverts the mel basis and runs Griffin-Lim."""

    name = "mel"

    def __init__(self, config: MelCodecConfig | None = None) -> None:
        self.config = c = config or MelCodecConfig()
        self.sample_rate, self.channels = c.sample_rate, c.n_mels
        self.latent_rate = c.sample_rate / c.hop_length
        import torchaudio  # heavy and absent from the vllm environment (its CUDA build is removed there)

        self._mel = torchaudio.transforms.MelSpectrogram(c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
                                                         n_mels=c.n_mels, power=2.0, center=True)
        self._inverse = torchaudio.transforms.InverseMelScale(c.n_fft // 2 + 1, n_mels=c.n_mels,
                                                              sample_rate=c.sample_rate)
        self._griffin = torchaudio.transforms.GriffinLim(n_fft=c.n_fft, hop_length=c.hop_length, power=2.0,
                                                         n_iter=c.griffin_lim_iters, rand_init=False)

    def describe(self) -> dict:
        return {"codec": "mel", **vars(self.config)}

    @torch.no_grad()
    def encode(self, audio: np.ndarray, sampling_rate: int) -> np.ndarray:
        """(C, S) audio -> (frames, n_mels) log-mel of the mono mix."""
        mono = torch.from_numpy(np.asarray(audio, dtype=np.float32)).mean(0)
        if sampling_rate != self.sample_rate:
            import torchaudio  # heavy and absent from the vllm environment

            mono = torchaudio.functional.resample(mono, sampling_rate, self.sample_rate)
        return torch.log(self._mel(mono) + 1e-5).T.contiguous().numpy()

    @torch.no_grad()
    def decode(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """(frames, n_mels) -> (1, S) audio at `sample_rate`."""
        return self.decode_batch(torch.as_tensor(latent)[None])[0]

    @torch.no_grad()
    def decode_batch(self, latents: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, frames, n_mels) -> (N, 1, S): inverse mel and Griffin-Lim over the whole batch at once."""
        mel = torch.exp(torch.as_tensor(latents, dtype=torch.float32).transpose(1, 2)) - 1e-5  # (N, n_mels, frames)
        spec = self._inverse(mel.clamp(min=0.0))
        audio = self._griffin(spec)  # (N, S)
        return audio[:, None].numpy()

    def frames(self, seconds: float) -> int:
        return int(math.floor(seconds * self.sample_rate / self.config.hop_length)) + 1


class OobleckCodec:
    """Stable Audio Open's VAE through diffusers (`AutoencoderOobleck.from_pretrained`)."""

    name = "oobleck"

    def __init__(self, model: str, device: str = "cpu") -> None:
        from diffusers import AutoencoderOobleck  # heavy: only the oobleck codec needs it

        self.model_id = str(model)
        self.vae = AutoencoderOobleck.from_pretrained(model).to(device).eval()
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
    def decode(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """(frames, channels) -> (audio channels, S)."""
        return self.decode_batch(torch.as_tensor(latent)[None])[0]

    @torch.no_grad()
    def decode_batch(self, latents: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, frames, channels) -> (N, audio channels, S)."""
        z = torch.as_tensor(latents, dtype=torch.float32).transpose(1, 2).to(self.device)  # (N, channels, frames)
        return self.vae.decode(z).sample.float().cpu().numpy()

    def frames(self, seconds: float) -> int:
        return math.ceil(seconds * self.sample_rate / self.hop)


def load_codec(name: str, model: str | None = None, device: str = "cpu", **options):
    """Dispatch on the codec name; `model` is the oobleck folder or hub id."""
    if name == "mel":
        return MelCodec(MelCodecConfig(**options))
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
    return OobleckCodec(description["model"], device)
