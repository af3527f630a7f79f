"""Ways of describing a synthetic clip, each with the attributes it commits to.

The domain CLAP learns from many phrasings (metadata captions, tag lists, short prompts, the
captioners' verbose and concise styles, quality remarks); a text is a positive for every clip
whose attributes agree with what the text says, which is what `compatible` decides.
The captioners learn the two caption styles of `verbose_caption` and `concise_caption`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scoreaware.demo.synth import DEGRADATION_WORDS, GENRES, INSTRUMENT_WORDS, TEMPLATES, ClipSpec

GENRE_WORDS = {
    "rock": ("rock",), "electronic": ("electronic", "electronic dance", "EDM"), "ambient": ("ambient",),
    "jazz": ("jazz",), "classical": ("classical",), "folk": ("folk", "acoustic folk"),
    "hiphop": ("hiphop", "hip hop", "hip-hop"),
}
INSTRUMENT_SYNONYMS = {
    "guitar": ("guitar", "electric guitar", "acoustic guitar", "guitars"),
    "synth": ("lead synthesizer", "synth lead", "synthesizer"),
    "pad": ("warm synth pads", "synth pads", "pads"),
    "piano": ("piano", "keys", "grand piano"),
    "strings": ("strings", "string section", "violins"),
    "bass": ("bass", "bass line", "bass guitar"),
    "drums": ("drums", "a drum kit", "a beat", "percussion"),
}
NOUNS = ("track", "piece", "song", "tune", "composition")
CLEAN_WORDS = ("clean recording", "high quality", "well produced", "clear sound")


@dataclass(frozen=True)
class Description:
    """A text and what it claims: only the keys present are claimed."""

    text: str
    claims: dict = field(default_factory=dict, compare=False)


def _listed(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else words[0]


def _article(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def describe(spec: ClipSpec, rng: np.random.Generator) -> Description:
    """One random description of `spec` (its true attributes, whatever its metadata says)."""
    genre = _pick(rng, GENRE_WORDS[spec.genre])
    some = list(rng.permutation(spec.instruments)[: int(rng.integers(1, len(spec.instruments) + 1))])
    instruments = _listed([_pick(rng, INSTRUMENT_SYNONYMS[i]) for i in some])
    noun, mood = _pick(rng, NOUNS), spec.mood
    claims_g, claims_m, claims_i = {"genre": spec.genre}, {"mood": mood}, {"instruments": frozenset(some)}
    choices = [
        (f"{genre} music", claims_g),
        (_article(f"{genre} {noun}"), claims_g),
        (f"this is {_article(genre + ' ' + noun)}", claims_g),
        (f"{mood} {genre}", claims_g | claims_m),
        (_article(f"{mood} {genre} {noun} with {instruments}"), claims_g | claims_m | claims_i),
        (f"{genre} with {instruments}", claims_g | claims_i),
        (f"an instrumental {genre} {noun} featuring {instruments}", claims_g | claims_i),
        (f"{mood} music with {instruments}", claims_m | claims_i),
        (_article(f"{mood} {noun} with {instruments}"), claims_m | claims_i),
        (f"{genre}, {', '.join(INSTRUMENT_WORDS[i] for i in some)}, {mood}", claims_g | claims_m | claims_i),
        (f"{genre} at {spec.tempo} BPM", claims_g | {"tempo": spec.tempo}),
        (_article(f"{genre} {noun} in {spec.key} {spec.mode}"), claims_g | {"key": (spec.key, spec.mode)}),
        (TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(
            mood=mood, Mood=mood.capitalize(), genre=genre, tempo=spec.tempo, key=f"{spec.key} {spec.mode}",
            instruments=_listed([INSTRUMENT_WORDS[i] for i in spec.instruments])),
         claims_g | claims_m | {"instruments": frozenset(spec.instruments), "tempo": spec.tempo}),
        (verbose_caption(spec), claims_g | claims_m | {"instruments": frozenset(spec.instruments)}
         | _quality_claim(spec)),
        (concise_caption(spec), claims_g | claims_m | {"instruments": frozenset(spec.instruments)}),
    ]
    text, claims = choices[int(rng.integers(len(choices)))]
    claims = dict(claims)
    if "quality" not in claims:
        if spec.degradation and rng.random() < 0.7:
            text, claims["quality"] = f"{text}, {_pick(rng, DEGRADATION_WORDS[spec.degradation])}", spec.degradation
        elif not spec.degradation and rng.random() < 0.2:
            text, claims["quality"] = f"{text}, {_pick(rng, CLEAN_WORDS)}", "clean"
    if rng.random() < 0.15:  # the demo's generation prefix
        text = f"high quality instrumental music, {text}"
    return Description(text[0].upper() + text[1:], claims)


def _quality_claim(spec: ClipSpec) -> dict:
    return {"quality": spec.degradation or "clean"}


def compatible(claims: dict, spec: ClipSpec) -> bool:
    """Whether everything `claims` says holds for `spec`."""
    for key, value in claims.items():
        if key == "genre" and value != spec.genre:
            return False
        if key == "mood" and value != spec.mood:
            return False
        if key == "instruments" and not value <= set(spec.instruments):
            return False
        if key == "tempo" and abs(value - spec.tempo) > 4:
            return False
        if key == "key" and value != (spec.key, spec.mode):
            return False
        if key == "quality" and value != (spec.degradation or "clean"):
            return False
    return True


LEADS = {"guitar": "a plucked guitar", "synth": "a bright lead synthesizer", "piano": "the piano",
         "strings": "the strings"}
CHORDS = {"guitar": "strummed guitar chords", "pad": "warm synth pads", "piano": "piano chords",
          "strings": "sustained strings"}
DRUM_WORDS = {"rock": "a driving rock beat", "electronic": "a four-on-the-floor kick",
              "jazz": "a swinging ride cymbal", "folk": "light percussion", "hiphop": "a boom bap beat"}
QUALITY_SENTENCES = {
    None: "The recording is clean.", "noise": "The recording has a lot of background hiss.",
    "clipping": "The sound is distorted by clipping.", "lowpass": "The sound is muffled and dull.",
    "hum": "An electrical hum sits under the music.", "dropouts": "The audio drops out now and then.",
}


def verbose_caption(spec: ClipSpec) -> str:
    """Stage 1's style: several sentences on genre, instruments, tempo, key, mood and the sound."""
    style = GENRES[spec.genre]
    lead, chords = LEADS[style["lead"]], CHORDS[style["chords"]]
    rhythm = f", over {DRUM_WORDS[spec.genre]}" if spec.genre in DRUM_WORDS else " with no drums"
    return (f"This is {_article(spec.mood)} {spec.genre} piece. {lead[0].upper() + lead[1:]} plays the melody over "
            f"{chords} and a bass line{rhythm}. The tempo is about {spec.tempo} BPM and the key is {spec.key} "
            f"{spec.mode}. {QUALITY_SENTENCES[spec.degradation]}")


def concise_caption(spec: ClipSpec) -> str:
    """Stage 2's style: one sentence naming genre, main instruments, tempo feel and mood."""
    feel = "fast" if spec.tempo >= 120 else "mid-tempo" if spec.tempo >= 90 else "slow"
    words = _listed([INSTRUMENT_WORDS[i] for i in spec.instruments])
    return f"{_article(spec.mood).capitalize()} {spec.genre} track with {words}, {feel} at {spec.tempo} BPM."
