"""The world's base generator: the tiny FluxAudio trained on 2,000 renders of train works.

Why it is shipped: on this machine the generator needs ~17 minutes of training on 4,000 segments
before it hears the prompted instrument (docs/world.md: 0.48 with the world CLAP's text, from
scratch), more than the demo's 15-minute budget holds with rendering and encoding. So the demo
starts from this base and fine-tunes it on its own curated segments, as a user of the field
fine-tunes a released checkpoint.

Its spaces are the embedded default's: the world codec's latents, the world CLAP's text embedding,
and the random T5 stand-in `make_tiny_t5(seed=0)` that every demo builds (the same bytes on every
machine: a child run matches it by content digest, `train.inherit`). Nothing here imports the judge:
the card is measured by `demo.world.generator_card`, after training, on the final checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from scoreaware.core.files import count_lines
from scoreaware.core.progress import progress
from scoreaware.curate.stages.ingest import IngestConfig, run_ingest
from scoreaware.curate.stages.segment import run_segment
from scoreaware.demo.tiny_models import make_tiny_t5
from scoreaware.demo.world.corpus import make_corpus
from scoreaware.train.encode import run_encode
from scoreaware.train.fit import fit_or_resume
from scoreaware.train.model_paths import DIGESTS, load_training_checkpoint

WORLD_GENERATOR_SEED = 7  # render seed of the corpus it trains on (docs/results/world-generator's runs)
CARD = "WORLD_GENERATOR.json"
COMMAND = ("scoreaware demo train-world-generator -o src/scoreaware/demo/default_models/world_generator "
           "--workdir WORKDIR")
FILE = "generator.pt"
T5_NAME = "t5"  # recorded text encoder: the demo's models/t5, matched by digest (make_tiny_t5, seed 0)
SHIPPED_KEYS = ("ema", "model_config", "norm", "encode", "null", "step", "lineage")


@dataclass(frozen=True)
class WorldGenerator:
    clips: int = 2000
    seconds: float = 20.0
    steps: int = 8000
    batch_size: int = 16
    lr: float = 1e-3
    max_frames: int = 129  # 6 s crops of each 10 s segment (demo.pipeline.MAX_FRAMES)
    seed: int = WORLD_GENERATOR_SEED
    train_seed: int = 0

    def overrides(self, manifest: Path, run_dir: Path) -> tuple[str, ...]:
        return (f"manifest={manifest}", f"run_dir={run_dir}", f"steps={self.steps}", f"batch_size={self.batch_size}",
                f"lr={self.lr}", "lr_schedule=cosine", f"max_frames={self.max_frames}",
                f"ckpt_every={max(1, self.steps // 4)}", "timesteps=logit_normal", "score_head=none",
                f"seed={self.train_seed}")


def t5_folder(work: Path) -> Path:
    """The build's T5 stand-in (`make_tiny_t5`, seed 0): the text encoder the card's clips are made with."""
    return work / "models" / "t5"


def encoded_corpus(work: Path, models: Path, recipe: WorldGenerator, log=print) -> tuple[Path, Path]:
    """Render, ingest, segment and encode the training corpus in `work` (each step skipped when
    done); (the encoded manifest, the T5 folder)."""
    corpus = work / "corpus"
    if not (corpus / "truth.jsonl").is_file():
        log(f"rendering {recipe.clips} excerpts × {recipe.seconds:g} s (seed {recipe.seed}, train works)")
        with progress(recipe.clips, "render", "clip") as bar:
            make_corpus(corpus, clips=recipe.clips, duration=recipe.seconds, seed=recipe.seed,
                        progress=lambda _: bar.update(1), workers=os.cpu_count() or 1)
    meta = corpus / "metadata"
    run_ingest(corpus / "audio", work / "ingest.jsonl.gz", IngestConfig(
        metadata_files=(meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv")))
    run_segment(work / "ingest.jsonl.gz", work / "segment.jsonl.gz")
    t5 = t5_folder(work)
    if not (t5 / "config.json").is_file():
        make_tiny_t5(t5, seed=0)
    run_encode(work / "segment.jsonl.gz", work / "encode.jsonl.gz", codec="mel-vae",
               codec_model=str(models / "world_codec"), text_encoder=str(t5), clap_model=str(models / "world_clap"))
    return work / "encode.jsonl.gz", t5


def ship_generator(checkpoint: Path, dest: Path, models: Path) -> tuple[int, int]:
    """Write what a child run and sampling need from `checkpoint` into `dest`: the EMA weights in
    float16, the model config, normalization, encode info and the CFG null; no optimizer, no raw
    weights, no run config (whose paths name the machine it trained on). The encode info names the
    codec and CLAP as folders beside the shipped one (`dest` goes into the embedded default, next to
    `models`' world_codec and world_clap) and the text encoder by name, each with its digest.
    (bytes before, bytes after)."""
    state = load_training_checkpoint(checkpoint)
    kept = {key: state[key] for key in SHIPPED_KEYS if key in state}
    kept["ema"] = {k: (v.half() if v.is_floating_point() else v) for k, v in state["ema"].items()}
    kept["lineage"] = {**kept.get("lineage", {}), "parent": None, "trained_on": "demo train-world-generator"}
    encode = {k: v for k, v in kept["encode"].items() if k != "null"}  # its arrays live in the build's folder;
    kept["encode"] = encode  # the shipped CFG null is `kept["null"]`, the tensors themselves
    sibling = {str(Path(models, name).resolve()): f"../{name}" for name in ("world_codec", "world_clap")}
    for holder, key in ((encode["codec"], "model"), (encode, "clap_model")):
        if str(Path(holder[key]).resolve()) not in sibling:
            raise ValueError(f"{checkpoint}: its {key} {holder[key]} is not a model of {models}")
        holder[key] = sibling[str(Path(holder[key]).resolve())]
    encode["text_encoder"] = T5_NAME
    if not encode.get(DIGESTS, {}).get("text_encoder"):
        raise ValueError(f"{checkpoint}: its text encoder was recorded without a digest")
    tmp = dest.with_name(f".{dest.name}.tmp")
    torch.save(kept, tmp)
    os.replace(tmp, dest)
    return checkpoint.stat().st_size, dest.stat().st_size


def train_world_generator(out: Path, models: Path, work: Path, recipe: WorldGenerator = WorldGenerator(),
                          log=print) -> dict:
    """Render and encode the corpus, train the tiny preset, ship its EMA into `out`/generator.pt;
    the card without its measurement (written by the caller after `generator_card.measure`)."""
    start = time.perf_counter()
    manifest, _ = encoded_corpus(work, models, recipe, log)
    checkpoint = fit_or_resume(work / "runs", recipe.overrides(manifest, work / "runs"), preset="tiny", log=log)
    run = checkpoint.parent.parent
    training_minutes = (checkpoint.stat().st_mtime - (run / "config.json").stat().st_mtime) / 60
    out.mkdir(parents=True, exist_ok=True)
    before, after = ship_generator(checkpoint, out / FILE, models)
    log(f"shipped {out / FILE}: {after / 1e6:.1f} MB (the training checkpoint: {before / 1e6:.1f} MB)")
    segments = count_lines(manifest)
    return {"command": COMMAND, "recipe": asdict(recipe), "stored": "float16 (EMA only)",
            "segments": segments, "training_minutes": round(training_minutes, 1),
            "minutes": round((time.perf_counter() - start) / 60, 1)}


def describe_card(card: dict) -> list[str]:
    recipe = card["recipe"]
    lines = [f"tiny preset, {recipe['steps']} steps on {card['segments']} segments of {recipe['clips']} renders "
             f"(seed {recipe['seed']}), {card['training_minutes']} training minutes"]
    measured = card.get("measured")
    if measured:
        lines += [f"{name.replace('_', ' ')} heard as prompted {measured[name]['rate_prompts']:.3f} (chance "
                  f"{measured[name]['chance']:.3f}, judge's ceiling {measured[name]['ceiling']:.3f}) over "
                  f"{measured['prompts']} prompts × {measured['clips'] // measured['prompts']} clips"
                  for name in ("instrument", "tempo_band", "mode") if name in measured]
    return lines


def card_json(card: dict) -> str:
    return json.dumps(card, indent=1) + "\n"
