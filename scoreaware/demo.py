"""`scoreaware demo`: the embedded default corpus and the end-to-end demo pipeline.

`demo run` calls the same click commands a user types, in order, on the synthetic corpus:
make-corpus → ingest → segment → score clap → train reward → score reward → caption audio →
caption rewrite → score clap (final captions) → filter → select → validate → describe → report →
export → train encode → train fit (tiny) → train sample.
The models are tiny random-init stand-ins built locally (`make-models`), so the scores and
the generated audio exercise every code path but mean nothing. Each step is skipped when its output is
already complete, so a second run is quick and an interrupted one picks up where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

DEFAULT_WORKDIR = Path("manifests") / "demo"


@click.group()
def demo() -> None:
    """The embedded demo: a synthetic corpus and the pipeline run on it."""


@demo.command("make-corpus", context_settings=dict(show_default=True))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--clips", type=click.IntRange(8), default=40, help="Number of clips (≥ 8 plants every defect).")
@click.option("--duration", type=click.FloatRange(1.0), default=30.0, help="Seconds per clip.")
@click.option("--seed", type=int, default=0, help="The corpus is a pure function of clips, duration and seed.")
def make_corpus(directory: Path, clips: int, duration: float, seed: int) -> None:
    """Synthesize a small music corpus with captions, tags and planted defects into DIRECTORY."""
    from curate.cli.common import progress
    from curate.synth import make_corpus as synthesize

    start = time.perf_counter()
    with progress(clips, "make-corpus", "clip") as bar:
        specs = synthesize(directory, clips=clips, duration=duration, seed=seed, progress=lambda _: bar.update(1))
    defects = [s for s in specs if s.defect]
    mismatched = sum(not s.caption_matches_audio for s in specs)
    click.secho("\nmake-corpus", bold=True)
    click.echo(f"  {clips} clips × {duration:g} s at 44.1 kHz (mp3, flac, wav; stereo and mono)")
    click.echo(f"  planted: {mismatched} mismatched captions, "
               + ", ".join(f"{s.defect} {s.path}" for s in defects))
    click.echo(f"  → {directory}/audio, {directory}/metadata (autotagging.tsv, captions.json, tracks.csv), "
               f"{directory}/truth.jsonl   [{time.perf_counter() - start:.1f} s]")


@demo.command("make-models", context_settings=dict(show_default=True))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0)
def make_models(directory: Path, seed: int) -> None:
    """Build tiny random-init CLAP, MERT, T5, Qwen2-Audio and Qwen2 into DIRECTORY, saved like real ones."""
    from scoreaware.tiny_models import (
        make_tiny_clap,
        make_tiny_mert,
        make_tiny_qwen2,
        make_tiny_qwen2_audio,
        make_tiny_t5,
    )

    builders = (("clap", make_tiny_clap), ("mert", make_tiny_mert), ("t5", make_tiny_t5),
                ("qwen2_audio", make_tiny_qwen2_audio), ("qwen2", make_tiny_qwen2))
    for name, build in builders:
        if not (directory / name / "config.json").is_file():
            build(directory / name, seed=seed)
    click.echo(f"  → {directory}/clap (ClapModel + ClapProcessor), {directory}/mert (HubertModel, 24 kHz), "
               f"{directory}/t5 (T5 encoder), {directory}/qwen2_audio and {directory}/qwen2 (captioners)")


def write_demo_pairs(manifest: Path, truth: Path, out: Path, pairs: int = 300, seed: int = 0) -> Path:
    """Preference pairs with a known rule: a window whose caption describes its audio beats one
    whose caption does not; between two alike, the louder wins."""
    import json
    import random

    from curate.io import read_jsonl
    from curate.manifests import read_cuts

    matches = {row["id"]: row["caption_matches_audio"] for row in read_jsonl(truth)}
    cuts = [(c.id, matches.get(c.recording_id, True), c.custom["loudness_lufs"]) for c in read_cuts(manifest)]
    rng = random.Random(seed)
    with open(out, "w") as f:
        for _ in range(pairs):
            (a, a_ok, a_lufs), (b, b_ok, b_lufs) = rng.sample(cuts, 2)
            a_wins = a_ok > b_ok if a_ok != b_ok else a_lufs > b_lufs
            f.write(json.dumps({"cut_a": a, "cut_b": b, "winner": "a" if a_wins else "b"}) + "\n")
    return out


@demo.command("run", context_settings=dict(show_default=True))
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORKDIR,
              help="Where the corpus, manifests and plots go.")
@click.option("--clips", type=click.IntRange(8), default=40, help="Clips in the synthetic corpus.")
@click.option("--duration", type=click.FloatRange(1.0), default=30.0, help="Seconds per clip.")
@click.option("--train-steps", type=click.IntRange(1), default=300, help="Steps of the tiny training run.")
@click.option("--overwrite", is_flag=True, help="Redo every step, corpus included.")
@click.pass_context
def run(ctx: click.Context, workdir: Path, clips: int, duration: float, train_steps: int, overwrite: bool) -> None:
    """Run the whole pipeline on the embedded synthetic corpus and print what happened."""
    from curate.cli.caption import caption
    from curate.cli.hub import export
    from curate.cli.ingest import ingest
    from curate.cli.inspect import describe, report, validate
    from curate.cli.score import score_clap_cmd, score_reward_cmd
    from curate.cli.segment import segment
    from curate.cli.select import filter_cmd, select_cmd
    from train.cli import encode, fit, sample, train_reward

    start = time.perf_counter()
    corpus = workdir / "corpus"
    manifests = workdir
    if overwrite or not (corpus / "truth.jsonl").is_file():
        ctx.invoke(make_corpus, directory=corpus, clips=clips, duration=duration, seed=0)
    else:
        click.echo(f"✓ corpus already in {corpus}")
    meta = corpus / "metadata"
    steps = [
        ("ingest", ingest, dict(audio_dir=corpus / "audio",
                                metadata_files=(meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv"),
                                output=manifests / "ingest.jsonl.gz")),
        ("segment", segment, dict(manifest=manifests / "ingest.jsonl.gz", output=manifests / "segment.jsonl.gz")),
    ]
    for name, command, kwargs in steps:
        _banner(name)
        ctx.invoke(command, overwrite=overwrite, **kwargs)
    models = workdir / "models"
    _banner("make-models (tiny, random-init)")
    ctx.invoke(make_models, directory=models, seed=0)
    _banner("score clap")
    ctx.invoke(score_clap_cmd, manifest=manifests / "segment.jsonl.gz", model=str(models / "clap"),
               output=manifests / "clap.jsonl.gz", overwrite=overwrite)
    reward_ckpt = models / "reward.pt"
    _banner("train reward")
    if overwrite or not reward_ckpt.is_file():
        pairs = write_demo_pairs(manifests / "clap.jsonl.gz", corpus / "truth.jsonl", workdir / "pairs.jsonl")
        ctx.invoke(train_reward, pairs=pairs, output=reward_ckpt, manifest=str(manifests / "clap.jsonl.gz"),
                   mert_model=str(models / "mert"), epochs=30)
    else:
        click.echo(f"✓ {reward_ckpt} already trained")
    _banner("score reward")
    ctx.invoke(score_reward_cmd, manifest=manifests / "clap.jsonl.gz", checkpoint=str(reward_ckpt),
               mert_model=str(models / "mert"), output=manifests / "reward.jsonl.gz", overwrite=overwrite)
    # captioning runs on the transformers engine here (the demo's environment has no vLLM; `tox -e vllm`
    # tests the vLLM paths). Random tiny captioners write noise, which the output checks mostly refuse:
    # those cuts keep their metadata captions and are flagged.
    _banner("caption audio (tiny Qwen2-Audio, transformers engine)")
    ctx.invoke(caption, manifest=manifests / "reward.jsonl.gz", output=manifests / "verbose.jsonl.gz",
               stage="audio", engine="transformers", model=str(models / "qwen2_audio"), max_tokens=24, attempts=1,
               **_caption_defaults(), overwrite=overwrite)
    _banner("caption rewrite (tiny Qwen2, transformers engine)")
    ctx.invoke(caption, manifest=manifests / "verbose.jsonl.gz", output=manifests / "caption.jsonl.gz",
               stage="rewrite", engine="transformers", model=str(models / "qwen2"), max_tokens=24, attempts=2,
               **_caption_defaults(), overwrite=overwrite)
    _banner("score clap again (the final captions)")
    ctx.invoke(score_clap_cmd, manifest=manifests / "caption.jsonl.gz", model=str(models / "clap"),
               caption_field="caption", output=manifests / "rescored.jsonl.gz", overwrite=overwrite)
    _banner("filter (drop the bottom 10 % by CLAP)")
    ctx.invoke(filter_cmd, manifest=manifests / "rescored.jsonl.gz", output=manifests / "filter.jsonl.gz",
               overwrite=overwrite)
    _banner("select (top 10 % by z-blended reward + CLAP, 5× mixture)")
    ctx.invoke(select_cmd, manifest=manifests / "filter.jsonl.gz", output=manifests / "select.jsonl.gz",
               oversample=5, overwrite=overwrite)
    _banner("validate")
    stages = ("ingest", "segment", "clap", "reward", "verbose", "caption", "rescored", "filter", "select",
              "select.mixture")
    for name in stages:
        try:
            ctx.invoke(validate, manifest=manifests / f"{name}.jsonl.gz", stage="auto")
        except SystemExit as exc:
            raise click.ClickException(f"{name} manifest failed validation") from exc
    _banner("describe")
    ctx.invoke(describe, manifest=manifests / "reward.jsonl.gz", plot=workdir / "scores.png")
    _banner("report")
    ctx.invoke(report, manifests=tuple(manifests / f"{n}.jsonl.gz" for n in stages[:-1]), output=workdir / "report")
    _banner("export (Hugging Face dataset)")
    if overwrite or not (workdir / "dataset" / "README.md").is_file():
        ctx.invoke(export, manifest=manifests / "filter.jsonl.gz", output=workdir / "dataset", overwrite=True)
    else:
        click.echo(f"✓ {workdir / 'dataset'} already exported")
    _banner("train encode (mel latents, tiny T5, REPA targets)")
    ctx.invoke(encode, manifest=manifests / "filter.jsonl.gz", output=manifests / "encode.jsonl.gz",
               text_encoder=str(models / "t5"), clap_model=str(models / "clap"), repa="clap,muq",
               muq_model=str(models / "mert"), overwrite=overwrite)
    runs = workdir / "runs"
    done = sorted(runs.glob("*/checkpoints/*.pt")) if runs.is_dir() else []
    _banner(f"train fit (tiny, {train_steps} steps: Beta timesteps, reward conditioning, REPA)")
    if overwrite or not done:
        from curate.io import count_lines

        batch = min(8, count_lines(manifests / "encode.jsonl.gz"))
        ctx.invoke(fit, preset="tiny", config_path=None, manifest=str(manifests / "encode.jsonl.gz"), resume_dir=None,
                   overrides=(f"run_dir={runs}", f"steps={train_steps}", f"batch_size={batch}", "timesteps=beta",
                              f"ckpt_every={max(1, train_steps // 3)}",
                              "score_head=global_adaln", "repa=clap,muq",
                              f"val_manifest={manifests / 'encode.jsonl.gz'}", f"val_every={max(1, train_steps // 3)}"))
        done = sorted(runs.glob("*/checkpoints/*.pt"))
    else:
        click.echo(f"✓ already trained: {done[-1]}")
    _banner("train sample")
    prompts = workdir / "prompts.txt"
    prompts.write_text("A calm ambient piece with warm synth pads and piano\n"
                       "An energetic rock track with electric guitar, bass and drums at 130 BPM\n")
    ctx.invoke(sample, checkpoint=str(done[-1]), prompts=str(prompts), output=workdir / "samples", steps=25, cfg=4.0,
               score=5.0, no_score=False, negative_prompt="noise, distortion, low quality", prefix="high quality "
               "instrumental music, ", seconds=10.0, lufs=-16.5, demucs=None, demucs_passes=3, clap_model=None,
               seed=0, device="cpu")
    evaluate_checkpoints(ctx, workdir, manifests, models, {"early": done[0], "final": done[-1]})
    click.secho(f"\ndemo finished in {time.perf_counter() - start:.1f} s; everything is under {workdir}/",
                bold=True, fg="green")
    click.echo(f"  report: {workdir / 'report' / 'index.html'}\n  dataset: {workdir / 'dataset'} "
               f"(datasets.load_dataset on that folder)\n  training run: {done[-1].parent.parent} (loss.png, tb/)\n"
               f"  samples: {workdir / 'samples'}\n  evaluation: {workdir / 'eval' / 'compare'} (compare.md, "
               "compare.png)")


EVAL_PROMPTS = ("id,prompt\n"
                "ambient,A calm ambient piece with warm synth pads\n"
                "rock,An energetic rock track with electric guitar and drums\n"
                "piano,A slow classical piece for solo piano and strings\n"
                "electronic,Electronic dance music with a steady four on the floor beat\n")


def evaluate_checkpoints(ctx: click.Context, workdir: Path, manifests: Path, models: Path,
                         checkpoints: dict[str, Path]) -> None:
    """eval reference (the curated set) → eval generate/score per checkpoint → eval compare."""
    from evaluate.cli import compare_cmd, generate_cmd, reference_cmd, score_cmd

    folder = workdir / "eval"
    folder.mkdir(exist_ok=True)
    reference = folder / "reference.npz"
    _banner("eval reference (the curated segments, first 10 s)")
    if not reference.is_file():
        ctx.invoke(reference_cmd, source=manifests / "filter.jsonl.gz", output=reference, model=str(models / "clap"),
                   mert_model=str(models / "mert"), workers=0)
    else:
        click.echo(f"✓ {reference} already embedded")
    prompts = folder / "prompts.csv"
    prompts.write_text(EVAL_PROMPTS)
    runs = []
    for name, checkpoint in checkpoints.items():
        _banner(f"eval generate + score ({name}: {checkpoint.name})")
        run = folder / name
        ctx.invoke(generate_cmd, checkpoint=str(checkpoint), prompts=str(prompts), output=run, seeds_per_prompt=2,
                   seconds=4.0, resume=True)
        ctx.invoke(score_cmd, samples=run, reference=reference, reward_checkpoint=str(models / "reward.pt"),
                   mert_model=str(models / "mert"), workers=0, bootstrap=100)
        runs.append(run)
    _banner("eval compare (same prompts and seeds)")
    ctx.invoke(compare_cmd, runs=tuple(runs), names=",".join(checkpoints), output=folder / "compare", bootstrap=100)


def _caption_defaults() -> dict:
    """The caption command's remaining options at their defaults (ctx.invoke needs them named)."""
    return dict(base_url="", api_key_env="OPENAI_API_KEY", concurrency=1, timeout=60.0, retries=0, batch_size=64,
                temperature=0.7, top_p=0.95, seed=0, max_words=100, max_audio_seconds=30.0, system_template=None,
                user_template=None, max_model_len=2048, device="cpu", resume=False)


def _banner(name: str) -> None:
    click.secho(f"\n── {name} " + "─" * max(4, 66 - len(name)), fg="cyan")
