"""The world's domain reward: the TuneJury head trained by `train reward` on pairs of world renders.

The same pairs as the synthetic reward (`demo.domain.reward`), with a known answer:
- each clip's clean render beats its degraded version (one planted degradation, any strength),
  under the clip's own caption;
- under clip X's caption, X beats a clip Y of another instrument (every caption names the
  instrument, so it does not describe Y), and the other way round.

The features are the world CLAP's (audio and caption text: the ``caption`` prompt protocol) and
the tiny MERT's, by the code `curate score reward` runs. Its card (`WORLD_REWARD.json`) measures,
on renders of held-out works, clean against degraded (paired accuracy and AUROC) and matched
against another instrument's caption.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from scoreaware.core.weights import store_half
from scoreaware.demo.domain.reward import write_pair_files
from scoreaware.demo.domain.targets import measure_reward
from scoreaware.demo.world.captions import caption_text
from scoreaware.demo.world.clips import JUDGE_EVAL_SEED, rendered_clips, write_card
from scoreaware.train.reward_fit import fit_reward

WORLD_REWARD_SEED = 307
CARD = "WORLD_REWARD.json"
COMMAND = "scoreaware demo train-world-reward -o src/scoreaware/demo/default_models/world_reward"
HEAD = "reward.pt"


@dataclass(frozen=True)
class WorldReward:
    clips: int = 480  # 40 per instrument
    seconds: float = 10.0
    epochs: int = 60
    holdout: float = 0.2
    seed: int = WORLD_REWARD_SEED


def other_instrument(a, b) -> bool:
    """Whether a caption of `a` fails to describe `b` (every caption names the instrument)."""
    return a.instrument != b.instrument


def train_world_reward(out: Path, clap: Path, mert: Path, world: WorldReward = WorldReward(), log=print) -> dict:
    """Render the pairs (train works), fit the head into `out`/reward.pt; its held-out pair metrics."""
    pairs_dir, output = out / "_pairs", out / HEAD
    rng = np.random.default_rng(world.seed)
    log(f"rendering {world.clips} clips × {world.seconds:g} s (seed {world.seed}, train works), clean and degraded")
    clips = rendered_clips(world.clips, world.seed, world.seconds, "train")
    pairs = write_pair_files(pairs_dir, clips, lambda spec: caption_text(spec, rng), other_instrument, rng,
                             asdict(world))
    for line in fit_reward(pairs, output, clap_model=str(clap), mert_model=str(mert), prompt_protocol="caption",
                           epochs=world.epochs, holdout=world.holdout, seed=0):
        log(f"  {line}")
    shutil.rmtree(pairs_dir, ignore_errors=True)
    return torch.load(output, weights_only=True)["metrics"]


def build_world_reward(out: Path, clap: Path, models: Path, world: WorldReward = WorldReward(),
                       eval_clips: int = 120, log=print) -> dict:
    """Train the head into `out` on `clap`'s features and the MERT in `models`, measure it on
    held-out renders, write its card (``WORLD_REWARD.json``)."""
    start = time.perf_counter()
    metrics = train_world_reward(out, clap, models / "mert", world, log)
    store_half(out / HEAD)  # shipped in float16, measured as stored
    card = {"command": COMMAND, "recipe": asdict(world), "clap": clap.name, "stored": "float16",
            "minutes": round((time.perf_counter() - start) / 60, 1), "held_out_pairs": metrics["holdout"]}
    return write_card(out, CARD, card, eval_clips, lambda: measure_reward(
        models, rendered_clips(eval_clips, JUDGE_EVAL_SEED, 10.0, "test"), JUDGE_EVAL_SEED, reward=out / HEAD,
        clap=clap, caption=caption_text, differ=other_instrument), log)


def describe_card(card: dict) -> list[str]:
    lines = [f"trained in {card['minutes']} min; held-out pairs: accuracy {card['held_out_pairs']['accuracy']:.3f}"]
    measured = card.get("measured")
    if measured:
        lines += [f"clean above degraded: {measured['clean_above_degraded']:.3f} paired, AUROC "
                  f"{measured['auroc_clean_degraded']:.3f}",
                  f"own caption above another instrument's: {measured['matched_above_mismatched']:.3f} "
                  f"on {measured['clips']} held-out renders"]
    return lines
