"""The demo pipeline: the same click commands a user types, in order, on the synthetic corpus.

curation: make-corpus → ingest → segment → score clap (metadata captions) → filter (what trusting
the metadata would remove) → score reward → caption audio → caption rewrite → score clap (final
captions) → filter → select → validate → describe → report (split by the ground truth) → export.
training: train encode → train fit twice (a baseline: no score head, logit-normal timesteps; the
score-aware run: Beta timesteps, reward conditioning, REPA) → train sample.
post-training: expert iteration (one round) → cross-load (v1 → v2) → CRPO.
evaluation: eval reference → eval generate + eval score per checkpoint → eval compare (the table
baseline → score-conditioned → EI → cross-load → CRPO on the same prompts and seeds), and the
genre the domain CLAP hears in each checkpoint's clips.

The models are the embedded default (`src/scoreaware/demo/default_models`: a domain CLAP, the tiny
MERT, a domain reward and two captioners trained on other seeds of the same synthetic music,
see `demo train-models`); only the T5 text encoder of the generator is a random stand-in. Each
step is skipped when its output is already complete, so a second run is quick and an
interrupted one picks up where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from scoreaware.demo.timeline import Timeline

PROMPTS = ("A calm ambient piece with warm synth pads and piano\n"
           "An energetic rock track with electric guitar, bass and drums at 130 BPM\n")

# one prompt per genre: the table's prompts, and the genre the domain CLAP should hear
EVAL_PROMPTS = ("id,prompt\n"
                'rock,"An energetic rock track with guitar, bass and drums"\n'
                "electronic,An electronic dance track with a lead synthesizer and a four on the floor beat\n"
                "ambient,A calm ambient piece with warm synth pads and piano\n"
                'jazz,"A happy jazz tune with piano, walking bass and a swinging ride cymbal"\n'
                "classical,A melancholic classical piece with strings and piano\n"
                "folk,A happy folk song with acoustic guitar and light percussion\n"
                'hiphop,"A laid-back hiphop beat with piano, bass and boom bap drums"\n')

# The score the demo's clips are generated at (z-units of the training reward): about the top
# decile of the demo's training segments (z 1.0; the largest is 1.3). The published s = 5 lies far
# past anything the tiny model saw, and its clips were heard as the right genre 0.24 of the time
# against 0.38–0.52 at s = 0…2 or without a score (21 clips, README "What the demo then shows").
SAMPLE_SCORE = 1.0

# candidate prompts of expert iteration and CRPO: not the evaluation prompts (the guard and the
# table must measure prompts the post-training did not select on)
POST_PROMPTS = ("A dark rock song with electric guitars and drums\n"
                "A sad electronic track with synth pads and a driving beat\n"
                "A slow ambient soundscape with pads\n"
                "Melancholic jazz with piano and a ride cymbal\n"
                "An uplifting classical composition for strings\n"
                "A calm acoustic folk tune with guitar\n"
                "A dark hip hop beat with piano and drums\n")


@dataclass(frozen=True)
class DemoSettings:
    workdir: Path
    clips: int
    duration: float
    train_steps: int
    post_steps: int
    overwrite: bool
    models: Path  # the embedded default (clap, mert, reward.pt, qwen2_audio, qwen2)

    @property
    def clap(self) -> str:
        return str(self.models / "clap")

    @property
    def mert(self) -> str:
        return str(self.models / "mert")

    @property
    def reward(self) -> Path:
        return self.models / "reward.pt"

    @property
    def t5(self) -> Path:
        return self.workdir / "models" / "t5"

    def manifest(self, name: str) -> Path:
        return self.workdir / f"{name}.jsonl.gz"


def curation(ctx: click.Context, timeline: Timeline, s: DemoSettings) -> None:
    from scoreaware.cli.curate.caption import caption
    from scoreaware.cli.curate.hub import export
    from scoreaware.cli.curate.ingest import ingest
    from scoreaware.cli.curate.inspect import describe, report, validate
    from scoreaware.cli.curate.score import score_clap_cmd, score_reward_cmd
    from scoreaware.cli.curate.segment import segment
    from scoreaware.cli.curate.select import filter_cmd, select_cmd
    from scoreaware.cli.demo import describe_targets, make_corpus
    from scoreaware.demo.truth import Truth

    corpus, m = s.workdir / "corpus", s.manifest
    with timeline.step("make-corpus"):
        if s.overwrite or not (corpus / "truth.jsonl").is_file():
            ctx.invoke(make_corpus, directory=corpus, clips=s.clips, duration=s.duration, seed=0)
        else:
            click.echo(f"✓ corpus already in {corpus}")
    meta = corpus / "metadata"
    with timeline.step("ingest"):
        ctx.invoke(ingest, audio_dir=corpus / "audio", output=m("ingest"), overwrite=s.overwrite,
                   metadata_files=(meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv"))
    with timeline.step("segment"):
        ctx.invoke(segment, manifest=m("ingest"), output=m("segment"), overwrite=s.overwrite)
    with timeline.step("embedded models (trained on other seeds of the same synthetic music)", "models"):
        import json

        record = json.loads((s.models / "MODELS.json").read_text())
        for line in describe_targets(record):
            click.echo(f"  {line}")
        click.echo(f"  {s.models} ({record['total_mb']} MB; rebuilt by `{record['command']}`)")
        if not (s.t5 / "config.json").is_file():
            from scoreaware.demo.tiny_models import make_tiny_t5

            make_tiny_t5(s.t5, seed=0)
        click.echo(f"  the generator's T5 text encoder is a random stand-in: {s.t5}")
    with timeline.step("score clap (domain CLAP, the metadata captions)", "score clap"):
        ctx.invoke(score_clap_cmd, manifest=m("segment"), model=s.clap, output=m("clap"), overwrite=s.overwrite)
    with timeline.step("filter the metadata captions (what trusting them would keep)", "filter + select"):
        ctx.invoke(filter_cmd, manifest=m("clap"), output=m("filter_metadata"), overwrite=s.overwrite)
    with timeline.step("score reward (domain reward: CLAP audio + caption text + MERT)", "score reward"):
        ctx.invoke(score_reward_cmd, manifest=m("clap"), checkpoint=str(s.reward), mert_model=s.mert,
                   output=m("reward"), overwrite=s.overwrite)
    # captioning runs on the transformers engine here (the demo's environment has no vLLM; `tox -e vllm`
    # runs the same models through vLLM)
    with timeline.step("caption audio (domain Qwen2-Audio, transformers engine)", "caption"):
        ctx.invoke(caption, manifest=m("reward"), output=m("verbose"), stage="audio", engine="transformers",
                   model=str(s.models / "qwen2_audio"), max_tokens=96, attempts=2, overwrite=s.overwrite)
    with timeline.step("caption rewrite (domain Qwen2, transformers engine)", "caption"):
        ctx.invoke(caption, manifest=m("verbose"), output=m("caption"), stage="rewrite", engine="transformers",
                   model=str(s.models / "qwen2"), max_tokens=64, attempts=2, overwrite=s.overwrite)
    with timeline.step("score clap again (the final captions)", "score clap"):
        ctx.invoke(score_clap_cmd, manifest=m("caption"), model=s.clap, caption_field="caption",
                   output=m("rescored"), overwrite=s.overwrite)
    with timeline.step("filter (drop the bottom 10 % by CLAP)", "filter + select"):
        ctx.invoke(filter_cmd, manifest=m("rescored"), output=m("filter"), overwrite=s.overwrite)
    with timeline.step("select (top 10 % by z-blended reward + CLAP, 5× mixture)", "filter + select"):
        ctx.invoke(select_cmd, manifest=m("filter"), output=m("select"), oversample=5, overwrite=s.overwrite)
    stages = ("ingest", "segment", "clap", "filter_metadata", "reward", "verbose", "caption", "rescored", "filter",
              "select", "select.mixture")
    with timeline.step("validate", "validate + describe + report"):
        for name in stages:
            try:
                ctx.invoke(validate, manifest=m(name), stage="auto")
            except SystemExit as exc:
                raise click.ClickException(f"{name} manifest failed validation") from exc
    with timeline.step("describe", "validate + describe + report"):
        ctx.invoke(describe, manifest=m("reward"), plot=s.workdir / "scores.png")
    truth = Truth.load(corpus / "truth.jsonl")
    with timeline.step("report (histograms split by the planted truth)", "validate + describe + report"):
        labels = truth.write_labels(s.workdir / "labels.jsonl")
        ctx.invoke(report, manifests=tuple(m(n) for n in stages if n not in ("filter_metadata", "select.mixture")),
                   output=s.workdir / "report", labels=labels)
    with timeline.step("against the truth", "validate + describe + report"):
        show_truth(truth, s)
    with timeline.step("export (Hugging Face dataset)", "export"):
        if s.overwrite or not (s.workdir / "dataset" / "README.md").is_file():
            ctx.invoke(export, manifest=m("filter"), output=s.workdir / "dataset", overwrite=True)
        else:
            click.echo(f"✓ {s.workdir / 'dataset'} already exported")


def show_truth(truth, s: DemoSettings) -> dict:
    """Print (and write truth.json) how the curation did against the corpus's ground truth."""
    import json

    from scoreaware.demo import truth as check

    m = s.manifest
    found = {
        "filter_metadata": check.filtering(truth, m("clap"), s.workdir / "filter_metadata.rejected.jsonl.gz"),
        "filter_final": check.filtering(truth, m("rescored"), s.workdir / "filter.rejected.jsonl.gz"),
        "captions": check.captions_fixed(truth, m("caption")),
        "beta_t_metadata": check.beta_times(truth, m("clap"), m("clap")),
        "beta_t_final": check.beta_times(truth, m("rescored"), m("filter")),
        "caption_examples": check.caption_examples(m("caption")),
    }
    (s.workdir / "truth.json").write_text(json.dumps(found, indent=1) + "\n")

    def pr(x: dict) -> str:
        if not x["removed"]:
            return "removed nothing"
        recall = f"{x['recall']:.2f}" if x["recall"] is not None else "—"
        return f"precision {x['precision']:.2f}, recall {recall} ({x['hit']} of {x['removed']} removed)"

    for key, name in (("filter_metadata", "metadata captions"), ("filter_final", "final captions")):
        f = found[key]
        click.echo(f"  filter on the {name}: {f['segments']} segments; against the planted mismatches "
                   f"{pr(f['mismatched'])}; against mismatches or degradations {pr(f['mismatched_or_degraded'])}")
    c = found["captions"]
    named = c["final_caption_names_the_genre"]
    click.echo(f"  captioners: {c['fixed']} of {c['mismatched_segments']} segments with another clip's metadata "
               f"caption now carry their own genre; final captions name the right genre for "
               f"{'—' if named is None else f'{100 * named:.0f} %'} of {c['segments']} segments")
    for key, name in (("beta_t_metadata", "metadata"), ("beta_t_final", "final")):
        b = found[key]
        click.echo(f"  Beta schedule on the {name} captions: mean E[t] matched {_fmt(b['matched']['mean_t'])} "
                   f"({b['matched']['segments']}), mismatched {_fmt(b['mismatched']['mean_t'])} "
                   f"({b['mismatched']['segments']}) — t = 1 is noise")
    for row in found["caption_examples"]:
        click.echo(f"  {row['id']}:\n    metadata: {row['metadata']}\n    stage 1:  {row['verbose']}\n"
                   f"    final:    {row['final']}")
    click.echo(f"  → {s.workdir / 'truth.json'}, {s.workdir / 'report' / 'index.html'} (by label)")
    return found


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def training(ctx: click.Context, timeline: Timeline, s: DemoSettings) -> dict[str, Path]:
    """Encode, then the baseline and the score-aware run; {'baseline': ckpt, 'score_sft': ckpt}."""
    from scoreaware.cli.train import encode, sample
    from scoreaware.core.files import count_lines
    from scoreaware.posttrain.steps import fit_or_resume

    m = s.manifest
    with timeline.step("train encode (mel latents, tiny T5, REPA targets)"):
        ctx.invoke(encode, manifest=m("filter"), output=m("encode"), text_encoder=str(s.t5), clap_model=s.clap,
                   repa="clap,muq", muq_model=s.mert, overwrite=s.overwrite)
    # batch 16 and a cosine decay to 0: with batch 8 at a constant 2e-3 (the tiny preset) the
    # samples stayed noise-like however long it trained (README, "what the generator learns")
    batch = min(16, count_lines(m("encode")))
    common = (f"manifest={m('encode')}", f"steps={s.train_steps}", f"batch_size={batch}", "lr=1e-3",
              "lr_schedule=cosine",
              f"ckpt_every={max(1, s.train_steps // 3)}", f"val_manifest={m('encode')}",
              f"val_every={s.train_steps}")
    runs = {}
    with timeline.step(f"train fit: baseline (tiny, {s.train_steps} steps: no score head, logit-normal t)",
                       "train fit"):
        runs["baseline"] = fit_or_resume(ctx, s.workdir / "runs" / "baseline", (
            *common, f"run_dir={s.workdir / 'runs' / 'baseline'}", "timesteps=logit_normal", "score_head=none"),
            preset="tiny")
    with timeline.step(f"train fit: score-aware (tiny, {s.train_steps} steps: Beta t, reward conditioning, REPA)",
                       "train fit"):
        runs["score_sft"] = fit_or_resume(ctx, s.workdir / "runs" / "score", (
            *common, f"run_dir={s.workdir / 'runs' / 'score'}", "timesteps=beta", "score_head=global_adaln",
            "repa=clap,muq"), preset="tiny")
    with timeline.step("train sample"):
        prompts = s.workdir / "prompts.txt"
        prompts.write_text(PROMPTS)
        ctx.invoke(sample, checkpoint=str(runs["score_sft"]), prompts=str(prompts), output=s.workdir / "samples",
                   steps=25, cfg=4.0, score=SAMPLE_SCORE, seconds=10.0, seed=0)
    return runs


def post_training(ctx: click.Context, timeline: Timeline, s: DemoSettings, parent: Path) -> dict[str, Path]:
    """One expert-iteration round from the score-aware run, cross-load to v2, a short CRPO pass.

    The published recipes fine-tune for 30k (EI) and 5k (CRPO) steps at 1e-5 and 1e-6; the demo's
    tiny model takes `post_steps` steps at the learning rates a few hundred tiny steps need."""
    from scoreaware.cli.train import cross_load_cmd
    from scoreaware.posttrain.crpo import crpo
    from scoreaware.posttrain.expert_iteration import expert_iteration

    post = s.workdir / "post"
    post.mkdir(parents=True, exist_ok=True)
    prompts = post / "prompts.txt"
    prompts.write_text(POST_PROMPTS)
    out = {}
    with timeline.step(f"train expert-iteration (1 round: 4 candidates × 7 prompts, top 25 %, {s.post_steps} steps)",
                       "expert iteration"):
        ctx.invoke(expert_iteration, checkpoint=parent, prompts=prompts, output=post / "ei",
                   reward=str(s.reward), mert_model=s.mert, rounds=1, k=4, seconds=4.0, top=0.25,
                   oversample=5, ft_steps=s.post_steps, lr=5e-4)
        out["ei"] = Path(json.loads((post / "ei" / "summary.json").read_text())["final"])
    with timeline.step("train cross-load (v1 GlobalAdaLN → v2 InputAdd)", "cross-load"):
        crossloaded = post / "crossload.pt"
        if s.overwrite or not crossloaded.is_file():
            ctx.invoke(cross_load_cmd, checkpoint=str(out["ei"]), score_head="input_add", output=crossloaded)
        else:
            click.echo(f"✓ {crossloaded} already written")
        out["crossload"] = crossloaded
    with timeline.step(f"train crpo (4 candidates × 7 prompts, best vs worst by CLAP, {s.post_steps} steps)",
                       "crpo"):
        ctx.invoke(crpo, checkpoint=crossloaded, prompts=prompts, output=post / "crpo", n=4, seconds=4.0,
                   train_steps=s.post_steps, lr=1e-4, warmup=0, batch_size=4)
        out["crpo"] = Path(json.loads((post / "crpo" / "summary.json").read_text())["checkpoint"])
    return out


def evaluation(ctx: click.Context, timeline: Timeline, s: DemoSettings, checkpoints: dict[str, Path],
               seconds: float = 6.0) -> dict:
    """eval reference (the curated set) → eval generate/score per checkpoint → eval compare, and
    the genre the domain CLAP hears in each checkpoint's clips; {checkpoint name: genre result}."""
    import json

    from scoreaware.cli.eval import compare_cmd, generate_cmd, reference_cmd, score_cmd
    from scoreaware.demo.truth import sample_genres

    folder = s.workdir / "eval"
    folder.mkdir(exist_ok=True)
    reference = folder / "reference.npz"
    with timeline.step("eval reference (the curated segments, first 10 s)", "evaluation"):
        if not reference.is_file():
            ctx.invoke(reference_cmd, source=s.manifest("filter"), output=reference, model=s.clap,
                       mert_model=s.mert, workers=0)
        else:
            click.echo(f"✓ {reference} already embedded")
    prompts = folder / "prompts.csv"
    prompts.write_text(EVAL_PROMPTS)
    runs, genres = [], {}
    for name, checkpoint in checkpoints.items():
        with timeline.step(f"eval generate + score ({name}: {checkpoint.name})", "evaluation"):
            run = folder / name
            ctx.invoke(generate_cmd, checkpoint=str(checkpoint), prompts=str(prompts), output=run,
                       seeds_per_prompt=3, seconds=seconds, score=SAMPLE_SCORE, resume=True)
            ctx.invoke(score_cmd, samples=run, reference=reference, reward_checkpoint=str(s.reward),
                       mert_model=s.mert, workers=0, bootstrap=100)
            genres[name] = sample_genres(run, s.clap)
            runs.append(run)
    with timeline.step("eval compare (same prompts and seeds)", "evaluation"):
        ctx.invoke(compare_cmd, runs=tuple(runs), names=",".join(checkpoints), output=folder / "compare",
                   bootstrap=100)
        (folder / "genres.json").write_text(json.dumps(genres, indent=1) + "\n")
        clips = max(g["clips"] for g in genres.values())
        click.echo(f"  genre the domain CLAP hears in the {clips} clips of the 7 genre prompts (target ≥ 0.5, "
                   "chance 0.14):  " + ",  ".join(f"{name} {g['accuracy']:.2f}" for name, g in genres.items()
                                                 if g["accuracy"] is not None))
    return genres
