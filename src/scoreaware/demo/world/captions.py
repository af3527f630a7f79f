"""Captions and tags of a rendered excerpt, written from its labels in several phrasings.

Every phrasing names the instrument; the others name some of style, tempo, key and mode,
meter, dynamics and composer, as people describing music do (a tag list, a prompt, a
catalogue line, a sentence). `claims` says which labels a text commits to, so a model trained
on them (the domain CLAP) can treat a text as a positive for every clip it describes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from scoreaware.demo.world.render import INSTRUMENTS

TEMPO_WORDS = {"slow": ("slow", "unhurried", "slow-paced"), "moderate": ("moderate", "steady", "mid-tempo"),
               "fast": ("fast", "lively", "brisk")}
DYNAMICS_WORDS = {"soft": ("softly", "quietly", "gently"), "medium": ("at a moderate volume", "evenly", "plainly"),
                  "loud": ("loudly", "boldly", "forcefully")}
NOUNS = ("piece", "tune", "excerpt", "rendition")


@dataclass(frozen=True)
class Caption:
    text: str
    claims: frozenset[str]  # the labels it names: instrument, style, tempo, key, mode, meter, dynamics, composer


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def article(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def caption_of(labels: dict, rng: np.random.Generator) -> Caption:
    """One caption of a clip with `labels` (a truth row: instrument, style, tempo_band, tempo_bpm,
    key, mode, meter, dynamics, composer), in a phrasing drawn from `rng`."""
    instrument = _pick(rng, INSTRUMENTS[labels["instrument"]].words)
    tempo = _pick(rng, TEMPO_WORDS[labels["tempo_band"]])
    dynamics = _pick(rng, DYNAMICS_WORDS[labels["dynamics"]])
    style, key, mode, meter = labels["style"], labels["key"], labels["mode"], labels["meter"]
    bpm, noun = labels["tempo_bpm"], _pick(rng, NOUNS)
    phrasings = [
        (f"{article(tempo)} {style} in {key} {mode}, played {dynamics} on {instrument}",
         {"tempo", "style", "key", "mode", "dynamics"}),
        (f"{style}, {instrument}, {tempo}, {mode} key", {"style", "tempo", "mode"}),
        (f"{instrument} plays {article(style)} at about {bpm} beats per minute in {key} {mode}",
         {"style", "tempo", "key", "mode"}),
        (f"{article(mode)}-key {style} for {instrument}, {tempo} and played {dynamics}",
         {"style", "mode", "tempo", "dynamics"}),
        (f"{instrument}: {article(style)} in {meter} time, {tempo} tempo", {"style", "meter", "tempo"}),
        (f"{article(tempo)} {mode}-key {noun} on {instrument}: {article(style)} by {labels['composer']}",
         {"tempo", "mode", "style", "composer"}),
        (f"{instrument}, {key} {mode}, {bpm} BPM, {meter}", {"key", "mode", "tempo", "meter"}),
    ]
    text, claims = phrasings[int(rng.integers(len(phrasings)))]
    return Caption(text[0].upper() + text[1:] + ".", frozenset(claims | {"instrument"}))


def caption_text(spec, rng: np.random.Generator) -> str:
    """A caption of a rendered clip (a `ScoreClip`, or any dataclass with its labels) in a random phrasing."""
    return caption_of(asdict(spec), rng).text


def prompt_of(labels: dict) -> str:
    """The evaluation prompt of an attribute combination: instrument, tempo band, mode and style, one
    fixed phrasing (the table compares checkpoints on the same words)."""
    instrument = INSTRUMENTS[labels["instrument"]].words[0]
    return f"{article(labels['tempo_band'])} {labels['style']} in a {labels['mode']} key, played on {instrument}"


def tags_of(labels: dict) -> list[str]:
    """Jamendo-style tags (``genre---...``) of the labels."""
    return [f"genre---{labels['style'].lower()}", f"instrument---{labels['instrument']}",
            f"mood/theme---{labels['tempo_band']}", f"mood/theme---{labels['mode']}",
            f"mood/theme---{labels['dynamics']}"]
