"""`scoreaware curate score clap` and `scoreaware curate score reward`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import (
    Timer,
    done_line,
    drive,
    executor_options,
    manifest_path,
    output_options,
    prepare_output,
    print_summary,
    progress,
    ray_line,
    rejected_line,
    stage_command,
)


@click.group()
def score() -> None:
    """Score cuts: CLAP audio-text alignment and a preference reward."""


def _summary(name: str, out, manifest: Path, timer: Timer, values: list[float], field: str) -> list[str]:
    import numpy as np

    lines = [done_line(out, "scored"), rejected_line(out.summary.rejected)]
    if values:
        v = np.asarray(values)
        lines.append(f"{field} (this run): min {v.min():.4f}  median {np.median(v):.4f}  mean {v.mean():.4f}  "
                     f"max {v.max():.4f}")
    done = out.summary.this_run.get("kept", 0)
    rate = done / timer.seconds if timer.seconds else 0.0
    lines.append(f"took {timer.seconds:.1f} s ({rate:.1f} cuts/s)")
    return lines


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
@stage_command
def score_clap_cmd(manifest: Path, backend: str, model: str | None, amodel: str, caption_field: str, policy: str,
                   batch_size: int, workers: int, device: str, unsafe_pickle: bool, output: Path, resume: bool,
                   overwrite: bool, executor=None) -> None:
    """Add clap_score (and stored audio/text embeddings) to every cut of MANIFEST.

    Cuts without a caption are embedded too (the reward, FAD and REPA use the embedding) but
    get no score; `curate filter` decides about them. Rescoring after captioning:
    --caption-field caption on the captioned manifest.
    """
    import functools

    from curate.arrays import arrays_dir
    from curate.executors import ExecutorOptions
    from curate.io import count_lines, describe_input
    from curate.manifests import check_input
    from curate.scoring.clap import DEFAULT_MODELS, load_clap, weights_fingerprint
    from curate.stages.score_clap import ClapScoreConfig, clap_job

    executor = executor or ExecutorOptions()
    source = describe_input(manifest)
    model_id = model or DEFAULT_MODELS[backend]
    config = dict(input_sha256=source["sha256"], backend=backend, model=model_id,
                  weights=weights_fingerprint(model_id), amodel=amodel if backend == "laion" else None,
                  caption_field=caption_field, policy=policy)
    out = prepare_output(output, "clap", resume, overwrite, config=config, input_manifest=manifest)
    if out is None:
        return
    timer = Timer()
    check_input(manifest)
    setup = functools.partial(load_clap, backend, model, device=device, amodel=amodel, unsafe_pickle=unsafe_pickle)
    stage_config = ClapScoreConfig(caption_field=caption_field, policy=policy, batch_size=batch_size,
                                   num_workers=0 if executor.on_ray else workers)  # on Ray the actors decode
    scores: list[float] = []

    def keep_score(cut) -> None:
        if cut.custom.get("clap_score") is not None:
            scores.append(cut.custom["clap_score"])

    with out, progress(count_lines(manifest), "score clap", "cut") as bar:
        bar.update(out.resumed_items)
        report = drive(clap_job(setup, stage_config, arrays_dir(output)), manifest, out, executor, bar, keep_score)
    encoder = report.get("state")
    provenance = out.finalize(
        options=dict(manifest=str(manifest), sampling_rate=getattr(encoder, "sampling_rate", None),
                     window_samples=getattr(encoder, "window", None), batch_size=batch_size, device=device,
                     output=str(output), arrays=str(arrays_dir(output)), executor=executor.kind),
        inputs=[source], extra_versions=("torch", "torchaudio", "transformers", "laion-clap", "ray"),
        tallies={"without_caption": lambda cut: (cut.get("custom") or {}).get("clap_score") is None},
    )
    lines = _summary("clap", out, manifest, timer, scores, "clap_score")
    lines += [line for line in [ray_line(report)] if line]
    if out.summary.tallies["without_caption"]:
        lines.insert(1, f"{out.summary.tallies['without_caption']} cuts have no {caption_field}: embedded, not "
                        "scored (filter's caption rule decides)")
    print_summary("score clap", lines, provenance["outputs"])


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
@stage_command
def score_reward_cmd(manifest: Path, checkpoint: str, mert_model: str, trust_remote_code: bool,
                     prompt_protocol: str | None,
                     batch_size: int, workers: int, device: str, unsafe_pickle: bool, output: Path, resume: bool,
                     overwrite: bool, executor=None) -> None:
    """Add a TuneJury-compatible reward to every cut of MANIFEST (a `score clap` output).

    Reuses the stored CLAP embeddings; computes and stores MERT features (mert_emb).
    """
    import functools

    from curate.arrays import arrays_dir
    from curate.executors import ExecutorOptions
    from curate.io import StageError, count_lines, describe_input
    from curate.manifests import check_input
    from curate.scoring.clap import weights_fingerprint
    from curate.scoring.reward import load_reward
    from curate.stages.score_reward import RewardScoreConfig, load_reward_models, reward_job

    executor = executor or ExecutorOptions()
    source, head_file = describe_input(manifest), describe_input(checkpoint)
    head = load_reward(checkpoint, unsafe_pickle=unsafe_pickle)
    prompt_protocol = prompt_protocol or head.prompt_protocol or "empty"
    config = dict(input_sha256=source["sha256"], checkpoint_sha256=head_file["sha256"], mert_model=mert_model,
                  mert_weights=weights_fingerprint(mert_model), prompt_protocol=prompt_protocol)
    out = prepare_output(output, "reward", resume, overwrite, config=config, input_manifest=manifest)
    if out is None:
        return
    timer = Timer()
    check_input(manifest)
    from curate.publish import provenance_chain
    from curate.scoring.reward import check_feature_models

    scored = next((p["options"] for p in provenance_chain(manifest) if p.get("stage") == "clap"), {})
    try:
        check_feature_models(head, scored.get("weights"), weights_fingerprint(mert_model))
    except ValueError as exc:
        raise StageError(f"{checkpoint}: {exc}") from None
    setup = functools.partial(load_reward_models, checkpoint, mert_model, device=device,
                              trust_remote_code=trust_remote_code, unsafe_pickle=unsafe_pickle)
    stage_config = RewardScoreConfig(prompt_protocol=prompt_protocol, batch_size=batch_size,
                                     num_workers=0 if executor.on_ray else workers)  # on Ray the actors decode
    rewards: list[float] = []
    with out, progress(count_lines(manifest), "score reward", "cut") as bar:
        bar.update(out.resumed_items)
        report = drive(reward_job(setup, stage_config, arrays_dir(output)), manifest, out, executor, bar,
                       lambda cut: rewards.append(cut.custom["reward"]))
    provenance = out.finalize(
        options=dict(manifest=str(manifest), checkpoint=str(checkpoint), prompt_protocol=prompt_protocol,
                     batch_size=batch_size, device=device, output=str(output), arrays=str(arrays_dir(output)),
                     executor=executor.kind),
        inputs=[source, head_file], extra_versions=("torch", "torchaudio", "transformers", "ray"),
    )
    lines = _summary("reward", out, manifest, timer, rewards, "reward") + [line for line in [ray_line(report)] if line]
    print_summary("score reward", lines, provenance["outputs"])
