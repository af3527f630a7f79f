"""Seed A's claim as an experiment on the embedded default: does filtering the bottom CLAP decile,
or the score-aware Beta schedule, help when a known share of captions is wrong?

`prepare_seed_a(folder)` builds what `experiment run` needs and writes ``seed_a.toml``:

* a synthetic corpus (seed 0) with `mismatched` of its readable clips captioned as a clip of
  another genre (the truth is in ``corpus/truth.jsonl``); ingest → segment → `score clap`
  against the *metadata* captions (what the arms filter and the Beta schedule read) →
  `train encode` on the shipped mel-vae codec, with no REPA target (no arm changes it);
* the oracle's training set: the encoded manifest without the segments of mismatched clips;
* a held-out reference: the segments of another corpus (seed 1), embedded by the domain CLAP;
* the 7 genre prompts of the demo's evaluation.

The arms, one change each from (a): (a) all data, logit-normal t; (b) bottom CLAP decile
filtered; (c) Beta t (λ = 1); (d) filter + Beta, the paper's recipe; (e) oracle: matched
captions only, logit-normal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import StageOutput
from scoreaware.curate.stages.ingest import IngestConfig, run_ingest
from scoreaware.curate.stages.score_clap import ClapScoreConfig, run_score_clap
from scoreaware.curate.stages.segment import run_segment
from scoreaware.demo.pipeline import EVAL_PROMPTS
from scoreaware.demo.synth import GENRES, make_corpus
from scoreaware.demo.tiny_models import make_tiny_t5
from scoreaware.demo.truth import Truth
from scoreaware.evaluate.reference import build_reference
from scoreaware.posttrain.steps import write_encode_info_like
from scoreaware.schemas.validation import validate_manifest
from scoreaware.train.encode import run_encode

# the demo's training recipe without REPA (no arm changes it); no score head unless an arm adds one
BASE = """[base]
preset = "tiny"

[base.set]
steps = {steps}
batch_size = 16
lr = 1e-3
lr_schedule = "cosine"
max_frames = 216
ckpt_every = {ckpt}
timesteps = "logit_normal"
score_head = "none"
"""

SPEC = """# Seed A's claim on the embedded default (written by `scoreaware demo prepare-seed-a`):
# {mismatched:.0%} of the corpus's readable clips carry another genre's caption. Every arm changes
# one thing from "all_logit_normal"; the table compares each with it, the prompt as the unit.
name = "seed_a"
manifest = "encode.jsonl.gz"
training_seeds = {seeds}

""" + BASE + """
[evaluate]
prompts = "prompts.csv"
reference = "reference.npz"
held_out = "held_out_encode.jsonl.gz"  # clean held-out segments: the validation flow loss per t bin
seeds = {eval_seeds}
steps = 25
cfg = 2.0
seconds = 10.0
labels = {labels}  # the prompt ids: genre heard = the domain CLAP's nearest "{{label}} music"
label_clap = "{clap}"

[[arm]]
name = "all_logit_normal"  # today's baseline: every segment, logit-normal t

[[arm]]
name = "all_uniform"  # the base distribution the Beta schedule reduces to for well-aligned segments (λ = 0)
set = {{ timesteps = "uniform" }}

[[arm]]
name = "all_beta"  # score-aware: t ~ Beta(1 + λ(1 − S̃), 1), λ = 1
set = {{ timesteps = "beta" }}

[[arm]]
name = "filter_uniform"
filter = {{ clap_percentile = 10 }}
set = {{ timesteps = "uniform" }}
combines = ["filter", "timesteps"]

[[arm]]
name = "filter_beta"  # the paper's recipe
filter = {{ clap_percentile = 10 }}
set = {{ timesteps = "beta" }}
combines = ["filter", "timesteps"]

[[arm]]
name = "oracle_logit_normal"
manifest = "oracle.jsonl.gz"

# Pre-registered: the score-aware claim is Beta against uniform (one change: the score-awareness),
# not against logit-normal (which would also swap the base distribution); the filter claim is
# filter + uniform against all + uniform. The margin is the smallest difference in the share of
# clips heard as their label that matters here (one clip in 20).
[[contrast]]
name = "score-aware"
arms = ["all_beta", "all_uniform"]
metric = "label"
margin = 0.05

[[contrast]]
name = "filter"
arms = ["filter_uniform", "all_uniform"]
metric = "label"
margin = 0.05

[[contrast]]
name = "score-aware (CLAP)"
arms = ["all_beta", "all_uniform"]
metric = "clap_score"
margin = 0.02
primary = false

[[contrast]]
name = "filter (CLAP)"
arms = ["filter_uniform", "all_uniform"]
metric = "clap_score"
margin = 0.02
primary = false
"""


def matched_only(encoded: Path, truth: Truth, out: Path) -> Path:
    """The encoded manifest without the segments of clips whose caption is another clip's."""
    stage = StageOutput(out, stage="oracle", schema_stage="ingest", input_manifest=encoded, resume=True,
                        config={"source": str(encoded)}, validator=validate_manifest)
    if stage.check() != "skip":
        with stage:
            for cut in read_cuts(encoded):
                if not truth.mismatched(cut.recording_id):
                    stage.write(cut)
        write_encode_info_like(encoded, out)
        stage.finalize(options={"kept": "segments of clips whose metadata caption matches the audio"})
    return out


def held_out_reference(folder: Path, clap: str) -> Path:
    """``folder/reference.npz``: the CLAP embeddings of another corpus's segments (seed 1, 28 clips)."""
    held_out, ingested, segments = folder / "held_out", folder / "held_out_ingest.jsonl.gz", \
        folder / "held_out_segment.jsonl.gz"
    if not (held_out / "truth.jsonl").is_file():
        make_corpus(held_out, clips=28, duration=30.0, seed=1, workers=os.cpu_count() or 1)
    run_ingest(held_out / "audio", ingested, resume=True)
    run_segment(ingested, segments, resume=True)
    reference = folder / "reference.npz"
    if not reference.is_file():
        build_reference(segments, reference, model=clap, workers=0)
    return reference


def held_out_validation(folder: Path, models: Path, t5: Path) -> Path:
    """``folder/held_out_encode.jsonl.gz``: the held-out corpus's segments with their (matching)
    captions, encoded as the training set was, for the validation flow loss of every arm."""
    held_out = folder / "held_out"
    ingested, segments = folder / "held_out_val_ingest.jsonl.gz", folder / "held_out_val_segment.jsonl.gz"
    meta = held_out / "metadata"
    run_ingest(held_out / "audio", ingested, IngestConfig(
        metadata_files=(meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv")),
               resume=True)
    run_segment(ingested, segments, resume=True)
    encoded = folder / "held_out_encode.jsonl.gz"
    run_encode(segments, encoded, codec="mel-vae", codec_model=str(models / "codec"), text_encoder=str(t5),
               clap_model=str(models / "clap"), repa="", resume=True)
    return encoded


def prepare_seed_a(folder: Path, models: Path, clips: int = 60, mismatched: float = 0.3, steps: int = 600,
                   training_seeds: tuple[int, ...] = (0, 1, 2), eval_seeds: int = 6) -> list[str]:
    """Build seed A's inputs in `folder` and write ``seed_a.toml``; the summary lines."""
    folder.mkdir(parents=True, exist_ok=True)
    clap, m = str(models / "clap"), (lambda name: folder / f"{name}.jsonl.gz")
    corpus = folder / "corpus"
    if not (corpus / "truth.jsonl").is_file():
        make_corpus(corpus, clips=clips, duration=30.0, seed=0, mismatched=mismatched, workers=os.cpu_count() or 1)
    meta = corpus / "metadata"
    run_ingest(corpus / "audio", m("ingest"), IngestConfig(
        metadata_files=(meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv")),
               resume=True)
    run_segment(m("ingest"), m("segment"), resume=True)
    run_score_clap(m("segment"), m("clap"), ClapScoreConfig(model=clap), resume=True)
    t5 = folder / "models" / "t5"
    if not (t5 / "config.json").is_file():
        make_tiny_t5(t5, seed=0)
    run_encode(m("clap"), m("encode"), codec="mel-vae", codec_model=str(models / "codec"), text_encoder=str(t5),
               clap_model=clap, repa="", resume=True)
    truth = Truth.load(corpus / "truth.jsonl")
    matched_only(m("encode"), truth, m("oracle"))
    reference = held_out_reference(folder, clap)
    held_out_validation(folder, models, t5)
    (folder / "prompts.csv").write_text(EVAL_PROMPTS)
    spec = folder / "seed_a.toml"
    spec.write_text(SPEC.format(mismatched=mismatched, seeds=list(training_seeds), steps=steps,
                                ckpt=max(1, steps // 3), eval_seeds=eval_seeds,
                                labels=json.dumps(list(GENRES)), clap=clap))
    wrong = sum(truth.mismatched(rid) for rid in truth.rows)
    return [f"corpus: {clips} clips, {wrong} with another genre's caption (truth: {corpus / 'truth.jsonl'})",
            f"training sets: {m('encode')} ({sum(1 for _ in read_cuts(m('encode')))} segments), oracle "
            f"{m('oracle')} ({sum(1 for _ in read_cuts(m('oracle')))} segments)",
            f"reference: {reference} (a held-out corpus, seed 1)", f"→ {spec}",
            f"run it: scoreaware experiment run {spec} -o {folder / 'results'}"]
