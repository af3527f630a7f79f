"""Steps the post-training drivers (expert iteration, CRPO) chain: each one is an existing command
(`eval generate`, `curate score clap/reward`, `curate select`, `train encode`, `train fit`),
invoked with the parent's settings, and each skips what an earlier (interrupted) run finished.

This module sits above `curate`, `train` and `evaluate`: drivers are where they meet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass
class Parent:
    """What a child run inherits from its parent checkpoint."""

    path: Path
    state: dict

    @staticmethod
    def load(path: str | Path, unsafe_pickle: bool = False) -> Parent:
        from scoreaware.core.checkpoints import load_checkpoint

        return Parent(Path(path), load_checkpoint(path, unsafe_pickle=unsafe_pickle, what="parent checkpoint"))

    @property
    def encode(self) -> dict:
        return self.state.get("encode", {})

    @property
    def config(self) -> dict:
        return self.state["config"]

    @property
    def clap_model(self) -> str:
        from scoreaware.core.errors import StageError

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


def generate(ctx: click.Context, checkpoint: Path, prompts: Path, out: Path, seeds: int, score: float | None,
             cfg: float, steps: int, seconds: float, keep_latents: bool, batch_size: int = 8) -> list[dict]:
    """`eval generate` (resumes a partial folder); returns its rows."""
    from scoreaware.cli.eval import generate_cmd

    ctx.invoke(generate_cmd, checkpoint=str(checkpoint), prompts=str(prompts), output=out, seeds_per_prompt=seeds,
               keep_latents=keep_latents, steps=steps, cfg=cfg, score=score if score is not None else 0.0,
               no_score=score is None, seconds=seconds, batch_size=batch_size, resume=True)
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]


def score_candidates(ctx: click.Context, samples: Path, clap_model: str, reward: str | None, mert_model: str | None,
                     backend: str = "transformers", workers: int = 0) -> Path:
    """Clips (with their kept latents) → `curate score clap` (→ `curate score reward`); the scored manifest."""
    from scoreaware.cli.curate.score import score_clap_cmd, score_reward_cmd
    from scoreaware.evaluate.run import read_samples, write_clips_manifest

    folder = samples / "scored"
    folder.mkdir(exist_ok=True)
    clips = folder / "clips.jsonl.gz"
    if not clips.is_file():
        write_clips_manifest(samples, read_samples(samples), clips, latents=True)
    clap = folder / "clap.jsonl.gz"
    ctx.invoke(score_clap_cmd, manifest=clips, backend=backend, model=clap_model, caption_field="caption",
               policy="first", workers=workers, output=clap, resume=True)
    if reward is None:
        return clap
    scored = folder / "reward.jsonl.gz"
    ctx.invoke(score_reward_cmd, manifest=clap, checkpoint=reward, mert_model=mert_model, prompt_protocol=None,
               workers=workers, output=scored, resume=True)
    return scored


def encode_like_parent(ctx: click.Context, parent: Parent, manifest: Path, out: Path) -> Path:
    """`train encode` with the parent's codec, text encoder, CLAP and REPA targets (latents kept)."""
    from scoreaware.cli.train import encode

    info = parent.encode
    codec = info.get("codec", {})
    targets = [t for t in parent.config.get("repa", []) if t]
    ctx.invoke(encode, manifest=manifest, output=out, codec=codec.get("codec", "mel"), codec_model=codec.get("model"),
               text_encoder=info["text_encoder"], max_text_tokens=info.get("max_text_tokens", 77),
               clap_model=parent.clap_model, repa=",".join(targets),
               muq_model=info.get("muq_model") or "OpenMuQ/MuQ-large-msd-iter", resume=True)
    return out


def write_encode_info_like(source: Path, target: Path) -> None:
    """Give `target` the ``.encode.json`` of `source` (a mixture is encoded like its parts)."""
    from scoreaware.core.provenance import manifest_base
    from scoreaware.train.data import encode_info
    from scoreaware.train.encode import write_encode_info

    base = manifest_base(target)
    write_encode_info(base.with_name(f"{base.name}.encode.json"), encode_info(source))


def finetune(ctx: click.Context, parent: Parent, manifest: Path, run_root: Path, steps: int, lr: float,
             warmup: int = 0, **changes) -> Path:
    """`train fit` from the parent's EMA (resuming an interrupted run); the last checkpoint."""
    overrides = model_overrides(parent, manifest=str(manifest), init_from=str(parent.path), lr=lr, warmup=warmup,
                                lr_schedule="constant", steps=steps, run_dir=str(run_root),
                                ckpt_every=max(1, min(steps // 4, 500)), log_every=max(1, min(steps // 20, 100)),
                                **changes)
    return fit_or_resume(ctx, run_root, overrides)


def fit_or_resume(ctx: click.Context, run_root: Path, overrides: tuple[str, ...], preset: str | None = None) -> Path:
    """`train fit` into `run_root` unless a run there finished (then its last checkpoint) or was
    interrupted (then it resumes, with its saved configuration); the last checkpoint."""
    from scoreaware.cli.train import fit

    runs = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir()) if run_root.is_dir() else []
    if runs:
        last = sorted((runs[-1] / "checkpoints").glob("*.pt"))
        config = json.loads((runs[-1] / "config.json").read_text())
        if last and int(last[-1].stem) >= config["steps"]:
            click.secho(f"✓ {runs[-1]} already trained ({config['steps']} steps)", fg="green", err=True)
            return last[-1]
        if last:
            ctx.invoke(fit, resume_dir=runs[-1], overrides=(), config_path=None, preset=None, manifest=None)
            return sorted((runs[-1] / "checkpoints").glob("*.pt"))[-1]
    ctx.invoke(fit, overrides=overrides, config_path=None, preset=preset, manifest=None, resume_dir=None)
    run = sorted(p for p in run_root.glob("*") if (p / "checkpoints").is_dir())[-1]
    return sorted((run / "checkpoints").glob("*.pt"))[-1]


def overlapping_prompts(a: Path, b: Path) -> list[str]:
    """Prompt texts two files share (case and spacing ignored)."""
    from scoreaware.train.prompts import read_prompts

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    theirs = {norm(p.text) for p in read_prompts(b)}
    return [p.text for p in read_prompts(a) if norm(p.text) in theirs]


def stage_summary(path: Path) -> dict:
    from scoreaware.core.provenance import read_provenance

    return (read_provenance(path) or {}).get("summary", {})
