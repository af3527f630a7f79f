"""The supervised objective: flow matching (+ REPA), with CFG condition dropout.

``loss, logs = objective(net, batch)``: the training loop never knows which pieces are on.
`Trainable` bundles the backbone with the REPA projectors so that DDP wraps one module and its
forward (the only call DDP synchronizes) returns what the objective needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from scoreaware.train.flow import TimestepSampler, interpolate, masked_mse, target_velocity
from scoreaware.train.model import Conditioning, FluxAudio
from scoreaware.train.repa import RepaLoss

TIME_BINS = 10


class Trainable(nn.Module):
    """Backbone + REPA projectors; forward(x_t, t, cond) -> (velocity, REPA hidden state)."""

    def __init__(self, backbone: FluxAudio, repa: RepaLoss | None = None) -> None:
        super().__init__()
        self.backbone, self.repa = backbone, repa

    def forward(self, x_t: Tensor, t: Tensor, cond: Conditioning) -> tuple[Tensor, Tensor | None]:
        if self.repa is None:
            return self.backbone(x_t, t, cond), None
        return self.backbone.forward_with_hidden(x_t, t, cond)


@dataclass
class NullConditioning:
    """The CFG null: the empty string's T5 tokens (L0, D) and CLAP text embedding (D_clap,)."""

    text: Tensor
    clap: Tensor

    def apply(self, cond: Conditioning, drop: Tensor) -> Conditioning:
        """Replace text and CLAP of the rows in `drop` (N,) bool by the null, together (baseline)."""
        if not drop.any():
            return cond
        n, length, _ = cond.text.shape
        width = max(length, self.text.shape[0])
        text = torch.zeros(n, width, cond.text.shape[2], dtype=cond.text.dtype, device=cond.text.device)
        mask = torch.zeros(n, width, dtype=torch.bool, device=cond.text.device)
        text[:, :length], mask[:, :length] = cond.text, cond.text_mask
        null_len = self.text.shape[0]
        text[drop] = 0.0
        mask[drop] = False
        text[drop, :null_len] = self.text.to(text)
        mask[drop, :null_len] = True
        clap = torch.where(drop[:, None], self.clap.to(cond.clap)[None], cond.clap)
        return Conditioning(text, mask, clap, cond.score, cond.score_mask, cond.latent_mask)

    def batch(self, n: int, device) -> Conditioning:
        """n copies of the null (the unconditional branch of CFG), with a null score."""
        return Conditioning(self.text[None].expand(n, -1, -1).to(device),
                            torch.ones(n, self.text.shape[0], dtype=torch.bool, device=device),
                            self.clap[None].expand(n, -1).to(device), torch.zeros(n, device=device),
                            torch.zeros(n, dtype=torch.bool, device=device))


def batch_conditioning(batch: dict, device) -> Conditioning:
    return Conditioning(batch["text"].to(device), batch["text_mask"].to(device), batch["clap"].to(device),
                        batch["score"].to(device), batch["score_mask"].to(device), batch["latent_mask"].to(device))


class FlowObjective:
    """Flow-matching loss with score-aware timesteps, CFG dropout and optional REPA."""

    def __init__(self, sampler: TimestepSampler, nulls: NullConditioning, text_dropout: float = 0.1,
                 score_dropout: float = 0.1, repa_coeff: float = 0.5, generator: torch.Generator | None = None):
        self.sampler, self.nulls = sampler, nulls
        self.text_dropout, self.score_dropout, self.repa_coeff = text_dropout, score_dropout, repa_coeff
        self.generator = generator or torch.Generator().manual_seed(0)

    def draw(self, batch: dict) -> dict:
        """The random parts of one step (noise, t, dropout masks), from the objective's generator."""
        x0 = batch["latent"]
        n = x0.shape[0]
        g = self.generator
        return {"noise": torch.randn(x0.shape, generator=g), "t": self.sampler(n, g, s_tilde=batch["s_tilde"]),
                "drop_text": torch.rand(n, generator=g) < self.text_dropout,
                "drop_score": torch.rand(n, generator=g) < self.score_dropout}

    def __call__(self, net: nn.Module, batch: dict, device="cpu", draws: dict | None = None):
        """(loss, logs). `net` is a `Trainable` (possibly DDP-wrapped)."""
        draws = draws or self.draw(batch)
        x0, mask = batch["latent"].to(device), batch["latent_mask"].to(device)
        noise, t = draws["noise"].to(device), draws["t"].to(device)
        cond = self.nulls.apply(batch_conditioning(batch, device), draws["drop_text"].to(device))
        cond.score_mask = cond.score_mask & ~draws["drop_score"].to(device)
        v, hidden = net(interpolate(x0, noise, t), t, cond)
        per_sample = masked_mse(v, target_velocity(x0, noise), mask)  # (N,)
        flow = per_sample.mean()
        logs = {"flow": flow.detach(), "per_sample": per_sample.detach(), "t": t.detach()}
        loss = flow
        repa_module = getattr(net, "module", net).repa
        if repa_module is not None:
            targets = {name: batch[f"repa_{name}"].to(device) for name in repa_module.projectors}
            repa = repa_module(hidden.float(), targets, mask)
            loss = loss + self.repa_coeff * repa
            logs["repa"] = repa.detach()
        logs["loss"] = loss.detach()
        return loss, logs


def time_bin_losses(t: Tensor, per_sample: Tensor, bins: int = TIME_BINS) -> dict[int, tuple[float, int]]:
    """bin index -> (summed loss, count) of the samples whose t falls in it."""
    which = torch.clamp((t * bins).long(), 0, bins - 1)
    out = {}
    for b in which.unique().tolist():
        sel = which == b
        out[int(b)] = (float(per_sample[sel].sum()), int(sel.sum()))
    return out
