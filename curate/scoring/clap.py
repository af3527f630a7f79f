"""CLAP encoders behind one interface: transformers `ClapModel` and `laion_clap.CLAP_Module`.

Both give L2-normalized audio and text embeddings; the CLAP score of a (segment, caption) pair
is their cosine, i.e. their dot product. Audio arrives as windows of at most 10 s of 48 kHz
mono (see `curate.scoring.audio`); turning windows into model inputs is a separate picklable
callable (`preprocessor`) so it can run in DataLoader worker processes while the model runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import ClapModel, ClapProcessor

from scoreaware.core.checkpoints import forced_weights_only, load_checkpoint
from scoreaware.core.provenance import weights_fingerprint
from scoreaware.curate.scoring.audio import repeat_pad

SAMPLING_RATE = 48_000
WINDOW_SECONDS = 10
BACKENDS = ("transformers", "laion")
DEFAULT_MODELS = {"transformers": "laion/larger_clap_music", "laion": "music_audioset_epoch_15_esc_90.14.pt"}


def _normalize(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32)


@dataclass
class ClapEncoder:
    """A loaded CLAP model. `preprocessor` maps a list of windows to one batch input."""

    backend: str
    model_id: str
    fingerprint: str  # identifies the weights (path + size + mtime, or the hub id)
    dim: int
    preprocessor: Callable[[Sequence[np.ndarray]], Any]
    _embed_audio: Callable[[Any], torch.Tensor]
    _embed_text: Callable[[list[str]], torch.Tensor]
    sampling_rate: int = SAMPLING_RATE
    window: int = SAMPLING_RATE * WINDOW_SECONDS

    @torch.inference_mode()
    def embed_audio(self, inputs: Any) -> np.ndarray:
        """L2-normalized embeddings of preprocessed windows: (windows, dim)."""
        return _normalize(self._embed_audio(inputs))

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalized text embeddings: (len(texts), dim)."""
        return _normalize(self._embed_text(texts))

    def text_key(self, text: str) -> str:
        """Storage key of a text embedding: same text and weights -> same key."""
        return hashlib.sha1(f"{self.fingerprint}\n{text}".encode()).hexdigest()[:20]


# ---------------------------------------------------------------------- transformers
class ClapLogMel:
    """Batched torch version of `ClapFeatureExtractor` for windows no longer than 10 s.

    Same arithmetic as transformers' numpy `spectrogram` (periodic Hann, reflect-padded
    centered STFT, power, the extractor's own mel filters, floor 1e-10, 10·log10), in float32
    instead of float64: features agree to ~1e-4 dB, and it is several times faster. Windows shorter
    than 10 s are repeat-padded like the extractor. For fusion models the 4 mel channels are
    copies and ``is_longer`` is all False: the extractor instead marks one random clip of an
    all-short batch as longer, which would make scores depend on batch composition.
    """

    def __init__(self, feature_extractor, fusion: bool) -> None:
        fe = feature_extractor
        self.n_fft, self.hop, self.max_length = fe.fft_window_size, fe.hop_length, fe.nb_max_samples
        self.fusion = fusion
        filters = fe.mel_filters if fusion else fe.mel_filters_slaney  # (freq, mels)
        self.filters = torch.from_numpy(np.asarray(filters, dtype=np.float32))
        self.window = torch.from_numpy(np.hanning(self.n_fft + 1)[:-1].astype(np.float32))  # periodic Hann

    def __call__(self, windows: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        assert all(w.shape[-1] <= self.max_length for w in windows), "windows must be cut before feature extraction"
        batch = torch.from_numpy(np.stack([repeat_pad(np.asarray(w, dtype=np.float32), self.max_length)
                                           for w in windows]))  # (N, T)
        with torch.inference_mode():
            spec = torch.stft(batch, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect",
                              return_complex=True)  # (N, freq, frames)
            power = spec.real**2 + spec.imag**2
            mel = torch.matmul(power.transpose(1, 2), self.filters)  # (N, frames, mels)
            log_mel = (10.0 * torch.log10(mel.clamp(min=1e-10)))[:, None]  # (N, 1, frames, mels)
        if self.fusion:
            log_mel = log_mel.expand(-1, 4, -1, -1).contiguous()
        return {"input_features": log_mel, "is_longer": torch.zeros(len(windows), 1, dtype=torch.bool)}


def hf_features(feature_extractor, truncation: str, windows: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """`ClapFeatureExtractor` itself over windows no longer than 10 s (the reference for `ClapLogMel`)."""
    limit = feature_extractor.nb_max_samples
    assert all(w.shape[-1] <= limit for w in windows), "windows must be cut before feature extraction"
    out = feature_extractor(
        [np.asarray(w, dtype=np.float32) for w in windows], sampling_rate=feature_extractor.sampling_rate,
        truncation=truncation, padding="repeatpad", return_tensors="pt",
    )
    return {"input_features": out["input_features"], "is_longer": out["is_longer"]}


def load_transformers_clap(model: str, device: str = "cpu") -> ClapEncoder:
    """`ClapModel` + `ClapProcessor` from a hub id or a local `save_pretrained` folder."""

    processor = ClapProcessor.from_pretrained(model)
    net = ClapModel.from_pretrained(model).to(device).eval()
    fusion = bool(getattr(net.config.audio_config, "enable_fusion", False))
    extractor = processor.feature_extractor
    if extractor.sampling_rate != SAMPLING_RATE:
        raise ValueError(f"{model}: expected a 48 kHz CLAP feature extractor, got {extractor.sampling_rate} Hz")
    tokenizer = processor.tokenizer

    def embed_audio(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = {k: v.to(device) for k, v in batch.items()}
        return net.get_audio_features(**batch).pooler_output

    def embed_text(texts: list[str]) -> torch.Tensor:
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt").to(device)
        return net.get_text_features(**tokens).pooler_output

    return ClapEncoder(
        backend="transformers",
        model_id=str(model),
        fingerprint=weights_fingerprint(str(model)),
        dim=net.config.projection_dim,
        preprocessor=ClapLogMel(extractor, fusion),
        _embed_audio=embed_audio,
        _embed_text=embed_text,
        window=int(extractor.nb_max_samples),
    )


# ------------------------------------------------------------------------------ laion
def _laion_batch(window: int, quantize: bool, windows: Sequence[np.ndarray]) -> np.ndarray:
    """Windows repeat-padded to 10 s, optionally int16-quantized as laion_clap's file loader does."""
    batch = np.stack([repeat_pad(np.asarray(w, dtype=np.float32), window) for w in windows])
    if quantize:
        batch = (np.clip(batch, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0
    return batch


def load_laion_state(module, checkpoint: str, unsafe_pickle: bool = False) -> None:
    """Load a laion_clap `.pt` into `module.model`, tolerant of `position_ids`.

    Newer transformers dropped the `text_branch.embeddings.position_ids` buffer, so released
    checkpoints carry an unexpected key (LAION-AI/CLAP#153) while others lack it. Every other
    key must match exactly. Weights-only unless `unsafe_pickle` (see `curate.checkpoints`).
    """

    state = load_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle, what="laion_clap checkpoint")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = module.model.load_state_dict(state, strict=False)
    tolerated = "text_branch.embeddings.position_ids"
    missing = [k for k in missing if k != tolerated]
    unexpected = [k for k in unexpected if k != tolerated]
    if missing or unexpected:
        raise ValueError(f"{checkpoint}: does not fit the CLAP model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]} (HTSAT-base goes with the music checkpoints, "
                         "HTSAT-tiny with 630k-audioset)")


def load_laion_clap(checkpoint: str, amodel: str = "HTSAT-base", device: str = "cpu",
                    quantize: bool = True, unsafe_pickle: bool = False) -> ClapEncoder:
    """`laion_clap.CLAP_Module` (non-fusion) with a `.pt` checkpoint, for challenge-exact scores."""
    import laion_clap  # optional: the laion extra

    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"laion_clap checkpoint {checkpoint} not found "
                                "(e.g. music_audioset_epoch_15_esc_90.14.pt)")
    module = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device=device)
    try:  # laion_clap's own loader first (what challenge numbers were computed with), weights-only
        with contextlib.redirect_stdout(io.StringIO()), forced_weights_only():
            module.load_ckpt(checkpoint, verbose=False)
    except Exception as exc:  # no position_ids key, transformers drift, or pickled objects
        logging.getLogger(__name__).info("laion_clap load_ckpt failed (%s); loading tolerantly", exc)
        load_laion_state(module, checkpoint, unsafe_pickle=unsafe_pickle)
    module.eval()
    window = SAMPLING_RATE * WINDOW_SECONDS

    def embed_audio(batch: np.ndarray) -> torch.Tensor:
        return module.get_audio_embedding_from_data(x=torch.from_numpy(batch).to(device), use_tensor=True)

    def embed_text(texts: list[str]) -> torch.Tensor:
        if len(texts) == 1:  # laion_clap squeezes a single text; keep the batch axis
            return module.get_text_embedding(texts * 2, use_tensor=True)[:1]
        return module.get_text_embedding(texts, use_tensor=True)

    return ClapEncoder(
        backend="laion",
        model_id=f"{Path(checkpoint).name} ({amodel})",
        fingerprint=weights_fingerprint(checkpoint),
        dim=512,
        preprocessor=functools.partial(_laion_batch, window, quantize),
        _embed_audio=embed_audio,
        _embed_text=embed_text,
        window=window,
    )


def load_clap(backend: str, model: str | None = None, device: str = "cpu", amodel: str = "HTSAT-base",
              unsafe_pickle: bool = False) -> ClapEncoder:
    """Dispatch on `backend` ('transformers' or 'laion')."""
    model = model or DEFAULT_MODELS.get(backend)
    if backend == "transformers":
        return load_transformers_clap(model, device)
    if backend == "laion":
        return load_laion_clap(model, amodel=amodel, device=device, unsafe_pickle=unsafe_pickle)
    raise ValueError(f"CLAP backend {backend!r} not implemented; choose from {BACKENDS}")


def stack_inputs(parts: Sequence[Any]) -> Any:
    """Concatenate per-cut preprocessed inputs into one model batch."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: torch.cat([p[k] for p in parts]) for k in first}
    return np.concatenate(parts)
