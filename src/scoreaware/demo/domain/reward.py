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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
    """Clean and degraded WAVs of the synthetic reward corpus and `pairs.jsonl` next to them."""

    rng = np.random.default_rng(recipe.seed)
    specs = training_specs(recipe.clips, recipe.seed, degraded=0.0)
    log(f"rendering {len(specs)} clips × {recipe.seconds:g} s (seed {recipe.seed}), each clean and degraded")
    clips = tqdm(rendered(specs, recipe.seconds, recipe.seed), total=len(specs), desc="render", unit="clip",
                 leave=False)
    return write_pair_files(folder, clips, lambda spec: caption_of(spec, rng), lambda a, b: a.genre != b.genre,
                            rng, asdict(recipe))


def write_pair_files(folder: Path, clips: Iterable[tuple[Any, np.ndarray]], caption: Callable[[Any], str],
                     differ: Callable[[Any, Any], bool], rng: np.random.Generator, recipe: dict) -> Path:
    """WAVs and `pairs.jsonl` for `clips` [(spec with .id and .target_lufs, mono 44.1 kHz audio)]:
    clean beats its degraded version under its own caption; under X's caption, X beats a clip Y
    for which `differ(X, Y)` (a clip its caption does not describe). Each pair of clips is a group."""

    folder.mkdir(parents=True, exist_ok=True)
    kinds = list(DEGRADATIONS)
    found = {}
    for index, (spec, audio) in enumerate(clips):
        kind, strength = kinds[index % len(kinds)], int(rng.integers(1, 4))
        damaged = normalize(degrade(audio[None], kind, strength, rng), spec.target_lufs)[0]
        sf.write(folder / f"{spec.id}_clean.wav", audio, SR, subtype="PCM_16")
        sf.write(folder / f"{spec.id}_{kind}{strength}.wav", damaged, SR, subtype="PCM_16")
        found[spec.id] = (spec, f"{spec.id}_clean.wav", f"{spec.id}_{kind}{strength}.wav", caption(spec))
    order = list(found)
    rng.shuffle(order)
    rows = []
    partner = {}
    unpaired = list(order)
    while len(unpaired) >= 2:
        x = unpaired.pop()
        y = next((c for c in unpaired if differ(found[c][0], found[x][0])), unpaired[0])
        unpaired.remove(y)
        partner[x], partner[y] = y, x
    for x, y in partner.items():
        spec, clean, damaged, text = found[x]
        group = "+".join(sorted((x, y)))
        rows.append({"prompt": text, "audio_a": clean, "audio_b": damaged, "winner": "a", "group": group,
                     "why": "degradation"})
        rows.append({"prompt": text, "audio_a": found[y][1], "audio_b": clean, "winner": "b", "group": group,
                     "why": "caption"})
    rng.shuffle(rows)
    pairs = folder / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "recipe.json").write_text(json.dumps(recipe, indent=1))
    return pairs
