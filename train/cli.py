"""`scoreaware train` and `scoreaware eval` command groups (commands are registered here)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def train() -> None:
    """Train from curated manifests (and the reward model from preference pairs)."""


@click.group(name="eval")
def evaluate() -> None:
    """Evaluate generated audio against references."""


@train.command("reward", context_settings=dict(show_default=True))
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint to write (.pt); a loss/accuracy plot goes next to it.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Scored manifest resolving cut-id pairs (its stored CLAP/MERT features are used).")
@click.option("--clap-model", default=None, help="CLAP model for audio-file pairs (transformers backend).")
@click.option("--mert-model", default=None, help="MERT model for audio-file pairs or cuts without mert_emb.")
@click.option("--trust-remote-code", is_flag=True, help="Allow the MERT repo's own model code to run.")
@click.option("--prompt-protocol", type=click.Choice(["empty", "caption"]), default="empty",
              help="Text features of the head: zeros or the CLAP text embedding.")
@click.option("--epochs", type=click.IntRange(1), default=60)
@click.option("--batch-size", type=click.IntRange(2), default=64)
@click.option("--lr", type=float, default=1e-3)
@click.option("--holdout", type=click.FloatRange(0.0, 0.9), default=0.2, help="Fraction of pairs held out.")
@click.option("--seed", type=int, default=0)
def train_reward(pairs: Path, output: Path, manifest: str | None, clap_model: str | None, mert_model: str | None,
                 trust_remote_code: bool, prompt_protocol: str, epochs: int, batch_size: int, lr: float,
                 holdout: float, seed: int) -> None:
    """Fit the TuneJury-compatible reward head on preference PAIRS (Bradley-Terry loss).

    PAIRS is JSONL: {"cut_a", "cut_b", "winner"} (with --manifest) or
    {"prompt", "audio_a", "audio_b", "winner"} (with --clap-model and --mert-model).
    Reports held-out pairwise accuracy and calibration (ECE).
    """
    from curate.scoring.clap import load_transformers_clap
    from curate.scoring.pairs import PairsError, pair_features
    from curate.scoring.reward import TrainConfig, chance_interval, load_mert, save_reward, train_reward_head

    try:
        clap = load_transformers_clap(clap_model) if clap_model else None
        mert = load_mert(mert_model, trust_remote_code=trust_remote_code) if mert_model else None
        features = pair_features(pairs, manifest, clap=clap, mert=mert, prompt_protocol=prompt_protocol)
    except PairsError as exc:
        raise click.ClickException(str(exc)) from None
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, holdout=holdout, seed=seed)
    result = train_reward_head(features.a, features.b, features.a_wins, features.clap_dim, features.mert_dim, config)
    save_reward(output, result.head, metrics=result.metrics,
                extra={"train_config": vars(config) | {"hidden": list(config.hidden)}, "history": result.history,
                       "prompt_protocol": prompt_protocol, "pairs": str(pairs)})
    plot = _plot_history(result.history, output.with_suffix(".png"))
    held = result.metrics["holdout"]
    click.secho("\ntrain reward", bold=True)
    click.echo(f"  pairs {len(features.a)} (train {result.metrics['train']['pairs']}, held out {held['pairs']}); "
               f"features {features.a.shape[1]} = 2×{features.clap_dim} CLAP + {features.mert_dim} MERT")
    click.echo(f"  train accuracy {result.metrics['train']['accuracy']:.3f}")
    if held["pairs"]:
        chance = chance_interval(held["pairs"])
        click.echo(f"  held-out accuracy {held['accuracy']:.3f} (chance band up to {chance:.3f}), "
                   f"ECE {held['ece']:.3f}, BT loss {held['bt_loss']:.3f}")
    click.echo(f"  → {output}\n  → {plot}")


def _plot_history(history: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
