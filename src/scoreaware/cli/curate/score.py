"""`scoreaware curate score clap` and `scoreaware curate score reward`."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.options import (
    executor_options,
    manifest_path,
    output_options,
    print_result,
)


@click.group()
def score() -> None:
    """Score cuts: CLAP audio-text alignment and a preference reward."""


def unsafe_pickle_option(fn):
    return click.option("--unsafe-pickle", is_flag=True,
                        help="Allow a checkpoint that needs Python pickle (it can run code): only for files you "
                             "trust.")(fn)


@score.command("clap", context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--backend", type=click.Choice(["transformers", "laion"]), default="transformers",
              help="transformers ClapModel, or laion_clap with a .pt checkpoint (challenge-exact; laion extra).")
@click.option("--model", default=None,
              help="Hub id or local folder (transformers) or .pt checkpoint (laion) "
                   "[default: laion/larger_clap_music | music_audioset_epoch_15_esc_90.14.pt].")
@click.option("--amodel", default="HTSAT-base", help="laion_clap audio model (HTSAT-base for the music checkpoints).")
@click.option("--caption-field", default="caption", help="custom field holding the text to score against.")
@click.option("--policy", type=click.Choice(["first", "center", "mean"]), default="center",
              help="Which 10 s window(s) of longer cuts are embedded (never a random crop).")
@click.option("--batch-size", type=click.IntRange(1), default=16, help="Audio windows per model call.")
@click.option("-j", "--workers", type=click.IntRange(0), default=2, help="DataLoader processes decoding audio.")
@click.option("--device", default="cpu", help="torch device, e.g. cuda:0.")
@unsafe_pickle_option
@executor_options
@output_options("clap.jsonl.gz")
def score_clap_cmd(manifest: Path, output: Path, resume: bool, overwrite: bool, executor=None, **options) -> None:
    """Add clap_score (and stored audio/text embeddings) to every cut of MANIFEST.

    Cuts without a caption are embedded too (the reward, FAD and REPA use the embedding) but
    get no score; `curate filter` decides about them. Rescoring after captioning:
    --caption-field caption on the captioned manifest.
    """
    from scoreaware.curate.stages.score_clap import ClapScoreConfig, run_score_clap

    print_result(run_score_clap(manifest, output, ClapScoreConfig(**options), executor=executor, resume=resume,
                                overwrite=overwrite))


@score.command("reward", context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Reward head: a `scoreaware train reward` checkpoint or a released TuneJury state dict.")
@click.option("--mert-model", default="m-a-p/MERT-v1-330M", help="MERT hub id or local folder.")
@click.option("--trust-remote-code", is_flag=True,
              help="Allow the MERT repo's own model code to run (the Hub MERT needs it).")
@click.option("--prompt-protocol", type=click.Choice(["empty", "caption"]), default=None,
              help="Text features: zeros (TuneJury's empty-prompt protocol) or the cut's CLAP text embedding "
                   "[default: the protocol the head was trained with; empty for a released TuneJury head].")
@click.option("--batch-size", type=click.IntRange(1), default=16, help="Cuts per reward batch.")
@click.option("-j", "--workers", type=click.IntRange(0), default=2, help="DataLoader processes decoding audio.")
@click.option("--device", default="cpu", help="torch device for MERT.")
@unsafe_pickle_option
@executor_options
@output_options("reward.jsonl.gz")
def score_reward_cmd(manifest: Path, output: Path, resume: bool, overwrite: bool, executor=None,
                     **options) -> None:
    """Add a TuneJury-compatible reward to every cut of MANIFEST (a `score clap` output).

    Reuses the stored CLAP embeddings; computes and stores MERT features (mert_emb).
    """
    from scoreaware.curate.stages.score_reward import RewardScoreConfig, run_score_reward

    print_result(run_score_reward(manifest, output, RewardScoreConfig(**options), executor=executor, resume=resume,
                                  overwrite=overwrite))
