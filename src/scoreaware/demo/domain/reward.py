"""The domain reward: the TuneJury head trained by `train reward` on pairs with a known answer.

Clips of the reward corpus are taken two at a time (of different genres), and each pair of
clips is one group, so the held-out split of `train reward` never shares a clip with training:

* each clip's clean version beats its degraded version (one planted degradation, any strength),
  under the clip's own caption;
* under clip X's caption, clean X beats clean Y (the caption describes X, not Y), and the other
  way round.

The features are the domain CLAP's (audio and caption text: the ``caption`` prompt protocol)
and the tiny MERT's, computed by the same code `curate score reward` runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from scoreaware.demo.domain.corpus import TRAIN_SEEDS, rendered, training_specs
from scoreaware.demo.synth import DEGRADATIONS, SR, caption_of, degrade, normalize


@dataclass(frozen=True)
class RewardRecipe:
    clips: int = 420  # 60 per genre
    seconds: float = 10.0
    epochs: int = 60
    holdout: float = 0.2
    seed: int = TRAIN_SEEDS["reward"]


def write_pairs(folder: Path, recipe: RewardRecipe = RewardRecipe(), log=print) -> Path:
    """Clean and degraded WAVs of the reward corpus and `pairs.jsonl` next to them."""

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(recipe.seed)
    specs = training_specs(recipe.clips, recipe.seed, degraded=0.0)
    log(f"rendering {len(specs)} clips × {recipe.seconds:g} s (seed {recipe.seed}), each clean and degraded")
    kinds = list(DEGRADATIONS)
    clips = {}

    for index, (spec, audio) in enumerate(tqdm(rendered(specs, recipe.seconds, recipe.seed), total=len(specs),
                                               desc="render", unit="clip", leave=False)):
        kind, strength = kinds[index % len(kinds)], int(rng.integers(1, 4))
        damaged = normalize(degrade(audio[None], kind, strength, rng), spec.target_lufs)[0]
        sf.write(folder / f"{spec.id}_clean.wav", audio, SR, subtype="PCM_16")
        sf.write(folder / f"{spec.id}_{kind}{strength}.wav", damaged, SR, subtype="PCM_16")
        clips[spec.id] = (spec, f"{spec.id}_clean.wav", f"{spec.id}_{kind}{strength}.wav",
                          caption_of(spec, rng))
    order = list(clips)
    rng.shuffle(order)
    rows = []
    partner = {}
    unpaired = list(order)
    while len(unpaired) >= 2:
        x = unpaired.pop()
        y = next((c for c in unpaired if clips[c][0].genre != clips[x][0].genre), unpaired[0])
        unpaired.remove(y)
        partner[x], partner[y] = y, x
    for x, y in partner.items():
        spec, clean, damaged, caption = clips[x]
        group = "+".join(sorted((x, y)))
        rows.append({"prompt": caption, "audio_a": clean, "audio_b": damaged, "winner": "a", "group": group,
                     "why": "degradation"})
        rows.append({"prompt": caption, "audio_a": clips[y][1], "audio_b": clean, "winner": "b", "group": group,
                     "why": "caption"})
    rng.shuffle(rows)
    pairs = folder / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "recipe.json").write_text(json.dumps(asdict(recipe), indent=1))
    return pairs
