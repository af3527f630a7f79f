"""`scoreaware train` and `scoreaware eval` command groups (commands are registered here)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import click

from scoreaware.cli.errors import user_errors
from scoreaware.cli.options import executor_options, print_result, print_summary


@click.group()
def train() -> None:
    """Train from curated manifests (and the reward model from preference pairs)."""


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
@click.option("--holdout", type=click.FloatRange(0.0, 0.9), default=0.2,
              help="Fraction of pairs held out; no clip is on both sides (pairs may carry a \"group\").")
@click.option("--seed", type=int, default=0)
def train_reward(pairs: Path, output: Path, manifest: str | None, clap_model: str | None, mert_model: str | None,
                 trust_remote_code: bool, prompt_protocol: str, epochs: int, batch_size: int, lr: float,
                 holdout: float, seed: int) -> None:
    """Fit the TuneJury-compatible reward head on preference PAIRS (Bradley-Terry loss).

    PAIRS is JSONL: {"cut_a", "cut_b", "winner"} (with --manifest) or
    {"prompt", "audio_a", "audio_b", "winner"} (with --clap-model and --mert-model).
    Reports held-out pairwise accuracy and calibration (ECE).
    """
    from scoreaware.train.reward_fit import fit_reward

    lines = fit_reward(pairs, output, manifest=manifest, clap_model=clap_model, mert_model=mert_model,
                       trust_remote_code=trust_remote_code, prompt_protocol=prompt_protocol, epochs=epochs,
                       batch_size=batch_size, lr=lr, holdout=holdout, seed=seed)
    print_summary("train reward", lines, {})


@train.command("encode", context_settings=dict(show_default=True))
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("manifests") / "encode.jsonl.gz", help="Encoded cuts manifest.")
@click.option("--codec", type=click.Choice(["mel", "mel-vae", "oobleck"]), default="mel",
              help="Latent codec: mel (86 Hz, no weights), mel-vae (21.5 Hz, a folder), oobleck (Stable Audio Open).")
@click.option("--codec-model", default=None,
              help="The VAE: a mel-vae folder (the demo ships one), or an AutoencoderOobleck folder or hub id.")
@click.option("--text-encoder", default="google/flan-t5-large", help="T5-style text encoder (hub id or folder).")
@click.option("--max-text-tokens", type=click.IntRange(1), default=77)
@click.option("--clap-model", default=None,
              help="transformers CLAP for captions without a stored clap_text_emb and for the empty-string null.")
@click.option("--repa", default="", help="REPA targets to precompute: comma list of clap, muq.")
@click.option("--muq-model", default="OpenMuQ/MuQ-large-msd-iter",
              help="MuQ id (muq package) or a local transformers audio encoder folder for the muq target.")
@click.option("--caption-field", default="caption")
@click.option("--device", default="cpu")
@click.option("--resume", is_flag=True)
@click.option("--overwrite", is_flag=True)
@executor_options
def encode(manifest: Path, output: Path, codec: str, codec_model: str | None, text_encoder: str, max_text_tokens: int,
           clap_model: str | None, repa: str, muq_model: str, caption_field: str, device: str, resume: bool,
           overwrite: bool, executor=None) -> None:
    """Precompute latents, text tokens, CLAP text and REPA targets of MANIFEST for training."""
    from scoreaware.train.encode import REPA_TARGETS, run_encode

    unknown = {target for target in repa.split(",") if target} - set(REPA_TARGETS)
    if unknown:
        raise click.BadParameter(f"unknown REPA targets {sorted(unknown)}; choose from {REPA_TARGETS}",
                                 param_hint="--repa")
    print_result(run_encode(manifest, output, codec=codec, codec_model=codec_model, text_encoder=text_encoder,
                            max_text_tokens=max_text_tokens, clap_model=clap_model, repa=repa, muq_model=muq_model,
                            caption_field=caption_field, device=device, executor=executor, resume=resume,
                            overwrite=overwrite))


@train.command("fit", context_settings=dict(show_default=True))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TOML file of TrainConfig keys.")
@click.option("--preset", type=click.Choice(["tiny", "S", "L"]), default=None, help="Named recipe.")
@click.option("--manifest", default=None, help="Encoded training manifest (shortcut for --set manifest=...).")
@click.option("--set", "overrides", multiple=True, help="key=value override; repeatable. Unknown keys fail.")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Continue the latest checkpoint of this run folder exactly, with its saved configuration "
                   "(--set steps=N to extend; only steps, log/val/ckpt intervals, val_manifest and device may "
                   "change).")
@click.option("--unsafe-pickle", is_flag=True,
              help="Allow checkpoints that need Python pickle (older scoreaware runs; pickle can run code).")
@user_errors(FileNotFoundError, ValueError)
def fit(config_path: str | None, preset: str | None, manifest: str | None, overrides: tuple[str, ...],
        resume_dir: Path | None, unsafe_pickle: bool) -> None:
    """Train the FluxAudio-style DiT on an encoded manifest (single process, or under torchrun for DDP).

    Writes runs/{idx}-{model}/: config.json, checkpoints/{step}.pt, tb/ (TensorBoard), loss.png.
    """
    from scoreaware.train.fit import fit as run_fit

    run_dir = run_fit(overrides, preset=preset, config_path=config_path, manifest=manifest, resume_dir=resume_dir,
                      unsafe_pickle=unsafe_pickle)
    if os.environ.get("RANK", "0") == "0":
        import json as _json

        history = _json.loads((run_dir / "history.json").read_text())
        click.secho("\ntrain fit", bold=True)
        print_fit_summary(history)
        click.echo(f"  → {run_dir} (checkpoints/, tb/, loss.png)")


def _list_config_keys() -> None:
    """`train fit --help` ends its description with every key `--set` accepts and its default."""
    from scoreaware.train.config import config_keys_help

    keys = "\n".join(config_keys_help())
    fit.help = (f"{inspect.cleandoc(fit.help or '')}\n\nKeys of --set KEY=VALUE (and of --config TOML), with "
                f"defaults:\n\n\b\n{keys}")


_list_config_keys()


def print_fit_summary(history: list[dict]) -> None:
    """First → last of the logged losses, and the last validation (raw and EMA weights)."""
    steps = [h for h in history if "loss" in h]
    for key, label in (("flow", "flow loss"), ("crpo", "CRPO loss"), ("implicit_acc", "implicit accuracy")):
        values = [h[key] for h in steps if key in h]
        if len(values) > 1:
            click.echo(f"  steps {steps[-1]['step']}: {label} {values[0]:.4f} → {values[-1]:.4f}")
        elif values:  # one logged value: no "x → x" that reads as a loss that did not move
            click.echo(f"  step {steps[-1]['step']}: {label} {values[0]:.4f} (logged once)")
    vals = [h for h in history if any(k.startswith("val_") for k in h)]
    if vals:
        last = vals[-1]
        shown = [f"{k.removeprefix('val_').replace('_', ' ')} {v:.4f}" for k, v in last.items()
                 if k.startswith("val_") and isinstance(v, float)]
        click.echo(f"  validation at step {last['step']}: " + ", ".join(shown))
    else:  # no slice is held out by default: the training manifest is the data a user chose to train on
        click.echo("  no validation: set val_manifest=... (a held-out encoded manifest) to log a held-out loss")


def sampling_options(fn):
    options = [
        click.option("--steps", type=click.IntRange(1), default=25, help="Euler steps from t=1 to 0."),
        click.option("--cfg", type=float, default=4.0, help="Joint text+score guidance weight w."),
        click.option("--score", type=float, default=5.0, help="Target score (z-units of the training reward)."),
        click.option("--no-score", is_flag=True, help="Do not condition on a score."),
        click.option("--negative-prompt", default="noise, distortion, low quality, static, hum, hiss, clipping, "
                     "muffled, amateur recording"),
        click.option("--prefix", default="high quality instrumental music, ",
                     help="Put before every prompt when generating (not when scoring)."),
        click.option("--seconds", type=click.FloatRange(0.5), default=10.0),
        click.option("--lufs", type=float, default=-16.5, help="Loudness target of the output."),
        click.option("--demucs", default=None, help="Demucs model for the instrumental pass, e.g. mdx_extra (extra)."),
        click.option("--demucs-passes", type=click.IntRange(1), default=3),
        click.option("--demucs-repo", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Local folder of Demucs models (.th), for offline machines [default: download]."),
        click.option("--clap-model", default=None, help="CLAP text model [default: the one recorded at encode time]."),
        click.option("--seed", type=int, default=0, help="seed_base: clip k of prompt i uses seed + i·K + k."),
        click.option("--batch-size", type=click.IntRange(1), default=8, help="Clips generated together."),
        click.option("--device", default="cpu"),
        click.option("--unsafe-pickle", is_flag=True,
                     help="Allow a checkpoint that needs Python pickle (older runs; it can run code)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def settings_from(steps, cfg, score, no_score, negative_prompt, prefix, seconds, lufs, demucs, demucs_passes,
                  demucs_repo, seed):
    from scoreaware.train.sample import SampleSettings

    return SampleSettings(steps=steps, cfg=cfg, score=None if no_score else score, negative_prompt=negative_prompt,
                          prefix=prefix, seconds=seconds, target_lufs=lufs, seed=seed, demucs=demucs,
                          demucs_passes=demucs_passes, demucs_repo=demucs_repo)


@train.command("sample", context_settings=dict(show_default=True))
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--prompts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Text lines, JSONL, a CSV with id,prompt, or a JSON list.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("samples"))
@sampling_options
@click.option("--resume", is_flag=True, help="Continue an interrupted run with the same options.")
@click.option("--overwrite", is_flag=True, help="Start over (deletes the folder's clips).")
@user_errors(ValueError, RuntimeError)
def sample(checkpoint: str, prompts: str, output: Path, resume: bool, overwrite: bool, **options) -> None:
    """Generate 44.1 kHz WAVs for PROMPTS from CHECKPOINT (EMA weights, joint text+score CFG).

    The same implementation as `scoreaware eval generate` (one clip per prompt).
    """
    from scoreaware.core.progress import Timer, progress
    from scoreaware.train.prompts import read_prompts
    from scoreaware.train.sample import run_generation

    settings = settings_from(**{k: options[k] for k in ("steps", "cfg", "score", "no_score", "negative_prompt",
                                                        "prefix", "seconds", "lufs", "demucs", "demucs_passes",
                                                        "demucs_repo", "seed")})
    timer = Timer()
    items = read_prompts(prompts)
    with progress(len(items), "sample", "clip") as bar:
        result = run_generation(checkpoint, items, output, settings, 1, options["batch_size"], False,
                                options["clap_model"], options["device"], resume, overwrite,
                                options["unsafe_pickle"], prompts_file=str(prompts),
                                progress=lambda _: bar.update(1))
    click.secho("\ntrain sample", bold=True)
    click.echo(f"  {len(result.rows)} clips × {settings.seconds:g} s at 44.1 kHz ({result.generated} new), "
               f"{settings.steps} steps, cfg {settings.cfg:g}, score "
               f"{'none' if settings.score is None else settings.score}, {settings.target_lufs:g} LUFS; "
               f"took {timer.seconds:.1f} s")
    click.echo(f"  → {output}/ (WAVs, samples.jsonl)")
