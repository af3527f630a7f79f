"""`scoreaware posttrain`: expert iteration, cross-load and CRPO (thin commands over
`scoreaware.posttrain`). They also answer under `scoreaware train` (hidden), where they lived before."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.errors import user_errors
from scoreaware.cli.options import note, print_result, print_summary


@click.group()
def posttrain() -> None:
    """Post-training: expert iteration, cross-load v1 → v2, CRPO preference tuning."""


@click.command("crpo", context_settings=dict(show_default=True))
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prompts", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--candidates", "n", type=click.IntRange(2), default=5, help="Candidates per prompt (N).")
@click.option("--score", type=float, default=2.0, help="Score the candidates are generated (and trained) at.")
@click.option("--cfg", type=float, default=4.5)
@click.option("--steps", "sample_steps", type=click.IntRange(1), default=25, help="Euler steps of generation.")
@click.option("--seconds", type=click.FloatRange(0.5), default=10.0)
@click.option("--clap-backend", type=click.Choice(["transformers", "laion"]), default="transformers")
@click.option("--clap-model", default=None, help="CLAP that ranks the candidates [default: the parent's].")
@click.option("--min-margin", type=click.FloatRange(0), default=0.0, help="Skip pairs closer than this in CLAP.")
@click.option("--holdout", type=click.FloatRange(0, 0.9), default=0.1, help="Share of pairs held out.")
@click.option("--train-steps", type=click.IntRange(1), default=5000, help="CRPO steps (published: 5k).")
@click.option("--lr", type=float, default=1e-6)
@click.option("--warmup", type=click.IntRange(0), default=100)
@click.option("--beta", type=float, default=2000.0)
@click.option("--lambda-fm", type=float, default=1.0)
@click.option("--score-dropout", type=click.FloatRange(0, 1), default=0.1,
              help="Share of pairs trained at the null score (published null_score_prob: keeps CFG's null branch).")
@click.option("--batch-size", type=click.IntRange(1), default=8)
@click.option("--random-pairs", is_flag=True,
              help="The control arm: two candidates per prompt drawn and ordered at random (seed 0), not the best "
                   "vs the worst by CLAP (the same training, no preference).")
@click.option("--unsafe-pickle", is_flag=True)
@click.option("--overwrite", is_flag=True, help="Start over (another run's options are refused otherwise).")
@user_errors(ValueError)  # the drivers' ValueErrors are bad inputs (a parent that does not fit, no scores, ...)
def crpo(**options) -> None:
    """CRPO from CHECKPOINT: CLAP-ranked pairs of its own candidates, then preference fine-tuning."""
    from scoreaware.posttrain.crpo import run_crpo

    print_result(run_crpo(**options, log=note))


@click.command("expert-iteration", context_settings=dict(show_default=True))
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prompts", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candidate prompts (text lines, JSONL, CSV id,prompt, JSON).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--manifest", "base", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Base training manifest of the mixture [default: the parent's].")
@click.option("--data-free", is_flag=True,
              help="Fine-tune on the keepers alone (TuneJury's mode 3), not on base + keepers (ttm-humanpref).")
@click.option("--reward", required=True, type=click.Path(exists=True, dir_okay=False), help="Reward head.")
@click.option("--mert-model", required=True, help="MERT of the reward head.")
@click.option("--rounds", type=click.IntRange(1), default=1)
@click.option("--candidates", "k", type=click.IntRange(1), default=9, help="Candidates per prompt (K).")
@click.option("--score", type=float, default=2.0, help="Score the candidates are generated at (z-units).")
@click.option("--cfg", type=float, default=4.5)
@click.option("--steps", "sample_steps", type=click.IntRange(1), default=25, help="Euler steps of generation.")
@click.option("--seconds", type=click.FloatRange(0.5), default=10.0)
@click.option("--blend", default="reward=1,clap=1",
              help="Weights of the z-scores (reward=1,clap=0 is TuneJury's reward-only protocol).")
@click.option("--per-prompt", is_flag=True,
              help="Keep ceil(top·K) of each prompt's K candidates (z within the prompt), not a global top fraction.")
@click.option("--top", type=click.FloatRange(0, 1, min_open=True), default=0.1)
@click.option("--oversample", type=click.IntRange(1), default=5, help="Copies of each keeper in the mixture.")
@click.option("--ft-steps", type=click.IntRange(1), default=30_000, help="Fine-tuning steps (published: 30k).")
@click.option("--lr", type=float, default=1e-5)
@click.option("--polish-steps", type=click.IntRange(0), default=5000,
              help="Then this many steps at --polish-lr (published: 30k + 5k at 1e-6; 0 skips the polish).")
@click.option("--polish-lr", type=float, default=1e-6)
@click.option("--batch-size", type=click.IntRange(1), default=None, help="[default: the parent's]")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="REF.npz for the fidelity guard (FAD-CLAP, MAD).")
@click.option("--eval-prompts", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Prompts of the fidelity guard; must not overlap --prompts.")
@click.option("--allow-overlap", is_flag=True, help="Allow evaluation prompts among the candidate prompts.")
@click.option("--random-selection", is_flag=True,
              help="The control arm: keep as many candidates, drawn at random (seed 0), not the best by score "
                   "(the same extra training, no selection).")
@click.option("--unsafe-pickle", is_flag=True)
@click.option("--overwrite", is_flag=True, help="Start over (another run's options are refused otherwise).")
@user_errors(ValueError)
def expert_iteration(**options) -> None:
    """Expert iteration from CHECKPOINT: generate, score, select, mix, fine-tune (ROUNDS times)."""
    from scoreaware.posttrain.expert_iteration import run_expert_iteration

    print_result(run_expert_iteration(**options, log=note))


@click.command("cross-load", context_settings=dict(show_default=True))
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--score-head", type=click.Choice(["global_adaln", "input_add", "token"]), default="input_add",
              help="The head the weights move to (v1 = global_adaln, v2 = input_add).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--deploy-score", "--probe-score", "probe_score", type=float, default=2.0,
              help="Score the result will be sampled and CRPO-tuned at: where the bridge is checked.")
@click.option("--adapt-steps", type=click.IntRange(0), default=300,
              help="Steps that train only the new head to reproduce the parent (0: the plain strict load).")
@click.option("--max-gap", type=click.FloatRange(0), default=0.5,
              help="Refuse when the result misses more than this share of the parent's score effect (0.5: "
                   "nearer the parent with the score than without it).")
@click.option("--probe-manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Encoded manifest whose cuts adapt and check the new head (default: the checkpoint's "
                   "training manifest).")
@click.option("--unsafe-pickle", is_flag=True, help="Allow a checkpoint that needs pickle (older runs).")
def cross_load_cmd(checkpoint: str, score_head: str, output: Path, probe_score: float, adapt_steps: int,
                   max_gap: float, probe_manifest: str | None, unsafe_pickle: bool) -> None:
    """Move CHECKPOINT's weights from its score head to another (v1 GlobalAdaLN → v2 InputAdd).

    The new head is adapted to reproduce the parent (only its weights train) on real cuts of its
    training data, then checked at the deployment score on other cuts: the share of the parent's
    score effect the result misses must stay under --max-gap. The result starts
    `train fit --set init_from=...` (CRPO) or `eval generate`.
    """
    from scoreaware.posttrain.crossload import cross_load_file

    print_summary("train cross-load", cross_load_file(checkpoint, score_head, output, probe_score, unsafe_pickle,
                                                      adapt_steps, max_gap, probe_manifest), {})


for command in (expert_iteration, cross_load_cmd, crpo):
    posttrain.add_command(command)
