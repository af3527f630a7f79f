"""The `demo` group: make-corpus, make-models and run (the pipeline is in `pipeline.py`)."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_WORKDIR = Path("manifests") / "demo"


@click.group()
def demo() -> None:
    """The embedded demo: a synthetic corpus and the pipeline run on it."""


@demo.command("make-corpus", context_settings=dict(show_default=True))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--world", type=click.Choice(["scores", "synth"]), default="scores",
              help="scores: excerpts of works in music21's corpus played by General MIDI instruments; synth: the "
                   "procedural oscillator genres (a fast fixture; `demo run` still curates this one until its domain "
                   "models are retrained on the scores world).")
@click.option("--clips", type=click.IntRange(8), default=40, help="Number of clips (≥ 8 plants every defect).")
@click.option("--duration", type=click.FloatRange(1.0), default=30.0, help="Seconds per clip.")
@click.option("--seed", type=int, default=0, help="The corpus is a pure function of its options and the seed.")
@click.option("--collections", default=",".join(("bach", "palestrina", "oneill", "ryan", "aird")),
              help="Comma-separated music21 collections (scores world): bach, palestrina, oneill, ryan, aird "
                   "(public domain) and essen (non-commercial use only).")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="train",
              help="Which works (scores world): the test split's works are held out for evaluation prompts.")
def make_corpus(directory: Path, world: str, clips: int, duration: float, seed: int, collections: str,
                split: str) -> None:
    """Render or synthesize a small music corpus with captions, tags and planted defects into DIRECTORY."""
    from scoreaware.demo.pipeline import make_corpus as synthesize
    from scoreaware.demo.pipeline import make_score_corpus, show

    if world == "synth":
        show("make-corpus", synthesize(directory, clips=clips, duration=duration, seed=seed))
        return
    from scoreaware.demo.world.catalog import COLLECTIONS

    chosen = tuple(c.strip() for c in collections.split(",") if c.strip())
    unknown = [c for c in chosen if c not in COLLECTIONS]
    if unknown or not chosen:
        raise click.BadParameter(f"{(unknown or [collections])[0]!r}: choose from {', '.join(COLLECTIONS)}",
                                 param_hint="--collections")
    show("make-corpus", make_score_corpus(directory, clips=clips, duration=duration, seed=seed, collections=chosen,
                                          split=split))


@demo.command("train-judge", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for instrument.npz and JUDGE.json (the shipped one: "
                   "src/scoreaware/demo/default_models/judge).")
@click.option("--clips", type=click.IntRange(24), default=480, help="Training renders (judge seed 301, train works).")
@click.option("--eval-clips", type=click.IntRange(12), default=240,
              help="Renders the ceilings are measured on (seed 302, held-out works).")
@click.option("--json", "as_json", is_flag=True, help="Print JUDGE.json.")
def train_judge_cmd(output: Path, clips: int, eval_clips: int, as_json: bool) -> None:
    """Train the independent judge's instrument classifier and measure every estimator's ceiling on renders.

    The judge (tempo and key/mode by DSP, instrument by this classifier) is used only to evaluate:
    no curation, training or selection step imports it."""
    from scoreaware.cli.eval import emit, quiet_stdout
    from scoreaware.demo.world.judge import JudgeRecipe, describe_card, train_judge

    with quiet_stdout(as_json):
        card = train_judge(output, JudgeRecipe(clips=clips, eval_clips=eval_clips),
                           lambda m: click.echo(m, err=True))
    emit(as_json, card, "demo train-judge", [*describe_card(card), f"→ {output}/ (instrument.npz, JUDGE.json)"])


@demo.command("train-world-codec", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the codec (the shipped one: src/scoreaware/demo/default_models/world_codec).")
@click.option("--clips", type=click.IntRange(8), default=300, help="Training renders (seed 304, train works).")
@click.option("--steps", type=click.IntRange(1), default=3000, help="Training steps (batch 16 of 3 s crops).")
@click.option("--eval-clips", type=click.IntRange(12), default=120,
              help="Held-out renders the judge hears, originals against round trips.")
def train_world_codec_cmd(output: Path, clips: int, steps: int, eval_clips: int) -> None:
    """Train the realistic world's codec (the mel-vae recipe on a 160-mel front end that keeps pitch)
    and measure what the judge still hears in its reconstructions. About 45 minutes on 2 cores."""
    from dataclasses import replace

    from scoreaware.demo.domain.build import DEFAULT_MODELS
    from scoreaware.demo.world.codec import WorldCodec, build_world_codec, describe_card

    world = WorldCodec(clips=clips, recipe=replace(WorldCodec().recipe, steps=steps))
    card = build_world_codec(output, world, DEFAULT_MODELS / "judge", eval_clips, lambda m: click.echo(m, err=True))
    click.secho("\ndemo train-world-codec", bold=True)
    for line in [*describe_card(card), f"→ {output}/ (AutoencoderOobleck, mel_frontend.json, WORLD_CODEC.json)"]:
        click.echo(f"  {line}")


@demo.command("train-world-clap", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the CLAP (the shipped one: src/scoreaware/demo/default_models/world_clap).")
@click.option("--clips", type=click.IntRange(8), default=720, help="Training renders (seed 306, train works).")
@click.option("--epochs", type=click.IntRange(1), default=30, help="Passes over the renders and their round trips.")
@click.option("--eval-clips", type=click.IntRange(0), default=120,
              help="Held-out renders the card is measured on (seed 302; 0 skips the measurement).")
@click.option("--json", "as_json", is_flag=True, help="Print WORLD_CLAP.json.")
def train_world_clap_cmd(output: Path, clips: int, epochs: int, eval_clips: int, as_json: bool) -> None:
    """Train the realistic world's domain CLAP on its captions (a quarter of the clips also through the
    world codec's round trip) and measure zero-shot accuracy per attribute and the mismatched-caption
    AUROC on held-out works, through the scorer's own loader."""
    from dataclasses import replace

    from scoreaware.cli.eval import emit, quiet_stdout
    from scoreaware.demo.world.clap import WorldClap, build_world_clap, describe_card

    world = WorldClap(clips=clips, recipe=replace(WorldClap().recipe, epochs=epochs))
    with quiet_stdout(as_json):
        card = build_world_clap(output, world, eval_clips, lambda m: click.echo(m, err=True))
    emit(as_json, card, "demo train-world-clap", [*describe_card(card), f"→ {output}/ (ClapModel, WORLD_CLAP.json)"])


@demo.command("train-world-reward", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for reward.pt and WORLD_REWARD.json (the shipped one: "
                   "src/scoreaware/demo/default_models/world_reward).")
@click.option("--clap", "clap_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The world CLAP whose features the head reads [default: the shipped world_clap].")
@click.option("--clips", type=click.IntRange(8), default=480, help="Training renders (seed 307, train works).")
@click.option("--epochs", type=click.IntRange(1), default=60, help="Epochs of `train reward`.")
@click.option("--eval-clips", type=click.IntRange(0), default=120,
              help="Held-out renders the card is measured on (seed 302; 0 skips the measurement).")
@click.option("--json", "as_json", is_flag=True, help="Print WORLD_REWARD.json.")
def train_world_reward_cmd(output: Path, clap_dir: Path | None, clips: int, epochs: int, eval_clips: int,
                           as_json: bool) -> None:
    """Train the realistic world's reward head (clean beats degraded; a caption's own clip beats another
    instrument's) on the world CLAP's and MERT's features, and measure it on held-out works."""
    from scoreaware.cli.eval import emit, quiet_stdout
    from scoreaware.demo.domain.build import DEFAULT_MODELS
    from scoreaware.demo.world.reward import WorldReward, build_world_reward, describe_card

    clap_dir = clap_dir or DEFAULT_MODELS / "world_clap"
    if not (clap_dir / "config.json").is_file():
        raise click.BadParameter(f"{clap_dir} holds no CLAP (train one with `scoreaware demo train-world-clap`)",
                                 param_hint="--clap")
    world = WorldReward(clips=clips, epochs=epochs)
    with quiet_stdout(as_json):
        card = build_world_reward(output, clap_dir, DEFAULT_MODELS, world, eval_clips,
                                  lambda m: click.echo(m, err=True))
    emit(as_json, card, "demo train-world-reward",
         [*describe_card(card), f"→ {output}/ (reward.pt, WORLD_REWARD.json)"])


@demo.command("train-world-generator", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for generator.pt and WORLD_GENERATOR.json (the shipped one: "
                   "src/scoreaware/demo/default_models/world_generator).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where the corpus, its manifests and the training run go (~3 GB for 2,000 renders); an "
                   "interrupted build picks up where it stopped.")
@click.option("--clips", type=click.IntRange(8), default=2000, help="Training renders × 20 s (seed 7, train works).")
@click.option("--steps", type=click.IntRange(1), default=8000, help="Training steps (tiny preset, batch 16).")
@click.option("--eval-seeds", type=click.IntRange(0), default=2,
              help="Clips per evaluation prompt the card is measured on (48 prompts; 0 skips the measurement).")
@click.option("--json", "as_json", is_flag=True, help="Print WORLD_GENERATOR.json.")
def train_world_generator_cmd(output: Path, workdir: Path, clips: int, steps: int, eval_seeds: int,
                              as_json: bool) -> None:
    """Train the realistic world's base generator (the demo fine-tunes it on its curated segments) and
    measure what the independent judge hears in its clips of the 48 evaluation prompts."""
    from dataclasses import replace

    from scoreaware.cli.eval import emit, quiet_stdout
    from scoreaware.demo.domain.build import DEFAULT_MODELS
    from scoreaware.demo.world.generator import FILE, WorldGenerator, describe_card, t5_folder, train_world_generator
    from scoreaware.demo.world.generator_card import measure_generator, sampling_card, write_generator_card

    recipe = replace(WorldGenerator(), clips=clips, steps=steps)
    with quiet_stdout(as_json):
        log = lambda m: click.echo(m, err=True)  # noqa: E731
        card = train_world_generator(output, DEFAULT_MODELS, workdir, recipe, log)
        if eval_seeds:
            log(f"measuring: {eval_seeds} clips of each of the 48 evaluation prompts, heard by the judge")
            card["measured"] = measure_generator(output / FILE, t5_folder(workdir), DEFAULT_MODELS / "judge",
                                                 workdir / "card_samples", eval_seeds)
            card["sampling"] = sampling_card(eval_seeds)
        write_generator_card(output, card)
    emit(as_json, card, "demo train-world-generator",
         [*describe_card(card), f"→ {output}/ (generator.pt, WORLD_GENERATOR.json)"])


@demo.command("train-world-captioners", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for qwen2_audio/, qwen2/ and WORLD_CAPTIONERS.json (the shipped one: "
                   "src/scoreaware/demo/default_models/world_captioners).")
@click.option("--clips", type=click.IntRange(4), default=1440,
              help="Stage-1 training renders (seed 309, train works).")
@click.option("--quick", is_flag=True, help="Tiny recipes that test the command, not models worth shipping.")
@click.option("--eval-clips", type=click.IntRange(0), default=120,
              help="Held-out renders the card is measured on (seed 302; 0 skips the measurement).")
@click.option("--json", "as_json", is_flag=True, help="Print WORLD_CAPTIONERS.json.")
def train_world_captioners_cmd(output: Path, clips: int, quick: bool, eval_clips: int, as_json: bool) -> None:
    """Train the realistic world's two captioners (stage 1 hears a render and describes it; stage 2
    rewrites that into one line) and measure how often they name the right instrument and tempo."""
    from dataclasses import replace

    from scoreaware.cli.eval import emit, quiet_stdout
    from scoreaware.demo.world.captioners import WorldCaptioners, build_world_captioners, describe_card

    recipe = replace(WorldCaptioners().recipe, clips=clips)
    if quick:
        recipe = replace(recipe, audio_epochs=1, rewrite_examples=32, rewrite_epochs=1)
    with quiet_stdout(as_json):
        card = build_world_captioners(output, WorldCaptioners(recipe), eval_clips, lambda m: click.echo(m, err=True))
    emit(as_json, card, "demo train-world-captioners",
         [*describe_card(card), f"→ {output}/ (qwen2_audio, qwen2, WORLD_CAPTIONERS.json)"])


@demo.command("prompts", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The prompts CSV (id, prompt, instrument, tempo_band, mode, style, ...).")
@click.option("-n", "count", type=click.IntRange(12, 360), default=48, help="Distinct attribute combinations.")
@click.option("--seed", type=int, default=401, help="Seed of the combinations and of the held-out works.")
def prompts_cmd(output: Path, count: int, seed: int) -> None:
    """Write the evaluation prompt set: distinct instrument × tempo band × mode × style combinations,
    each tied to a held-out work in its mode (`eval generate` reads the CSV)."""
    from scoreaware.core.files import atomic_write_text
    from scoreaware.demo.world.prompts import evaluation_prompts, prompts_csv

    rows = evaluation_prompts(count, seed)
    atomic_write_text(output, prompts_csv(rows))
    click.secho("\ndemo prompts", bold=True)
    click.echo(f"  {len(rows)} prompts, every one a different combination, from {len({r['work_id'] for r in rows})} "
               f"held-out works → {output}")


@demo.command("make-models", context_settings=dict(show_default=True))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0)
def make_models(directory: Path, seed: int) -> None:
    """Build tiny random-init CLAP, MERT, T5, Qwen2-Audio and Qwen2 into DIRECTORY, saved like real ones."""
    from scoreaware.demo.tiny_models import (
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


@demo.command("train-models", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the models (the shipped ones: src/scoreaware/demo/default_models).")
@click.option("--only", default=None, help="Comma-separated parts to (re)train: mert, clap, reward, captioners, "
              "codec [default: all]. The reward needs the CLAP and MERT in the folder; the codec's targets need "
              "the CLAP and the reward.")
@click.option("--quick", is_flag=True, help="Tiny recipes that test the command, not models worth shipping.")
@click.option("--eval-clips", type=click.IntRange(14), default=140, help="Clips of the fresh corpus measured on.")
@click.option("--measure-only", is_flag=True, help="Train nothing: store the parts' weights as shipped (float16 "
              "where the recipe says so) and measure them again.")
@click.option("--json", "as_json", is_flag=True, help="Print MODELS.json (the recipes and measured targets).")
@click.pass_context
def train_models(ctx: click.Context, output: Path, only: str | None, quick: bool, eval_clips: int,
                 measure_only: bool, as_json: bool) -> None:
    """Train the embedded default's models on synthetic corpora and measure them on a fresh one.

    A random-init MERT stand-in; a domain CLAP (contrastive, on seed 101); the TuneJury reward
    head trained by `train reward` on clean/degraded and matched/mismatched pairs (seed 102);
    Qwen2-Audio and Qwen2 captioners (seed 103). The targets are measured on seed 201 and
    written with the recipes to OUTPUT/MODELS.json. The reward head, captioners and codec are stored
    in float16 (loaded in float32), and measured as stored. About an hour on 2 CPU cores.
    """
    import json

    from scoreaware.demo.domain.build import PARTS, build

    parts = tuple(p.strip() for p in only.split(",")) if only else PARTS
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r}: choose from {', '.join(PARTS)}", param_hint="--only")
    from scoreaware.cli.eval import quiet_stdout

    with quiet_stdout(as_json):  # with --json, stdout is only the record
        record = build(output, parts, quick, eval_clips, measure_only)
    if as_json:
        click.echo(json.dumps(record, indent=1))
        return
    from scoreaware.demo.domain.targets import describe_targets

    click.secho("\ndemo train-models", bold=True)
    for line in describe_targets(record):
        click.echo(f"  {line}")
    click.echo(f"  {record['total_mb']} MB in all → {output}/ (MODELS.json)")


@demo.command("prepare-seed-a", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the corpus, manifests, reference, prompts and the experiment file "
                   "[default: experiments/seed_a, or experiments/seed_a_world with --world].")
@click.option("--world", is_flag=True,
              help="On the realistic world: every arm fine-tunes the shipped base generator; the judge hears "
                   "the clips.")
@click.option("--clips", type=click.IntRange(8), default=None,
              help="Clips in the corpus, 30 s each [default: 60; 120 with --world].")
@click.option("--mismatched", type=click.FloatRange(0, 1), default=0.3,
              help="Share of readable clips captioned as another clip (of another genre in the synthetic world).")
@click.option("--train-steps", type=click.IntRange(1), default=600,
              help="Steps of every arm's training run (of fine-tuning the base, with --world).")
@click.option("--training-seeds", default="0,1,2,3,4,5,6,7,8,9",
              help="Comma-separated training seeds of every arm: 10, the replication unit of the primary contrasts "
                   "(`experiment plan` prints what they can detect; `experiment run --seeds` runs part at a time). "
                   "With --world, the arms outside the contrasts run the first 3.")
@click.option("--eval-seeds", type=click.IntRange(1), default=None,
              help="Clips per evaluation prompt [default: 6 of 7 genre prompts; 1 of 48 prompts with --world].")
def prepare_seed_a_cmd(output: Path | None, world: bool, clips: int | None, mismatched: float, train_steps: int,
                       training_seeds: str, eval_seeds: int | None) -> None:
    """Build seed A's experiment on the embedded default (a corpus with known wrong captions; arms:
    logit-normal, uniform, Beta t, filter + uniform, filter + Beta, oracle; primary contrasts Beta vs
    uniform and filter vs all) and write its experiment file for `experiment run`."""
    from scoreaware.cli.options import print_summary
    from scoreaware.demo.domain.build import default_models
    from scoreaware.demo.seed_a import prepare_seed_a
    from scoreaware.demo.world.seed_a import prepare_seed_a_world

    seeds = _seeds(training_seeds)
    if world:
        lines = prepare_seed_a_world(output or Path("experiments/seed_a_world"), default_models(), clips or 120,
                                     mismatched, train_steps, training_seeds=seeds,
                                     eval_seeds=eval_seeds or 1)
    else:
        lines = prepare_seed_a(output or Path("experiments/seed_a"), default_models(), clips or 60, mismatched,
                               train_steps, seeds, eval_seeds or 6)
    print_summary("demo prepare-seed-a", lines, {})


@demo.command("prepare-seed-b", context_settings=dict(show_default=True))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the corpus, manifests, reference, prompts and the experiment file "
                   "[default: experiments/seed_b, or experiments/seed_b_world with --world].")
@click.option("--world", is_flag=True,
              help="On the realistic world: each post-training step beside its control, the judge hears the clips.")
@click.option("--clips", type=click.IntRange(8), default=None,
              help="Clips in the corpus, 30 s each [default: 60; 120 with --world].")
@click.option("--train-steps", type=click.IntRange(1), default=600,
              help="Steps of the two training arms (of fine-tuning the base, with --world).")
@click.option("--post-steps", type=click.IntRange(1), default=100,
              help="Fine-tuning steps of expert iteration and of CRPO.")
@click.option("--training-seeds", default=None,
              help="Comma-separated training seeds of every arm [default: 0,1; 0,…,9 with --world].")
@click.option("--eval-seeds", type=click.IntRange(1), default=None,
              help="Clips per evaluation prompt [default: 6 of 7 genre prompts; 1 of 48 prompts with --world].")
def prepare_seed_b_cmd(output: Path | None, world: bool, clips: int | None, train_steps: int, post_steps: int,
                       training_seeds: str | None, eval_seeds: int | None) -> None:
    """Build seed B's post-training experiment on the embedded default and write its experiment file
    for `experiment run`: the chain baseline → score-conditioned → expert iteration → cross-load →
    CRPO, or with --world each step beside its control (random selection, random pairs)."""
    from scoreaware.cli.options import print_summary
    from scoreaware.demo.domain.build import default_models
    from scoreaware.demo.seed_b import prepare_seed_b
    from scoreaware.demo.world.seed_b import prepare_seed_b_world

    if world:
        lines = prepare_seed_b_world(output or Path("experiments/seed_b_world"), default_models(), clips or 120,
                                     train_steps, post_steps=post_steps,
                                     training_seeds=_seeds(training_seeds or "0,1,2,3,4,5,6,7,8,9"),
                                     eval_seeds=eval_seeds or 1)
    else:
        lines = prepare_seed_b(output or Path("experiments/seed_b"), default_models(), clips or 60, train_steps,
                               post_steps, _seeds(training_seeds or "0,1"), eval_seeds or 6)
    print_summary("demo prepare-seed-b", lines, {})


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected integers like 0,1,2, got {text!r}", param_hint="--training-seeds") \
            from None


@demo.command("run", context_settings=dict(show_default=True))
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORKDIR,
              help="Where the corpus, manifests, runs and plots go.")
@click.option("--clips", type=click.IntRange(8), default=None,
              help="Clips in the corpus (30 s: 3 segments each) [default: 40; 48 with --world].")
@click.option("--duration", type=click.FloatRange(1.0), default=30.0, help="Seconds per clip.")
@click.option("--train-steps", type=click.IntRange(1), default=None,
              help="Steps of each tiny training run (baseline and score-aware), batch 16; ~4 steps/s on 2 cores "
                   "(docs/genre_vs_training.png: genre heard against training minutes); with --world, steps of the "
                   "fine-tune of the shipped base generator [default: 700; 400 with --world].")
@click.option("--post-steps", type=click.IntRange(1), default=100,
              help="Steps of the expert-iteration fine-tune and of CRPO.")
@click.option("--overwrite", is_flag=True, help="Redo every step, corpus included.")
@click.option("--world", is_flag=True,
              help="The realistic world instead (music21 works rendered with General MIDI instruments): curated "
                   "by its own CLAP, reward and captioners, then its shipped base generator fine-tuned on the "
                   "curated segments and judged on 48 prompts (docs/world.md).")
@click.pass_context
def run(ctx: click.Context, workdir: Path, clips: int, duration: float, train_steps: int, post_steps: int,
        overwrite: bool, world: bool) -> None:
    """Run the whole pipeline on the embedded synthetic corpus and print what happened; with --world,
    curate the realistic world's corpus with its own models, check it against its truth, fine-tune the
    world's base generator on it and let the independent judge hear the clips."""
    import json

    from scoreaware.demo.domain.build import default_models
    from scoreaware.demo.pipeline import DemoSettings, curation, evaluation, post_training, training, world_generation
    from scoreaware.demo.timeline import Timeline

    timeline = Timeline()
    clips = clips or (48 if world else 40)  # the world's: at least 100 segments for its figures after quarantine
    train_steps = train_steps or (400 if world else 700)
    settings = DemoSettings(workdir, clips, duration, train_steps, post_steps, overwrite, default_models(), world)
    curation(timeline, settings)
    if world:
        world_generation(timeline, settings)
    else:
        checkpoints = training(timeline, settings)
        checkpoints |= post_training(timeline, settings, checkpoints["score_sft"])
        evaluation(timeline, settings, checkpoints)
    (workdir / "timing.json").write_text(json.dumps(timeline.as_dict(), indent=1) + "\n")
    click.secho(f"\ndemo finished in {timeline.total:.1f} s; everything is under {workdir}/", bold=True, fg="green")
    click.echo("  where the time went:")
    for line in timeline.table():
        click.echo(f"    {line}")
    if world:
        click.echo(f"  report: {workdir / 'report' / 'index.html'}\n  dataset: {workdir / 'dataset'}\n"
                   f"  against the truth: {workdir / 'truth.json'}\n  fine-tuned generator: {workdir / 'runs'}\n"
                   f"  adherence (judge): {workdir / 'eval' / 'adherence.json'}\n"
                   f"  listening page: {workdir / 'report' / 'listen' / 'index.html'}")
        return
    click.echo(f"  report: {workdir / 'report' / 'index.html'}\n  dataset: {workdir / 'dataset'} "
               f"(datasets.load_dataset on that folder)\n  training runs: {workdir / 'runs'} (loss.png, tb/)\n"
               f"  post-training: {workdir / 'post'} (expert iteration, cross-load, CRPO)\n"
               f"  samples: {workdir / 'samples'}\n  evaluation: {workdir / 'eval' / 'compare'} (compare.md, "
               "compare.png)")
