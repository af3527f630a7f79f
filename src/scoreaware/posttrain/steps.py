"""Steps the post-training drivers (expert iteration, CRPO) chain: each one is the library call
behind an existing command (`eval generate`, `curate score clap/reward`, `curate select`,
`train encode`, `train fit`), made with the parent's settings, and each skips what an earlier
(interrupted) run finished.

This module sits above `curate`, `train` and `evaluate`: drivers are where they meet.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import atomic_write_text
from scoreaware.core.progress import progress
from scoreaware.core.provenance import config_changes, describe_input, manifest_base, read_provenance
from scoreaware.curate.stages.score_clap import ClapScoreConfig, run_score_clap
from scoreaware.curate.stages.score_reward import RewardScoreConfig, run_score_reward
from scoreaware.evaluate.score_run import read_samples, write_clips_manifest
from scoreaware.train.data import encode_info
from scoreaware.train.encode import run_encode, write_encode_info
from scoreaware.train.fit import fit_or_resume
from scoreaware.train.model_paths import load_training_checkpoint
from scoreaware.train.prompts import read_prompts
from scoreaware.train.sample import SampleSettings, run_generation


@dataclass
class Parent:
    """What a child run inherits from its parent checkpoint."""

    path: Path
    state: dict

    @staticmethod
    def load(path: str | Path, unsafe_pickle: bool = False) -> Parent:
        return Parent(Path(path), load_training_checkpoint(path, unsafe_pickle=unsafe_pickle, what="parent checkpoint"))

    @property
    def encode(self) -> dict:
        return self.state.get("encode", {})

    @property
    def config(self) -> dict:
        return self.state["config"]

    @property
    def clap_model(self) -> str:
        model = self.encode.get("clap_model")
        if not model:
            raise StageError(f"{self.path}: the checkpoint does not record its CLAP model; pass --clap-model")
        return model


def model_overrides(parent: Parent, **changes) -> tuple[str, ...]:
    """``--set`` pairs that rebuild the parent's model and objective, with `changes` applied."""
    keep = ("model", "score_head", "repa", "repa_coeff", "repa_depth", "repa_width", "timesteps", "beta_lambda",
            "max_frames", "score_field", "score_group_by", "clap_field", "text_dropout", "score_dropout",
            "grad_clip", "weight_decay", "ema_decay", "batch_size", "precision", "seed")
    values = {k: parent.config[k] for k in keep if k in parent.config}
    values.update(changes)
    out = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        out.append(f"{key}={value}")
    return tuple(out)


def generate(checkpoint: Path, prompts: Path, out: Path, seeds: int, score: float | None,
             cfg: float, steps: int, seconds: float, keep_latents: bool, batch_size: int = 8) -> list[dict]:
    """`eval generate` as a library call (resumes a partial folder); returns its rows."""
    settings = SampleSettings(steps=steps, cfg=cfg, score=score, seconds=seconds)
    items = read_prompts(prompts)
    with progress(len(items) * seeds, "generate", "clip") as bar:
        run_generation(checkpoint, items, out, settings, seeds, batch_size, keep_latents, resume=True,
                       prompts_file=str(prompts), progress=lambda _: bar.update(1))
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


def score_candidates(samples: Path, clap_model: str, reward: str | None, mert_model: str | None,
                     backend: str = "transformers", workers: int = 0) -> Path:
    """Clips (with their kept latents) → `score clap` (→ `score reward`); the scored manifest."""
    folder = samples / "scored"
    folder.mkdir(exist_ok=True)
    clips = folder / "clips.jsonl.gz"
    if not clips.is_file():
        write_clips_manifest(samples, read_samples(samples), clips, latents=True)
    clap = folder / "clap.jsonl.gz"
    run_score_clap(clips, clap, ClapScoreConfig(backend=backend, model=clap_model, caption_field="caption",
                                                policy="first", workers=workers), resume=True)
    if reward is None:
        return clap
    scored = folder / "reward.jsonl.gz"
    run_score_reward(clap, scored, RewardScoreConfig(checkpoint=reward, mert_model=mert_model, workers=workers),
                     resume=True)
    return scored


def encode_like_parent(parent: Parent, manifest: Path, out: Path) -> Path:
    """`train encode` with the parent's codec, text encoder, CLAP and REPA targets (latents kept)."""
    info = parent.encode
    codec = info.get("codec", {})
    targets = [t for t in parent.config.get("repa", []) if t]
    run_encode(manifest, out, codec=codec.get("codec", "mel"), codec_model=codec.get("model"),
               text_encoder=info["text_encoder"], max_text_tokens=info.get("max_text_tokens", 77),
               clap_model=parent.clap_model, repa=",".join(targets),
               muq_model=info.get("muq_model") or "OpenMuQ/MuQ-large-msd-iter", resume=True)
    return out


def write_encode_info_like(source: Path, target: Path) -> None:
    """Give `target` the ``.encode.json`` of `source` (a mixture is encoded like its parts)."""

    base = manifest_base(target)
    write_encode_info(base.with_name(f"{base.name}.encode.json"), encode_info(source))


def finetune(parent: Parent, manifest: Path, run_root: Path, steps: int, lr: float,
             warmup: int = 0, **changes) -> Path:
    """`train fit` from the parent's EMA (resuming an interrupted run); the last checkpoint."""
    overrides = model_overrides(parent, manifest=str(manifest), init_from=str(parent.path), lr=lr, warmup=warmup,
                                lr_schedule="constant", steps=steps, run_dir=str(run_root),
                                ckpt_every=max(1, min(steps // 4, 500)), log_every=max(1, min(steps // 20, 100)),
                                **changes)
    return fit_or_resume(run_root, overrides)


def claim_output(output: Path, config: dict, overwrite: bool = False) -> None:
    """Record the options that decide a driver's outputs (``OUT/run.json``) when it first runs; a
    rerun or a resume with other options is refused naming them, as every stage does, and
    `overwrite` starts over (the folder is emptied first)."""
    config = json.loads(json.dumps(config, default=str))
    run_file = output / "run.json"
    if overwrite and output.exists():
        shutil.rmtree(output)
    if run_file.is_file():
        changes = config_changes(json.loads(run_file.read_text()), config)
        if changes:
            raise StageError(f"{output} was made with other options ({'; '.join(changes[:6])}); pass --overwrite "
                             "to start over, or the same options to continue it")
        return
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_file, json.dumps(config, indent=1) + "\n")


def input_digests(**paths: Path | str | None) -> dict:
    """name_sha256 -> digest of each given file (None stays None): inputs that decide a run."""
    return {f"{name}_sha256": describe_input(path)["sha256"] if path else None for name, path in paths.items()}


def overlapping_prompts(a: Path, b: Path) -> list[str]:
    """Prompt texts two files share (case and spacing ignored)."""

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    theirs = {norm(p.text) for p in read_prompts(b)}
    return [p.text for p in read_prompts(a) if norm(p.text) in theirs]


def stage_summary(path: Path) -> dict:
    return (read_provenance(path) or {}).get("summary", {})
