"""Score-aware timestep distributions: defined here, below both the curation report that plots
them and the training that samples them (`train.flow`, `train.data`).

Time convention (see `train.flow`): t ∈ [0, 1], t = 0 is data, t = 1 is noise.

The score-aware schedule draws ``t ~ Beta(1 + λ·(1 − S̃), 1)``: density ``a·t^(a−1)`` with
``a = 1 + λ(1 − S̃)``, where S̃ ∈ [0, 1] is the cut's CLAP score normalized over the training
set by robust percentiles. S̃ = 1 (best-aligned) gives the uniform distribution; lower S̃ pushes
t toward 1 (high noise), E[t] = a / (a + 1). This parameterization is ours: the paper
(arXiv 2606.07387) names a CLAP-conditioned Beta schedule without publishing the formula.
"""

from __future__ import annotations

import numpy as np

ROBUST_PERCENTILES = (5.0, 95.0)


def robust_range(scores: np.ndarray, percentiles: tuple[float, float] = ROBUST_PERCENTILES) -> tuple[float, float]:
    """(low, high) percentiles of the finite scores: the range mapped onto [0, 1]."""
    finite = np.asarray(scores, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("no finite scores to normalize")
    low, high = np.percentile(finite, percentiles)
    return float(low), float(high)


def normalize_scores(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """S̃ = clip((S − low) / (high − low), 0, 1); all ones when the range is empty."""
    scores = np.asarray(scores, dtype=float)
    if not high > low:
        return np.ones_like(scores)
    return np.clip((scores - low) / (high - low), 0.0, 1.0)


def beta_alpha(s_tilde, lam: float = 1.0):
    """The Beta(α, 1) shape for normalized scores S̃: α = 1 + λ(1 − S̃)."""
    return 1.0 + lam * (1.0 - np.asarray(s_tilde, dtype=float))


def beta_density(t: np.ndarray, s_tilde: float, lam: float = 1.0) -> np.ndarray:
    """p(t | S̃) = α·t^(α−1) on [0, 1]."""
    alpha = float(beta_alpha(s_tilde, lam))
    return alpha * np.power(np.asarray(t, dtype=float), alpha - 1.0)
