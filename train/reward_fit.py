"""`train reward`: the TuneJury-compatible reward head (`curate.scoring.reward`) fitted on
preference pairs by Bradley–Terry (`train_reward_head`), held out by clip, saved with its metrics
and a training plot (`fit_reward`, the command as a library call)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from scoreaware.core.errors import StageError
from scoreaware.core.files import save_figure
from scoreaware.core.provenance import describe_input
from scoreaware.curate.scoring.clap import load_transformers_clap
from scoreaware.curate.scoring.reward import RewardConfig, RewardHead, load_mert, save_reward, score_features
from scoreaware.train.reward_pairs import PairsError, feature_models, pair_features


@dataclass
class RewardTrainConfig:
    """Bradley-Terry training of the head on preference pairs."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    holdout: float = 0.2
    seed: int = 0
    dropout: float = 0.5
    hidden: tuple[int, ...] = (1024, 512, 256, 128)


@dataclass
class TrainResult:
    head: RewardHead
    metrics: dict
    history: list[dict] = field(default_factory=list)


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> float:
    """ECE of P(A wins) against what happened (1 = A won), equal-width bins."""
    probabilities, outcomes = np.asarray(probabilities), np.asarray(outcomes, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(probabilities[mask].mean() - outcomes[mask].mean())
    return float(ece)


def pairwise_metrics(head: RewardHead, a: np.ndarray, b: np.ndarray, a_wins: np.ndarray) -> dict:
    """Accuracy, Bradley-Terry loss and ECE of the head on pairs."""
    if len(a) == 0:
        return {"pairs": 0}
    margin = score_features(head, a) - score_features(head, b)
    p = 1.0 / (1.0 + np.exp(-margin))
    outcome = a_wins.astype(float)
    eps = 1e-7
    loss = -np.mean(outcome * np.log(p + eps) + (1 - outcome) * np.log(1 - p + eps))
    return {"pairs": int(len(a)), "accuracy": float(np.mean((margin > 0) == a_wins)), "bt_loss": float(loss),
            "ece": expected_calibration_error(p, outcome)}


def split_pairs(a_ids: list[str], b_ids: list[str], holdout: float, seed: int = 0,
                groups: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(train indices, held-out indices, pairs dropped): no clip on both sides of the split.

    With a group per pair (e.g. the source clip of a clean/degraded pair), a `holdout` share of
    the groups is held out. Otherwise clips are held out with probability √holdout, so that
    about `holdout` of the pairs have both clips held out; pairs with one clip on each side are
    dropped, since scoring them would test on a clip the head trained on.
    """
    n = len(a_ids)
    if n < 5 or holdout <= 0:
        return np.arange(n), np.arange(0), 0
    rng = np.random.default_rng(seed)
    if groups is not None:
        names = sorted({g if g is not None else f"pair{i}" for i, g in enumerate(groups)})
        held = set(rng.permutation(names)[: int(round(len(names) * holdout))])
        side = np.array([(g if g is not None else f"pair{i}") in held for i, g in enumerate(groups)])
        return np.flatnonzero(~side), np.flatnonzero(side), 0
    clips = sorted(set(a_ids) | set(b_ids))
    held = {c for c, u in zip(clips, rng.random(len(clips))) if u < np.sqrt(holdout)}
    in_a = np.array([c in held for c in a_ids])
    in_b = np.array([c in held for c in b_ids])
    return np.flatnonzero(~in_a & ~in_b), np.flatnonzero(in_a & in_b), int((in_a ^ in_b).sum())


def train_reward_head(a: np.ndarray, b: np.ndarray, a_wins: np.ndarray, clap_dim: int, mert_dim: int,
                      config: RewardTrainConfig = RewardTrainConfig(), progress=None, a_ids: list[str] | None = None,
                      b_ids: list[str] | None = None, groups: list[str | None] | None = None) -> TrainResult:
    """Fit the head on pairs (features of A, features of B, whether A won); hold out a split.

    :param a, b: (pairs, 2·clap_dim + mert_dim) feature rows.
    :param a_wins: (pairs,) booleans.
    :param a_ids, b_ids, groups: which clips the pairs hold; the held-out split never shares a
        clip with training (`split_pairs`). Without ids the split is by pair.
    """
    if a_ids is None or b_ids is None:  # unknown clips: each pair is its own group
        a_ids, b_ids = [f"a{i}" for i in range(len(a))], [f"b{i}" for i in range(len(b))]
        groups = groups if groups is not None else [f"pair{i}" for i in range(len(a))]
    fit, hold, dropped = split_pairs(a_ids, b_ids, config.holdout, config.seed, groups)
    n_hold = len(hold)
    torch.manual_seed(config.seed)
    head = RewardHead(RewardConfig(clap_dim=clap_dim, mert_dim=mert_dim, hidden=tuple(config.hidden),
                                   dropout=config.dropout))
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ta, tb = torch.from_numpy(a[fit]), torch.from_numpy(b[fit])
    sign = torch.from_numpy(np.where(a_wins[fit], 1.0, -1.0).astype(np.float32))
    history = []
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(config.epochs):
        head.train()  # important: BatchNorm batch stats and dropout on
        perm = torch.randperm(len(fit), generator=generator)
        total = 0.0
        for start in range(0, len(fit), config.batch_size):
            idx = perm[start : start + config.batch_size]
            if len(idx) < 2:
                continue  # BatchNorm needs two rows
            scores = head(torch.cat([ta[idx], tb[idx]]))
            margin = (scores[: len(idx)] - scores[len(idx) :]) * sign[idx]
            loss = -torch.nn.functional.logsigmoid(margin).mean()  # Bradley-Terry
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        record = {"epoch": epoch + 1, "train_loss": total / max(len(fit), 1)}
        if n_hold and (epoch + 1) % max(1, config.epochs // 10) == 0 or epoch + 1 == config.epochs:
            record.update({f"holdout_{k}": v for k, v in pairwise_metrics(head, a[hold], b[hold], a_wins[hold]).items()
                           if k != "pairs"})
        history.append(record)
        if progress:
            progress(record)
    head.eval()
    metrics = {"train": pairwise_metrics(head, a[fit], b[fit], a_wins[fit]),
               "holdout": pairwise_metrics(head, a[hold], b[hold], a_wins[hold]), "dropped_pairs": dropped}
    return TrainResult(head, metrics, history)


def chance_interval(pairs: int, z: float = 2.0) -> float:
    """Accuracy above which a held-out result is unlikely to be chance (0.5 + z·σ)."""
    return 0.5 + z * math.sqrt(0.25 / max(pairs, 1))


def fit_reward(pairs: Path, output: Path, *, manifest: str | None = None, clap_model: str | None = None,
               mert_model: str | None = None, trust_remote_code: bool = False, prompt_protocol: str = "empty",
               epochs: int = 60, batch_size: int = 64, lr: float = 1e-3, holdout: float = 0.2,
               seed: int = 0) -> list[str]:
    """Fit the head on `pairs` into `output` (and a ``.png`` of its training); the summary lines.

    :raises StageError: pairs that cannot be read or matched (naming the file and line).
    """
    output = Path(output)
    try:
        clap = load_transformers_clap(clap_model) if clap_model else None
        mert = load_mert(mert_model, trust_remote_code=trust_remote_code) if mert_model else None
        features = pair_features(pairs, manifest, clap=clap, mert=mert, prompt_protocol=prompt_protocol)
    except PairsError as exc:
        raise StageError(str(exc)) from None
    config = RewardTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, holdout=holdout, seed=seed)
    result = train_reward_head(features.a, features.b, features.a_wins, features.clap_dim, features.mert_dim, config,
                               a_ids=features.a_ids, b_ids=features.b_ids, groups=features.groups)
    result.head.features = feature_models(manifest, clap, mert)
    save_reward(output, result.head, metrics=result.metrics,
                extra={"train_config": vars(config) | {"hidden": list(config.hidden)}, "history": result.history,
                       "prompt_protocol": prompt_protocol,
                       # the pairs by name and content: a path of the machine that trained it means nothing elsewhere
                       "pairs": {"file": Path(pairs).name, "sha256": describe_input(pairs)["sha256"]}})
    plot = plot_history(result.history, output.with_suffix(".png"))
    held = result.metrics["holdout"]
    lines = [f"pairs {len(features.a)} (train {result.metrics['train']['pairs']}, held out {held['pairs']}, "
             f"{result.metrics['dropped_pairs']} dropped: one clip on each side of the split); "
             f"features {features.a.shape[1]} = 2×{features.clap_dim} CLAP + {features.mert_dim} MERT",
             f"train accuracy {result.metrics['train']['accuracy']:.3f}"]
    if held["pairs"]:
        chance = chance_interval(held["pairs"])
        lines.append(f"held-out accuracy {held['accuracy']:.3f} (chance band up to {chance:.3f}), "
                     f"ECE {held['ece']:.3f}, BT loss {held['bt_loss']:.3f}")
    return lines + [f"→ {output}", f"→ {plot}"]


def plot_history(history: list[dict], out: Path) -> Path:
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train BT loss")
    held = [(h["epoch"], h["holdout_accuracy"]) for h in history if "holdout_accuracy" in h]
    if held:
        ax2 = ax.twinx()
        ax2.plot(*zip(*held), "o-", color="tab:orange", label="held-out accuracy")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("held-out accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("reward head training")
    return save_figure(fig, out, dpi=100)
