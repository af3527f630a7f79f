"""`fit_reward`: `train reward` as a library call — the TuneJury-compatible head fitted on
preference pairs (Bradley–Terry), saved with its metrics and a training plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from scoreaware.core.errors import StageError
from scoreaware.core.files import save_figure
from scoreaware.curate.scoring.clap import load_transformers_clap
from scoreaware.curate.scoring.pairs import PairsError, feature_models, pair_features
from scoreaware.curate.scoring.reward import TrainConfig, chance_interval, load_mert, save_reward, train_reward_head


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
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, holdout=holdout, seed=seed)
    result = train_reward_head(features.a, features.b, features.a_wins, features.clap_dim, features.mert_dim, config,
                               a_ids=features.a_ids, b_ids=features.b_ids, groups=features.groups)
    result.head.features = feature_models(manifest, clap, mert)
    save_reward(output, result.head, metrics=result.metrics,
                extra={"train_config": vars(config) | {"hidden": list(config.hidden)}, "history": result.history,
                       "prompt_protocol": prompt_protocol, "pairs": str(pairs)})
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
