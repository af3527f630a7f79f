"""The world generator's card: what the independent judge hears in its clips of the 48 evaluation
prompts, after training (the judge picks no checkpoint and no step trains on it)."""

from __future__ import annotations

from pathlib import Path

from scoreaware.core.files import atomic_write_text
from scoreaware.demo.world.generator import CARD, card_json
from scoreaware.demo.world.prompts import SHIPPED
from scoreaware.evaluate.adherence import judge_run
from scoreaware.train.prompts import read_prompts
from scoreaware.train.sample import SampleSettings, run_generation

SAMPLING = SampleSettings(steps=25, cfg=2.0, score=None, seconds=10.0, seed=0)  # docs/results/world-generator


def measure_generator(checkpoint: Path, t5: Path, judge: Path, samples: Path, seeds: int = 2) -> dict:
    """Generate `seeds` clips of each of the 48 prompts from `checkpoint` into `samples`, judge them;
    the adherence (`evaluate.adherence`)."""
    run_generation(checkpoint, read_prompts(SHIPPED), samples, SAMPLING, seeds_per_prompt=seeds, resume=True,
                   prompts_file=str(SHIPPED), text_encoder=str(t5))
    return judge_run(samples, judge)


def sampling_card(seeds: int) -> dict:
    """How the card's clips were sampled (seed base 0: clip k of prompt i has seed i·seeds + k)."""
    return {"steps": SAMPLING.steps, "cfg": SAMPLING.cfg, "score": SAMPLING.score, "seconds": SAMPLING.seconds,
            "seeds": f"0-{48 * seeds - 1} ({seeds} per prompt)"}


def write_generator_card(out: Path, card: dict) -> dict:
    atomic_write_text(out / CARD, card_json(card))
    return card
