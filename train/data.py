"""Training data: encoded cuts -> batches of latents and conditioning, through a Lhotse sampler.

A Lhotse `DynamicCutSampler` (shuffled, seeded, sharded across DDP ranks, resumable through its
``state_dict``) yields CutSets; `LatentBatches` turns one into tensors. Nothing here decodes
audio: `train encode` already stored latents, text tokens and REPA targets.

Normalizations computed once over the training manifest and saved with the run:
latent per-channel mean/std (from `train encode`), the conditioning score z-normalized per
group, and the robust CLAP range that maps scores to S̃ ∈ [0, 1] for the Beta sampler.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet
from lhotse.dataset import DynamicCutSampler

from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import manifest_base, provenance_chain
from scoreaware.core.schedule import normalize_scores, robust_range
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, CLAP_SCORE, CLAP_TEXT_EMB
from scoreaware.train.encode import read_encode_info
from scoreaware.train.text import pad_tokens


@dataclass
class Normalization:
    """Everything the data needs to be normalized the same way in training and sampling."""

    latent_mean: list[float]
    latent_std: list[float]
    score_stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # group -> (mean, std)
    clap_range: tuple[float, float] = (0.0, 1.0)
    score_field: str = "reward"
    score_group_by: str = ""
    clap_field: str = CLAP_SCORE

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> Normalization:
        data = dict(data)
        data["score_stats"] = {k: tuple(v) for k, v in data.get("score_stats", {}).items()}
        data["clap_range"] = tuple(data.get("clap_range", (0.0, 1.0)))
        return Normalization(**data)

    def score(self, cut) -> float | None:
        """The cut's conditioning score, z-normalized within its group; None when absent."""
        value = (cut.custom or {}).get(self.score_field)
        if value is None:
            return None
        group = self.group(cut)
        if group not in self.score_stats:  # no statistics to normalize it with: never a silent (0, 1)
            raise ValueError(unknown_group_message(cut.id, group, self))
        mean, std = self.score_stats[group]
        return (float(value) - mean) / std

    def group(self, cut) -> str:
        return str((cut.custom or {}).get(self.score_group_by, "all")) if self.score_group_by else "all"

    def s_tilde(self, cut) -> float:
        value = (cut.custom or {}).get(self.clap_field)
        if value is None:
            return 1.0  # allowed only by unscored=uniform (`check_scores` refuses it otherwise): uniform t
        return float(normalize_scores(np.array([value]), *self.clap_range)[0])


def unknown_group_message(cut_id: str, group: str, norm: Normalization) -> str:
    return (f"cut {cut_id}: its {norm.score_group_by or 'score'} group {group!r} has no normalization statistics "
            f"(known: {sorted(norm.score_stats)[:6]}); the score cannot be z-normalized — train the parent on data "
            "with this group, or drop the group field (score_group_by) from both runs")


def check_scores(manifest: str | Path, norm: Normalization, timesteps: str, unscored: str,
                 uses_score: bool) -> None:
    """Refuse, naming the cuts, what would otherwise train silently wrong: in a beta-timestep
    run, cuts without a CLAP score (S̃ would default to 1, uniform t) unless ``unscored=uniform``
    says so; in a score-conditioned run, scored cuts whose normalization group has no statistics
    (a child trained on groups its parent never saw)."""
    missing: list[str] = []
    for cut in read_cuts(manifest):
        custom = cut.custom or {}
        if timesteps == "beta" and unscored == "error" and custom.get(norm.clap_field) is None:
            missing.append(cut.id)
        if uses_score and custom.get(norm.score_field) is not None and norm.group(cut) not in norm.score_stats:
            raise ValueError(f"{manifest}: " + unknown_group_message(cut.id, norm.group(cut), norm))
    if missing:
        raise ValueError(f"{manifest}: {len(missing)} cuts have no {norm.clap_field} (first: {', '.join(missing[:3])})"
                         " and timesteps=beta needs it for S̃; score them (`curate score clap`), or pass --set "
                         "unscored=uniform to train them with uniform t (recorded in the run's config)")


def encode_info(manifest: str | Path) -> dict:
    """The ``.encode.json`` `train encode` wrote for `manifest`, or for the encoded manifest it
    was derived from (e.g. filtered or selected after encoding), found through the sidecars."""

    candidates = [manifest] + [p["outputs"]["cuts"]["path"] for p in provenance_chain(manifest)
                               if p.get("stage") == "encode"]
    for candidate in candidates:
        base = manifest_base(candidate)
        path = base.with_name(f"{base.name}.encode.json")
        if path.is_file():
            return read_encode_info(path)
    raise FileNotFoundError(f"no .encode.json for {manifest}: train from a `scoreaware train encode` output")


def check_finite(manifest: str | Path, fields: tuple[str, ...]) -> None:
    """Refuse a training manifest whose score or CLAP values are NaN or infinite, naming the cuts:
    one such value would poison every batch it lands in (NaN × 0 is NaN, even for a null score)."""
    bad: dict[str, list[str]] = {}
    for cut in read_cuts(manifest):
        for name in fields:
            value = (cut.custom or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                bad.setdefault(name, []).append(cut.id)
    if bad:
        listing = "; ".join(f"{name} of {len(ids)} cuts (first: {', '.join(ids[:3])})" for name, ids in bad.items())
        raise ValueError(f"{manifest}: non-finite {listing}; filter or rescore them before training")


def compute_normalization(manifest: str | Path, score_field: str, score_group_by: str,
                          clap_field: str) -> Normalization:
    """One pass over the manifest's scalar fields (no arrays are read)."""
    check_finite(manifest, (score_field, clap_field))
    info = encode_info(manifest)
    stats = info.get("latent_stats") or {}
    channels = info["latent_channels"]
    scores: dict[str, list[float]] = {}
    claps: list[float] = []
    for cut in read_cuts(manifest):
        custom = cut.custom or {}
        if custom.get(score_field) is not None:
            group = str(custom.get(score_group_by, "all")) if score_group_by else "all"
            scores.setdefault(group, []).append(float(custom[score_field]))
        if custom.get(clap_field) is not None:
            claps.append(float(custom[clap_field]))
    score_stats = {g: (float(np.mean(v)), float(np.std(v)) or 1.0) for g, v in scores.items()}
    return Normalization(
        latent_mean=stats.get("mean", [0.0] * channels), latent_std=stats.get("std", [1.0] * channels),
        score_stats=score_stats, clap_range=robust_range(np.array(claps)) if claps else (0.0, 1.0),
        score_field=score_field, score_group_by=score_group_by, clap_field=clap_field)


class LatentBatches(torch.utils.data.Dataset):
    """CutSet -> batch dict (Lhotse map-style dataset: `__getitem__` receives the sampled cuts).

    Batch (N examples, T ≤ max_frames latent frames, L text tokens)::

        latent (N, T, C) normalized, latent_mask (N, T), text (N, L, D_text), text_mask (N, L),
        clap (N, D_clap), score (N,), score_mask (N,), s_tilde (N,), repa_<name> targets, ids
    """

    def __init__(self, norm: Normalization, max_frames: int, repa: dict[str, tuple[str, int]] | None = None,
                 scores: bool = True) -> None:
        # scores=False: a model without a score head reads no score, so a cut's score is not normalized (a
        # child of a parent trained on unscored data has no statistics for it, and needs none)
        self.norm, self.max_frames, self.repa, self.scores = norm, max_frames, repa or {}, scores
        self.mean = torch.tensor(norm.latent_mean, dtype=torch.float32)
        self.std = torch.tensor(norm.latent_std, dtype=torch.float32)

    def __getitem__(self, cuts: CutSet) -> dict:
        cuts = list(cuts)
        latents = [torch.from_numpy(c.load_custom("latent")[: self.max_frames]) for c in cuts]
        frames = max(x.shape[0] for x in latents)
        latent = torch.zeros(len(cuts), frames, latents[0].shape[1])
        mask = torch.zeros(len(cuts), frames, dtype=torch.bool)
        for i, x in enumerate(latents):
            latent[i, : x.shape[0]] = (x - self.mean) / self.std
            mask[i, : x.shape[0]] = True
        text, text_mask = pad_tokens([c.load_custom("text_tokens") for c in cuts])
        scores = [self.norm.score(c) if self.scores else None for c in cuts]
        batch = {
            "ids": [c.id for c in cuts],
            "latent": latent, "latent_mask": mask, "text": text, "text_mask": text_mask,
            "clap": torch.from_numpy(np.stack([c.load_custom(CLAP_TEXT_EMB) for c in cuts])).float(),
            "score": torch.tensor([s if s is not None else 0.0 for s in scores], dtype=torch.float32),
            "score_mask": torch.tensor([s is not None for s in scores]),
            "s_tilde": torch.tensor([self.norm.s_tilde(c) for c in cuts], dtype=torch.float32),
        }
        for name, (kind, _) in self.repa.items():
            if kind == "global":
                batch[f"repa_{name}"] = torch.from_numpy(np.stack([c.load_custom(CLAP_AUDIO_EMB) for c in cuts]))
            else:
                seqs = [c.load_custom("repa_frames") for c in cuts]
                # crop the target frames to the same span as the (cropped) latent
                seqs = [s[: max(1, round(len(s) * lat.shape[0] / c.custom["latent_frames"]))]
                        for s, lat, c in zip(seqs, latents, cuts)]
                batch[f"repa_{name}"], _ = pad_tokens(seqs)
        return batch


class PairBatches(LatentBatches):
    """Preference pairs (CRPO): the winner as a training cut plus its loser's latent.

    Each cut of a pairs manifest holds the winner's ``latent`` and the loser's
    ``rejected_latent`` (same prompt, same length); the batch gains ``latent_l`` and
    ``latent_l_mask``. The score both are conditioned on is the pair's ``pair_score`` (z-units,
    the score the candidates were generated at), or null when absent.
    """

    def __getitem__(self, cuts: CutSet) -> dict:
        cuts = list(cuts)
        batch = super().__getitem__(CutSet.from_cuts(cuts))
        losers = [torch.from_numpy(c.load_custom("rejected_latent")[: self.max_frames]) for c in cuts]
        frames = batch["latent"].shape[1]
        latent = torch.zeros(len(cuts), frames, losers[0].shape[1])
        mask = torch.zeros(len(cuts), frames, dtype=torch.bool)
        for i, x in enumerate(losers):
            n = min(frames, x.shape[0])
            latent[i, :n] = (x[:n] - self.mean) / self.std
            mask[i, :n] = True
        batch["latent_l"], batch["latent_l_mask"] = latent, mask
        scores = [(c.custom or {}).get("pair_score") for c in cuts]
        if any(s is not None for s in scores):
            batch["score"] = torch.tensor([float(s) if s is not None else 0.0 for s in scores])
            batch["score_mask"] = torch.tensor([s is not None for s in scores])
        return batch


def make_sampler(manifest: str | Path, batch_size: int, seed: int, world_size: int = 1, rank: int = 0,
                 shuffle: bool = True, drop_last: bool = True) -> DynamicCutSampler:
    """Fixed-size batches of cuts, reshuffled every epoch, one shard per DDP rank."""
    return DynamicCutSampler(read_cuts(manifest), max_cuts=batch_size, shuffle=shuffle, drop_last=drop_last,
                             seed=seed, world_size=world_size, rank=rank)
