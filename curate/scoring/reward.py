"""A TuneJury-compatible preference reward: features, head, checkpoints and pairwise training.

TuneJury (yonghyunk1m/TuneJury) scores a clip with an MLP over frozen features::

    x = [CLAP audio (512) ‖ MERT mean-pooled (1024) ‖ CLAP text (512)]    # text = zeros for ""
    head: 2048 → 1024 → 512 → 256 → 128 → 1, each hidden layer Linear, BatchNorm1d, ReLU, Dropout(0.5)

trained on preference pairs with the Bradley-Terry loss ``-log σ(s(A) − s(B))``. The
"empty-prompt protocol" (text features all zero) is what TuneJury recommends out of
distribution; ``prompt_protocol="caption"`` uses the cut's CLAP text embedding instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoFeatureExtractor, AutoModel

from scoreaware.core.checkpoints import load_checkpoint

FORMAT = "scoreaware.reward/1"
MERT_SAMPLING_RATE = 24_000


# ------------------------------------------------------------------------------ head
@dataclass
class RewardConfig:
    """Shape of the head and of its input features."""

    clap_dim: int = 512
    mert_dim: int = 1024
    hidden: tuple[int, ...] = (1024, 512, 256, 128)
    dropout: float = 0.5

    @property
    def input_dim(self) -> int:
        return 2 * self.clap_dim + self.mert_dim


class RewardHead(nn.Module):
    """The TuneJury MLP: features (N, 2·clap + mert) -> scores (N,)."""

    def __init__(self, config: RewardConfig) -> None:
        super().__init__()
        self.config = config
        self.features: dict = {}  # fingerprints of the feature models it was trained on, when known
        self.prompt_protocol: str | None = None  # "empty" or "caption" when known (our checkpoints)
        layers: list[nn.Module] = []
        width = config.input_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):  # Kaiming for ReLU layers, as TuneJury
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, input_dim) -> (N,) scores."""
        return self.net(features).squeeze(-1)


def save_reward(path: str | os.PathLike, head: RewardHead, metrics: dict | None = None, extra: dict | None = None):
    """Write a checkpoint `load_reward` reads (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    config = asdict(head.config) | {"hidden": list(head.config.hidden)}
    torch.save({"format": FORMAT, "config": config, "state_dict": head.state_dict(), "metrics": metrics or {},
                "features": dict(head.features), **(extra or {})}, tmp)
    os.replace(tmp, path)


def load_reward(path: str | os.PathLike, mert_dim: int | None = None, unsafe_pickle: bool = False) -> RewardHead:
    """Load our checkpoint, or a released TuneJury-style one (a state dict of the same MLP).

    Foreign checkpoints are matched layer by layer in order (Linear and BatchNorm tensors by
    shape), so key names do not matter but the architecture must. The MERT width is inferred
    from the first layer (input = 2·512 + MERT) unless given. Weights-only unless
    `unsafe_pickle` (see `curate.checkpoints`).
    """

    blob = load_checkpoint(path, unsafe_pickle=unsafe_pickle, what="reward checkpoint")
    if isinstance(blob, dict) and blob.get("format") == FORMAT:
        config = RewardConfig(**{**blob["config"], "hidden": tuple(blob["config"]["hidden"])})
        head = RewardHead(config)
        head.load_state_dict(blob["state_dict"])
        head.features = dict(blob.get("features") or {})  # which CLAP and MERT weights it was trained on
        head.prompt_protocol = blob.get("prompt_protocol")  # the text features it was trained with
        return head.eval()
    state = blob
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: not a reward checkpoint (expected a state dict)")
    tensors = [(k, v) for k, v in state.items() if isinstance(v, torch.Tensor)]
    weights = [v for k, v in tensors if v.ndim == 2]
    if not weights or weights[-1].shape[0] != 1:
        raise ValueError(f"{path}: expected an MLP ending in a 1-unit Linear layer")
    input_dim = weights[0].shape[1]
    if mert_dim is None:
        mert_dim = input_dim - 1024
    config = RewardConfig(mert_dim=mert_dim, hidden=tuple(w.shape[0] for w in weights[:-1]))
    if config.input_dim != input_dim:
        raise ValueError(f"{path}: first layer takes {input_dim} features, expected {config.input_dim}")
    head = RewardHead(config)
    ours = [(k, v) for k, v in head.state_dict().items()]
    theirs = [(k, v) for k, v in tensors if not k.endswith("num_batches_tracked")]
    ours_used = [(k, v) for k, v in ours if not k.endswith("num_batches_tracked")]
    if len(theirs) != len(ours_used) or any(a.shape != b.shape for (_, a), (_, b) in zip(ours_used, theirs)):
        raise ValueError(f"{path}: layer shapes do not match the TuneJury head {list(config.hidden)}")
    head.load_state_dict({k: v for (k, _), (_, v) in zip(ours_used, theirs)}, strict=False)
    return head.eval()


def check_feature_models(head: RewardHead, clap_weights: str | None, mert_weights: str | None) -> None:
    """Refuse to score with features from other models than the head was trained on."""
    for name, ours in (("CLAP", clap_weights), ("MERT", mert_weights)):
        theirs = head.features.get(f"{name.lower()}_weights")
        if theirs and ours and theirs != ours:
            raise ValueError(f"the reward head was trained on {name} features of weights {theirs}, but these are "
                             f"from {ours}: its scores would mean nothing; use the {name} model it was trained with")


def assemble_features(clap_audio: np.ndarray, mert: np.ndarray, clap_text: np.ndarray | None) -> np.ndarray:
    """[CLAP audio ‖ MERT ‖ CLAP text] rows; text None -> zeros (the empty-prompt protocol)."""
    clap_audio = np.atleast_2d(clap_audio)
    mert = np.atleast_2d(mert)
    text = np.zeros_like(clap_audio) if clap_text is None else np.atleast_2d(clap_text)
    return np.concatenate([clap_audio, mert, text], axis=-1).astype(np.float32)


@torch.inference_mode()
def score_features(head: RewardHead, features: np.ndarray) -> np.ndarray:
    """Reward of each feature row (eval mode: BatchNorm running stats, no dropout)."""
    head.eval()
    return head(torch.from_numpy(np.asarray(features, dtype=np.float32))).numpy()


# ------------------------------------------------------------------------------ MERT
@dataclass
class MertEncoder:
    """A transformers audio encoder whose mean-pooled last hidden state is the MERT feature."""

    model_id: str
    model: nn.Module
    extractor: object
    dim: int
    device: str = "cpu"
    sampling_rate: int = MERT_SAMPLING_RATE

    @torch.inference_mode()
    def embed(self, clips: Sequence[np.ndarray], layers: str = "last") -> np.ndarray:
        """Time-mean of the hidden states of each mono 24 kHz clip: (N, dim).

        ``layers="last"``: the last hidden state (TuneJury's reward feature, and MAD's);
        ``"all"``: the mean over every layer's output (TuneJury's FAD-MERT feature).
        """
        return self.embed_layers(clips, (layers,))[layers]

    @torch.inference_mode()
    def embed_layers(self, clips: Sequence[np.ndarray],
                     layers: Sequence[str] = ("last", "all")) -> dict[str, np.ndarray]:
        """`embed` for several `layers` settings from one forward per clip: {layers: (N, dim)}."""
        unknown = [name for name in layers if name not in ("last", "all")]
        if unknown:
            raise ValueError(f"layers={unknown[0]!r} not implemented (last | all)")
        out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
        for clip in clips:  # clips differ in length; one at a time keeps padding out of the mean
            inputs = self.extractor(np.asarray(clip, dtype=np.float32), sampling_rate=self.sampling_rate,
                                    return_tensors="pt")
            result = self.model(inputs["input_values"].to(self.device), output_hidden_states="all" in out)
            for name, values in out.items():
                hidden = torch.stack(result.hidden_states).mean(0) if name == "all" else result.last_hidden_state
                values.append(hidden.mean(dim=1)[0].float().cpu().numpy())  # (1, frames, dim) -> (dim,)
        return {name: np.stack(values) for name, values in out.items()}


def load_mert(model: str, device: str = "cpu", trust_remote_code: bool = False) -> MertEncoder:
    """MERT (or any HuBERT-like encoder) from a hub id or local folder.

    The released MERT checkpoints need the model's own code from the Hub; it only runs when the
    user passes `trust_remote_code=True` (`--trust-remote-code`).
    """

    extractor = AutoFeatureExtractor.from_pretrained(model, trust_remote_code=trust_remote_code)
    net = AutoModel.from_pretrained(model, trust_remote_code=trust_remote_code).to(device).eval()
    rate = getattr(extractor, "sampling_rate", MERT_SAMPLING_RATE)
    return MertEncoder(str(model), net, extractor, int(net.config.hidden_size), device, rate)
