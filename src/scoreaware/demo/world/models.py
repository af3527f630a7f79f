"""The realistic world's embedded models, as the demo introduces them: each folder and its card's
figures (measured on held-out works, through the loader the pipeline runs)."""

from __future__ import annotations

import json
from pathlib import Path

from scoreaware.demo.world import captioners, clap, codec, generator, reward

# folder under the embedded default → (what it is, the module that builds it: its CARD, COMMAND, describe_card)
WORLD_MODELS = {"world_clap": ("CLAP", clap), "world_reward": ("reward head", reward),
                "world_captioners": ("captioners", captioners), "world_codec": ("codec", codec),
                 "world_generator": ("base generator", generator)}


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def missing_world_models(models: Path) -> list[str]:
    """The world models whose folder (or card) is not in `models`, each with the command that builds it."""
    return [f"{models / name} (build it with `{module.COMMAND}`)"
            for name, (_, module) in WORLD_MODELS.items() if not (models / name / module.CARD).is_file()]


def describe_world_models(models: Path) -> list[str]:
    """One block per world model: its folder, size, the command that rebuilds it, its card's figures."""
    lines = []
    for name, (what, module) in WORLD_MODELS.items():
        folder = models / name
        card = json.loads((folder / module.CARD).read_text())
        lines.append(f"{what} ({name}, {folder_mb(folder):.1f} MB, {card.get('stored', 'float32')}; "
                     f"`{card['command']}`)")
        lines += [f"  {line}" for line in module.describe_card(card)]
    return lines
