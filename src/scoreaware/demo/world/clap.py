"""The world's domain CLAP: the domain CLAP recipe trained on renders of the world's train works.

The synthetic world's CLAP knows genres and oscillator timbres; in this world it splits
"harpsichord" into six word pieces and hears no instrument. This one learns the world's captions
(`world.captions`: every phrasing names the instrument, the others some of style, tempo, key and
mode, meter, dynamics, composer), with a caption a positive for every clip in the batch whose
labels agree with everything it claims. A quarter of the clips also appear after a round trip
through the world's codec, the decoder generated clips reach it through.

Its card (`WORLD_CLAP.json`) reports, on renders of held-out works (`JUDGE_EVAL_SEED`), through
the loader `curate score clap --model DIR` runs:
- zero-shot accuracy per attribute (instrument, tempo band, mode, style) with one prompt per value;
- the AUROC of a clip's own caption against a caption of a clip with another instrument (the
  demo corpus's planted mismatch).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import ClapFeatureExtractor

from scoreaware.curate.scoring.clap import load_transformers_clap
from scoreaware.demo.domain.build import DEFAULT_MODELS
from scoreaware.demo.domain.clap import ClapRecipe, Wording, fit_clap, log_mel
from scoreaware.demo.domain.corpus import codec_round_trip
from scoreaware.demo.domain.targets import auroc, clap_embeddings
from scoreaware.demo.domain.texts import Description
from scoreaware.demo.world.captions import TEMPO_WORDS, caption_of
from scoreaware.demo.world.catalog import COLLECTIONS, DEFAULT_COLLECTIONS
from scoreaware.demo.world.clips import JUDGE_EVAL_SEED, rendered_clips, write_card
from scoreaware.demo.world.corpus import ScoreClip
from scoreaware.demo.world.render import INSTRUMENTS, TEMPO_BANDS
from scoreaware.train.codecs import MelVaeCodec

WORLD_CLAP_SEED = 306
CARD = "WORLD_CLAP.json"
COMMAND = "scoreaware demo train-world-clap -o src/scoreaware/demo/default_models/world_clap"
# what a caption's claim names -> the ScoreClip field it commits to
CLAIMED_FIELDS = {"instrument": "instrument", "style": "style", "tempo": "tempo_band", "key": "key", "mode": "mode",
                  "meter": "meter", "dynamics": "dynamics", "composer": "composer"}
STYLES = tuple(COLLECTIONS[c].style for c in DEFAULT_COLLECTIONS)
# one zero-shot prompt per value of each attribute the card measures, in the captions' own words
ZERO_SHOT = {
    "instrument": {name: f"a piece played on {i.words[0]}" for name, i in INSTRUMENTS.items()},
    "tempo_band": {band: f"a {TEMPO_WORDS[band][0]} piece" for band in TEMPO_BANDS},
    "mode": {mode: f"a {mode}-key piece" for mode in ("major", "minor")},
    "style": {style: style for style in STYLES},
}


def describe_clip(spec: ScoreClip, rng: np.random.Generator) -> Description:
    """One caption of `spec` in a random phrasing, with the label values it claims."""
    caption = caption_of(asdict(spec), rng)
    return Description(caption.text, {claim: getattr(spec, CLAIMED_FIELDS[claim]) for claim in caption.claims})


def claims_hold(claims: dict, spec: ScoreClip) -> bool:
    """Whether every label value a caption claims is the clip's."""
    return all(getattr(spec, CLAIMED_FIELDS[claim]) == value for claim, value in claims.items())


WORLD_WORDING = Wording(describe_clip, claims_hold,
                        tuple(text for prompts in ZERO_SHOT.values() for text in prompts.values()))


@dataclass(frozen=True)
class WorldClap:
    clips: int = 720  # 60 per instrument
    codec: str = ""  # the round-trip codec's folder ("" = the shipped world codec)
    recipe: ClapRecipe = field(default_factory=lambda: ClapRecipe(seed=WORLD_CLAP_SEED, clips=720, epochs=30,
                                                                  degraded=0.3))


def train_world_clap(out: Path, world: WorldClap = WorldClap(), log=print) -> dict:
    """Render the world's training clips (train works, a share degraded), add codec round trips,
    train the CLAP into `out`; the recipe, loss history and minutes."""
    start = time.perf_counter()
    recipe = replace(world.recipe, clips=world.clips)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    rng = np.random.default_rng(recipe.seed)
    torch.manual_seed(recipe.seed)
    log(f"rendering {recipe.clips} clips × {recipe.seconds:g} s (seed {recipe.seed}, train works)")
    rendered = rendered_clips(recipe.clips, recipe.seed, recipe.seconds, "train", recipe.degraded)
    codec = MelVaeCodec(world.codec or str(DEFAULT_MODELS / "world_codec"))
    extractor = ClapFeatureExtractor(truncation="rand_trunc")
    examples = []
    for spec, audio in tqdm(rendered, desc="log-mel", unit="clip", leave=False):
        examples.append((spec, log_mel(audio, extractor)))
        if rng.random() < recipe.round_trip:
            examples.append((spec, log_mel(codec_round_trip(audio, codec), extractor)))
    trained = fit_clap(out, recipe, examples, WORLD_WORDING, extractor, rng, log)
    return trained | {"minutes": round((time.perf_counter() - start) / 60, 1)}


def measure_world_clap(model: Path, clips: int = 120, seed: int = JUDGE_EVAL_SEED) -> dict:
    """Zero-shot accuracy per attribute and own-vs-mismatched caption AUROC on `clips` renders of
    held-out works, through `load_transformers_clap` (the scorer's loader)."""
    held_out = rendered_clips(clips, seed, 10.0, "test")
    encoder = load_transformers_clap(str(model))
    audio = clap_embeddings(encoder, held_out)  # (clips, dim), unit norm
    specs = [spec for spec, _ in held_out]
    found: dict = {"clips": len(specs), "seed": seed}
    for attribute, prompts in ZERO_SHOT.items():
        values = list(prompts)
        predicted = np.argmax(audio @ encoder.embed_text([prompts[v] for v in values]).T, axis=1)
        truth = np.array([values.index(getattr(s, attribute)) for s in specs])
        counts = np.bincount(truth, minlength=len(values))
        found[attribute] = {"accuracy": round(float(np.mean(predicted == truth)), 4),
                            "balanced": round(float(np.mean([np.mean(predicted[truth == i] == i)
                                                             for i in range(len(values)) if counts[i]])), 4),
                            "most_common": round(float(counts.max() / counts.sum()), 4)}
    rng = np.random.default_rng([seed, 1])
    own = [describe_clip(s, rng).text for s in specs]
    other = []
    for s in specs:
        donors = [d for d in specs if d.instrument != s.instrument]
        other.append(describe_clip(donors[int(rng.integers(len(donors)))], rng).text)
    own_scores = np.sum(audio * encoder.embed_text(own), axis=1)
    other_scores = np.sum(audio * encoder.embed_text(other), axis=1)
    found["auroc_mismatched_instrument"] = round(auroc(own_scores, other_scores), 4)
    return found


def build_world_clap(out: Path, world: WorldClap = WorldClap(), eval_clips: int = 120, log=print) -> dict:
    """Train the CLAP into `out`, measure it on held-out renders, write its card (``WORLD_CLAP.json``)."""
    trained = train_world_clap(out, world, log)
    card = {"command": COMMAND, "recipe": asdict(replace(world.recipe, clips=world.clips)),
            "minutes": trained["minutes"], "examples": trained["examples"], "history": trained["history"]}
    return write_card(out, CARD, card, eval_clips, lambda: measure_world_clap(out, eval_clips), log)


def describe_card(card: dict) -> list[str]:
    """The card's figures as summary lines."""
    lines = [f"trained on {card['examples']} examples in {card['minutes']} min "
             f"(final loss {card['history'][-1]['loss']:.3f})"]
    measured = card.get("measured")
    if measured:
        for attribute in ZERO_SHOT:
            m = measured[attribute]
            lines.append(f"{attribute.replace('_', ' ')}: zero-shot {m['accuracy']:.3f} (balanced {m['balanced']:.3f}, "
                         f"most common label {m['most_common']:.3f})")
        lines.append(f"own caption vs another instrument's: AUROC {measured['auroc_mismatched_instrument']:.3f} "
                     f"on {measured['clips']} held-out renders")
    return lines
