"""REPA: align a DiT hidden state with pretrained audio representations (sihyun-yu/REPA).

One projector per target (Linear → SiLU → Linear → SiLU → Linear, width 2048 as REPA) maps the
hidden state of block `repa_depth` into the target space; the loss is the negative cosine
similarity, averaged over tokens and targets. Targets are precomputed on clean audio
(`train encode --repa ...`), never in the training loop:

* frame targets (``muq``, or any frame-level encoder): (frames, dim), linearly interpolated to
  the latent length;
* global targets (``clap``: the stored CLAP audio embedding): (dim,), compared with the
  time-mean of the hidden state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def projector(hidden: int, target_dim: int, width: int = 2048) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                         nn.Linear(width, target_dim))


def align_frames(target: Tensor, length: int) -> Tensor:
    """(N, F, D) target frames -> (N, length, D) by linear interpolation over time."""
    if target.shape[1] == length:
        return target
    return F.interpolate(target.transpose(1, 2), size=length, mode="linear", align_corners=False).transpose(1, 2)


class RepaLoss(nn.Module):
    """Projectors and the negative-cosine alignment loss for named targets."""

    def __init__(self, hidden_dim: int, targets: dict[str, tuple[str, int]], width: int = 2048) -> None:
        """:param targets: name -> (kind, dim), kind 'frames' or 'global'."""
        super().__init__()
        self.kinds = {name: kind for name, (kind, _) in targets.items()}
        for kind in self.kinds.values():
            if kind not in ("frames", "global"):
                raise ValueError(f"REPA target kind {kind!r} not implemented (frames | global)")
        self.projectors = nn.ModuleDict({name: projector(hidden_dim, dim, width) for name, (_, dim) in targets.items()})

    def forward(self, hidden: Tensor, targets: dict[str, Tensor], mask: Tensor | None = None) -> Tensor:
        """Negative cosine similarity, mean over targets, samples and (valid) tokens.

        :param hidden: (N, T, D) hidden state at noisy x_t.
        :param targets: name -> (N, F, D_k) frames or (N, D_k) global vectors (clean audio).
        :param mask: (N, T) valid latent frames.
        """
        losses = []
        for name, proj in self.projectors.items():
            target = targets[name]
            if self.kinds[name] == "frames":
                z = F.normalize(proj(hidden), dim=-1)  # (N, T, D_k)
                y = F.normalize(align_frames(target, hidden.shape[1]), dim=-1)
                sim = (z * y).sum(-1)  # (N, T)
                if mask is not None:
                    m = mask.float()
                    sim = (sim * m).sum(-1) / m.sum(-1).clamp(min=1)
                else:
                    sim = sim.mean(-1)
            else:
                if mask is not None:
                    m = mask.float()[..., None]
                    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)  # (N, D)
                else:
                    pooled = hidden.mean(1)
                sim = (F.normalize(proj(pooled), dim=-1) * F.normalize(target, dim=-1)).sum(-1)  # (N,)
            losses.append(-sim.mean())
        return torch.stack(losses).mean()
