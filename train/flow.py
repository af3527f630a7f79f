"""Rectified flow matching: interpolant, timestep samplers, loss and the Euler ODE sampler.

Time convention (the ATTM baseline's reverse_flow): t ∈ [0, 1], t = 0 is data, t = 1 is noise::

    x_t = (1 − t)·x0 + t·ε          target velocity  v = dx_t/dt = ε − x0

Sampling integrates dx/dt = v from t = 1 (noise) to t = 0 (data).

Timestep samplers:
  * ``uniform``: t ~ U(0, 1);
  * ``logit_normal``: t = sigmoid(N(m, s)) (the baseline, m = 0, s = 1);
  * ``beta``: the score-aware schedule t ~ Beta(1 + λ(1 − S̃), 1) (see `scoreaware.core.schedule`),
    S̃ the cut's normalized CLAP score: well-aligned cuts train at all noise levels, poorly
    aligned ones mostly at high noise, where only coarse structure is learned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from scoreaware.core.schedule import beta_alpha

SAMPLERS = ("uniform", "logit_normal", "beta")
T_EPS = 1e-4


def interpolate(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = (1 − t)·x0 + t·ε, with t (N,) broadcast over (N, T, C)."""
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise


def target_velocity(x0: Tensor, noise: Tensor) -> Tensor:
    """v = ε − x0."""
    return noise - x0


@dataclass(frozen=True)
class TimestepSampler:
    """Draws training times; `beta` needs each sample's normalized score S̃."""

    kind: str = "logit_normal"
    lam: float = 1.0
    logit_mean: float = 0.0
    logit_std: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SAMPLERS:
            raise ValueError(f"timestep sampler {self.kind!r} not implemented; choose from {SAMPLERS}")

    def __call__(self, n: int, generator: torch.Generator | None = None, s_tilde: Tensor | None = None,
                 device=None) -> Tensor:
        if self.kind == "uniform":
            t = torch.rand(n, generator=generator, device=device)
        elif self.kind == "logit_normal":
            t = torch.sigmoid(self.logit_mean + self.logit_std * torch.randn(n, generator=generator, device=device))
        else:
            if s_tilde is None:
                raise ValueError("the beta sampler needs the batch's normalized scores (s_tilde)")
            alpha = torch.as_tensor(beta_alpha(s_tilde.detach().cpu().numpy(), self.lam), dtype=torch.float32)
            # Beta(α, 1) by inversion: t = u^(1/α); exact, and follows `generator`
            u = torch.rand(n, generator=generator, device=device)
            t = u.pow(1.0 / alpha.to(u.device))
        return t.clamp(T_EPS, 1 - T_EPS)


def masked_mse(v: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Per-sample MSE over valid frames, in fp32: the flow-matching loss every objective uses.

    :param v: (N, T, C) predicted velocity; `target` the same shape.
    :param mask: (N, T) bool of valid frames (padding excluded), or None (every frame).
    :return: (N,) mean over channels, then over valid frames.
    """
    err = (v.float() - target.float()).pow(2).mean(-1)  # (N, T)
    if mask is None:
        return err.mean(-1)
    m = mask.float()
    return (err * m).sum(-1) / m.sum(-1).clamp(min=1)


@torch.no_grad()
def euler_sample(velocity: Callable[[Tensor, Tensor], Tensor], noise: Tensor, steps: int = 25) -> Tensor:
    """Integrate dx/dt = v from t = 1 to 0 with `steps` Euler steps; returns x at t = 0."""
    x = noise
    times = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    for t_now, t_next in zip(times[:-1], times[1:]):
        t = torch.full((x.shape[0],), float(t_now), device=x.device)
        x = x + (t_next - t_now) * velocity(x, t)
    return x
