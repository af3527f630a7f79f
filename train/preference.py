"""CRPO: CLAP-ranked preference optimization for flow matching (Diffusion-DPO on rectified flow).

Pairs: for one prompt, the candidate CLAP ranked best (winner, w) and worst (loser, l). Both
share the noise ε and the time t, and the loss compares how much better the model fits the
winner than the loser, relative to a frozen reference (the starting EMA weights)::

    L_x      = masked MSE of v_θ(x_t) against ε − x0, per sample        (x ∈ {w, l})
    inside   = −β/2 · [(L_w − L_l) − (L_w^ref − L_l^ref)]               β = 2000
    loss     = −log σ(inside) + λ_FM · L_w                               λ_FM = 1

(TangoFlux `model.py`, ttm-humanpref `train_config_crpo.yaml`.) The winner's flow-matching term
keeps the model from drifting while the preference term moves it (the "DPO-FM + FM" stabilizer).
The loss math runs in fp32 (bf16 overflows in `logsigmoid`). The reference lives outside the
optimizer and DDP, in eval mode, under `torch.no_grad()`: it costs a forward and no memory for
backward. `implicit_acc` = mean(inside > 0) is logged every step: above 0.5 the model prefers
the winners more than the reference does. As in the published CRPO run (ttm-humanpref
``null_score_prob 0.1``), each pair's score is dropped to the null with probability
`score_dropout` (winner and loser alike, and the reference sees the same), so the unconditional
branch that joint CFG extrapolates from keeps being trained.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from scoreaware.train.flow import TimestepSampler, interpolate, masked_mse, target_velocity
from scoreaware.train.model import Conditioning
from scoreaware.train.objective import NullConditioning, batch_conditioning


def frozen_copy(module: nn.Module) -> nn.Module:
    """A detached, eval-mode copy whose parameters take no gradients (the DPO reference)."""
    reference = copy.deepcopy(module).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


class CRPOObjective:
    """``loss, logs = objective(net, batch)`` for preference pairs; `reference` is frozen."""

    def __init__(self, reference: nn.Module, sampler: TimestepSampler, nulls: NullConditioning, beta: float = 2000.0,
                 lambda_fm: float = 1.0, generator: torch.Generator | None = None, score_dropout: float = 0.1) -> None:
        self.reference, self.sampler, self.nulls = reference, sampler, nulls
        self.beta, self.lambda_fm, self.score_dropout = beta, lambda_fm, score_dropout
        self.generator = generator or torch.Generator().manual_seed(0)

    def draw(self, batch: dict) -> dict:
        """Noise and t shared by the winner and the loser of each pair."""
        x0 = batch["latent"]
        n = x0.shape[0]
        g = self.generator
        s_tilde = batch.get("s_tilde")
        return {"noise": torch.randn(x0.shape, generator=g), "t": self.sampler(n, g, s_tilde=s_tilde),
                "drop_score": torch.rand(n, generator=g) < self.score_dropout}

    def __call__(self, net: nn.Module, batch: dict, device="cpu", draws: dict | None = None):
        """(loss, logs); `net` is a `Trainable` (possibly DDP-wrapped)."""
        draws = draws or self.draw(batch)
        x_w, x_l = batch["latent"].to(device), batch["latent_l"].to(device)
        mask_w, mask_l = batch["latent_mask"].to(device), batch["latent_l_mask"].to(device)
        noise, t = draws["noise"].to(device), draws["t"].to(device)
        cond = batch_conditioning(batch, device)
        cond.score_mask = cond.score_mask & ~draws["drop_score"].to(device)
        both = Conditioning.cat([cond, cond])
        both.latent_mask = torch.cat([mask_w, mask_l])
        x_t = torch.cat([interpolate(x_w, noise, t), interpolate(x_l, noise, t)])  # (2N, T, C), shared ε and t
        target = torch.cat([target_velocity(x_w, noise), target_velocity(x_l, noise)])
        t2, mask = torch.cat([t, t]), torch.cat([mask_w, mask_l])
        v, _ = net(x_t, t2, both)
        model_w, model_l = masked_mse(v, target, mask).chunk(2)
        with torch.no_grad():
            v_ref = self.reference(x_t, t2, both)
            ref_w, ref_l = masked_mse(v_ref, target, mask).chunk(2)
        inside = -0.5 * self.beta * ((model_w - model_l) - (ref_w - ref_l))  # (N,), fp32
        preference = -F.logsigmoid(inside).mean()
        loss = preference + self.lambda_fm * model_w.mean()
        logs = {"loss": loss.detach(), "crpo": preference.detach(), "flow": model_w.mean().detach(),
                "score_kept": cond.score_mask.float().mean().detach(),
                "implicit_acc": (inside > 0).float().mean().detach(), "inside": inside.mean().detach(),
                "model_w": model_w.mean().detach(), "model_l": model_l.mean().detach(),
                "ref_w": ref_w.mean().detach(), "ref_l": ref_l.mean().detach(),
                "per_sample": model_w.detach(), "t": t.detach()}
        return loss, logs
