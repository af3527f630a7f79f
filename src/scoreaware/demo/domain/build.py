"""Build the embedded default: MERT stand-in, domain CLAP, domain reward, captioners, and their numbers.

`scoreaware demo train-models -o DIR` runs this; the shipped folder (`DEFAULT_MODELS`) is its
output for the recorded seeds. `MODELS.json` records the command, the recipes, the sizes and
the targets measured on a fresh corpus (seed `targets.EVAL_SEED`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import click
import torch

from scoreaware.core.weights import store_half
from scoreaware.demo.domain import targets
from scoreaware.demo.domain.captioners import CaptionerRecipe, train_captioners
from scoreaware.demo.domain.clap import ClapRecipe, train_clap
from scoreaware.demo.domain.codec import CodecRecipe, train_codec
from scoreaware.demo.domain.reward import RewardRecipe, write_pairs
from scoreaware.demo.tiny_models import make_tiny_mert
from scoreaware.train.reward_fit import fit_reward

DEFAULT_MODELS = Path(__file__).resolve().parent.parent / "default_models"
PARTS = ("mert", "clap", "reward", "captioners", "codec")
MERT_WIDTH = 256
COMMAND = "scoreaware demo train-models -o src/scoreaware/demo/default_models"
# parts stored in float16 (loaded in float32; `core.weights`), measured as stored. The CLAP and MERT stay
# float32: the reward head records their exact files, and the CLAP (3 MB) is not where the budget goes.
STORED_HALF = {"reward": ("reward.pt",), "captioners": ("qwen2_audio", "qwen2"), "codec": ("codec",)}

# recipes small enough for a test of the command itself (the numbers are then meaningless)
QUICK = {
    "clap": dict(clips=21, epochs=1, round_trip=0.0, seconds=11.0),
    "reward": dict(clips=14, epochs=2),
    "captioners": dict(clips=7, audio_epochs=1, rewrite_examples=32, rewrite_epochs=1),
    "codec": dict(clips=7, steps=4, batch_size=2),
}


def default_models() -> Path:
    """The shipped models folder; a clear error if the package was installed without it."""
    if not (DEFAULT_MODELS / "MODELS.json").is_file():
        raise click.ClickException(f"the embedded models are missing from {DEFAULT_MODELS}; rebuild them with "
                                   f"`{COMMAND}`")
    return DEFAULT_MODELS


def build(out: Path, parts: tuple[str, ...] = PARTS, quick: bool = False,
          eval_clips: int = 140, measure_only: bool = False) -> dict:
    """Train the `parts` into `out` (unless `measure_only`), store the `STORED_HALF` ones in float16,
    then measure every model there on a fresh corpus."""

    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "MODELS.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.setdefault("recipes", {})
    record["command"] = COMMAND  # rebuilds the whole folder; each recipe records the command of its own part
    part_command = COMMAND + ("" if set(parts) == set(PARTS) else f" --only {','.join(parts)}")
    timings = record.setdefault("minutes", {})

    def log(message: str) -> None:
        click.echo(message, err=True)

    def recipe(kind: str, cls):
        base = cls()
        return replace(base, **QUICK[kind]) if quick else base

    for part in () if measure_only else parts:
        start = time.perf_counter()
        click.secho(f"\n── {part} " + "─" * 60, fg="cyan", err=True)
        if part == "mert":
            make_tiny_mert(out / "mert", hidden_size=MERT_WIDTH, seed=0)
            record["recipes"]["mert"] = {"kind": "random-init HubertModel (untrained)", "hidden_size": MERT_WIDTH,
                                         "seed": 0}
        elif part == "clap":
            result = train_clap(out / "clap", recipe("clap", ClapRecipe), log)
            record["recipes"]["clap"] = result["recipe"] | {"final_loss": result["history"][-1]["loss"]}
        elif part == "reward":
            r = recipe("reward", RewardRecipe)
            pairs = write_pairs(out / "_reward_pairs", r, log)
            for line in fit_reward(pairs, out / "reward.pt", clap_model=str(out / "clap"),
                                   mert_model=str(out / "mert"), prompt_protocol="caption", epochs=r.epochs,
                                   holdout=r.holdout, seed=0):
                log(f"  {line}")

            metrics = torch.load(out / "reward.pt", weights_only=True)["metrics"]
            shutil.rmtree(out / "_reward_pairs", ignore_errors=True)
            record["recipes"]["reward"] = asdict(r) | {"held_out": metrics["holdout"]}
        elif part == "captioners":
            result = train_captioners(out, recipe("captioners", CaptionerRecipe), log)
            record["recipes"]["captioners"] = result["recipe"] | {
                "final_loss_stage1": result["audio_history"][-1]["loss"],
                "final_loss_stage2": result["rewrite_history"][-1]["loss"]}
        elif part == "codec":
            result = train_codec(out / "codec", recipe("codec", CodecRecipe), log)
            record["recipes"]["codec"] = result["recipe"] | {"params": result["params"],
                                                             "final": result["history"][-1]}
        else:
            raise click.BadParameter(f"{part!r}: choose from {', '.join(PARTS)}", param_hint="--only")
        timings[part] = round((time.perf_counter() - start) / 60, 1)
        record["recipes"][part]["command"] = part_command
    for part in set(parts) & set(STORED_HALF):
        for name in STORED_HALF[part]:
            if (out / name).exists():
                store_half(out / name)  # idempotent: a part kept from an earlier run is already halved
                record["recipes"][part]["stored"] = "float16"
    # re-measure what was trained (the codec's numbers depend on the CLAP and the reward too)
    measured = set(parts) | ({"codec"} if {"clap", "reward"} & set(parts) and (out / "codec").is_dir() else set())
    record["targets"] = {**record.get("targets", {}),
                         **measure(out, targets.EVAL_SEED, 14 if quick else eval_clips, log, measured)}
    record["sizes_mb"] = {p.name: round(sum(f.stat().st_size for f in (p.rglob("*") if p.is_dir() else [p])
                                            if f.is_file()) / 2**20, 2)
                          for p in sorted(out.iterdir()) if p.name != "MODELS.json"}
    record["total_mb"] = round(sum(record["sizes_mb"].values()), 2)
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def measure(models: Path, seed: int, clips: int, log=print, parts: set[str] | None = None) -> dict:
    """The targets of `parts` (default: every model in `models`), on a fresh corpus of `seed`
    (rendered in memory)."""
    parts = set(PARTS) if parts is None else parts

    log(f"measuring on a fresh corpus (seed {seed}, {clips} clips × 10 s)")
    fresh = targets.fresh_clips(seed, clips)
    found = {"seed": seed}
    if "clap" in parts and (models / "clap").is_dir():
        found["clap"] = targets.measure_clap(str(models / "clap"), fresh, seed)
    if "reward" in parts and (models / "reward.pt").is_file():
        found["reward"] = targets.measure_reward(models, [c for c in fresh if c[0].degradation is None], seed)
    if "codec" in parts and (models / "codec").is_dir() and (models / "reward.pt").is_file():
        found["codec"] = targets.measure_codec(models, fresh[: min(len(fresh), 70)], seed)
    if "captioners" in parts and (models / "qwen2_audio").is_dir() and (models / "qwen2").is_dir():
        found["captioners"] = targets.measure_captioners(models, fresh[: min(len(fresh), 42)])
    return found
