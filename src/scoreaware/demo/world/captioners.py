"""The world's captioners: the tiny Qwen2-Audio (stage 1) and Qwen2 (stage 2) recipe on world renders.

The synthetic world's captioners write genres and oscillator instruments. These learn, from
exactly the prompts `curate caption` sends, to write what a render of a work holds:

* stage 1 hears a clip and writes `verbose_caption`: tempo, style, key and mode, meter and BPM,
  the instrument and how it is played, and how the recording sounds. The tags in its prompt are
  the true ones, none, or another instrument's, so it learns to listen rather than copy them;
* stage 2 turns a verbose text (and tags) into `concise_caption`: tempo band, mode, style,
  instrument and BPM in one line.

Its card (`WORLD_CAPTIONERS.json`), on renders of held-out works through the transformers engine
`curate caption --engine transformers` runs: the share of stage-1 captions (prompted without
tags) naming the right instrument and the right tempo band, and of stage-2 captions keeping the
instrument their input named.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from scoreaware.core.weights import store_half
from scoreaware.curate.captioning.checks import caption_problems, clean
from scoreaware.curate.captioning.engines import ChatRequest, SamplingConfig, TransformersEngine
from scoreaware.curate.stages.caption import CaptionConfig, format_tags
from scoreaware.demo.domain.captioners import CaptionerRecipe, CaptionTexts, fit_captioners, maybe_degraded
from scoreaware.demo.domain.texts import QUALITY_SENTENCES
from scoreaware.demo.synth import SR
from scoreaware.demo.world.captions import DYNAMICS_WORDS, TEMPO_WORDS, article, caption_text, tags_of
from scoreaware.demo.world.catalog import COLLECTIONS
from scoreaware.demo.world.clips import JUDGE_EVAL_SEED, rendered_clips, write_card
from scoreaware.demo.world.corpus import ScoreClip, plan_corpus
from scoreaware.demo.world.render import INSTRUMENTS, TEMPO_BANDS

WORLD_CAPTIONERS_SEED = 309
CARD = "WORLD_CAPTIONERS.json"
COMMAND = "scoreaware demo train-world-captioners -o src/scoreaware/demo/default_models/world_captioners"
TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def verbose_caption(spec: ScoreClip) -> str:
    """Stage 1's style: several sentences on the music, the instrument and the recording."""
    instrument = INSTRUMENTS[spec.instrument].words[0]
    tempo, played = TEMPO_WORDS[spec.tempo_band][0], DYNAMICS_WORDS[spec.dynamics][1]
    return (f"This is {article(tempo)} {spec.style} in {spec.key} {spec.mode}, in {spec.meter} time at about "
            f"{spec.tempo_bpm} BPM. It is played {played} on {instrument}. {QUALITY_SENTENCES[spec.degradation]}")


def concise_caption(spec: ScoreClip) -> str:
    """Stage 2's style: one line naming tempo band, mode, style, instrument and BPM."""
    instrument = INSTRUMENTS[spec.instrument].words[0]
    tempo = TEMPO_WORDS[spec.tempo_band][0]
    return f"{article(tempo).capitalize()} {spec.mode}-key {spec.style} on {instrument}, {spec.tempo_bpm} BPM."


def prompt_tags(spec: ScoreClip, rng: np.random.Generator) -> str:
    """The {tags} of a prompt: true (40 %), none (40 %) or another instrument's (20 %)."""
    roll = rng.random()
    if roll < 0.4:
        return format_tags(tags_of(asdict(spec)))
    if roll < 0.8:
        return "none"
    others = [name for name in INSTRUMENTS if name != spec.instrument]
    return format_tags(tags_of(asdict(replace(spec, instrument=others[int(rng.integers(len(others)))]))))


WORLD_TEXTS = CaptionTexts(verbose_caption, concise_caption, prompt_tags,
                           caption_text)


def fill_labels(spec: ScoreClip, rng: np.random.Generator) -> None:
    """A planned clip's score labels for a text-only example (no score parsed): a random tonic and
    mode, and a degradation sentence 30 % of the time."""
    spec.key, spec.mode = TONICS[int(rng.integers(len(TONICS)))], ("major", "minor")[int(rng.integers(2))]
    maybe_degraded(spec, rng)


@dataclass(frozen=True)
class WorldCaptioners:
    # 1,440 renders, not 480: stage 1 named the instrument of held-out renders 0.983 of the time against
    # 0.433 (120 clips each, the same 12 epochs; 58 against 15 minutes)
    recipe: CaptionerRecipe = field(default_factory=lambda: CaptionerRecipe(clips=1440, seed=WORLD_CAPTIONERS_SEED))


def train_world_captioners(out: Path, world: WorldCaptioners = WorldCaptioners(), log=print) -> dict:
    """Render the stage-1 clips (train works, a share degraded), plan the stage-2 texts, train both."""
    start = time.perf_counter()
    recipe = world.recipe
    log(f"rendering {recipe.clips} clips × {recipe.seconds:g} s (seed {recipe.seed}, train works)")
    clips = rendered_clips(recipe.clips, recipe.seed, recipe.seconds, "train", recipe.degraded)
    rewrite_specs = plan_corpus(recipe.rewrite_examples, recipe.seed + 1, degraded=0.0, mismatched=0.0)
    trained = fit_captioners(out, recipe, [spec for spec, _ in clips], clips, rewrite_specs, WORLD_TEXTS,
                             fill_labels, log)
    return trained | {"minutes": round((time.perf_counter() - start) / 60, 1)}


def _named(text: str, words_of: dict[str, tuple[str, ...]], value: str) -> bool:
    """Whether `text` names `value` (one of its words) and no other value of the attribute."""
    lower = text.lower().replace("moderate volume", "")  # a dynamics phrase, not a tempo
    for style in STYLE_NAMES:  # "Irish fiddle tune" names a style, not the violin
        lower = lower.replace(style, "")

    def says(key: str) -> bool:
        return any(word.lower() in lower for word in words_of[key])

    return says(value) and not any(says(other) for other in words_of if other != value)


STYLE_NAMES = tuple(c.style.lower() for c in COLLECTIONS.values())
INSTRUMENT_WORDS = {name: instrument.words for name, instrument in INSTRUMENTS.items()}
TEMPO_BAND_WORDS = {band: TEMPO_WORDS[band] for band in TEMPO_BANDS}


def instrument_named(text: str, instrument: str) -> bool:
    """Whether `text` names `instrument` and no other (a style such as "Irish fiddle tune" is not a violin)."""
    return _named(text, INSTRUMENT_WORDS, instrument)


def measure_world_captioners(out: Path, clips: list[tuple[ScoreClip, np.ndarray]], max_tokens: int = 96) -> dict:
    """Stage 1 on `clips` prompted without tags, stage 2 on its outputs, through the transformers
    engine: instrument and tempo band named right, checks passed, instrument kept."""
    sampling = SamplingConfig(max_tokens=max_tokens)
    audio_cfg, rewrite_cfg = CaptionConfig(stage="audio"), CaptionConfig(stage="rewrite")
    listener = TransformersEngine(str(out / "qwen2_audio"), audio=True)
    requests = [ChatRequest(spec.id, audio_cfg.system_prompt, audio_cfg.user_prompt.format(tags="none"), (audio, SR))
                for spec, audio in clips]
    verbose = [clean(t) if isinstance(t, str) else "" for t in listener.generate(requests, sampling)]
    rewriter = TransformersEngine(str(out / "qwen2"))
    requests = [ChatRequest(spec.id, rewrite_cfg.system_prompt,
                            rewrite_cfg.user_prompt.format(caption_verbose=text, tags="none"))
                for text, (spec, _) in zip(verbose, clips)]
    concise = [clean(t) if isinstance(t, str) else "" for t in rewriter.generate(requests, sampling)]
    specs = [spec for spec, _ in clips]
    said = [next((name for name in INSTRUMENTS if _named(v, INSTRUMENT_WORDS, name)), None) for v in verbose]
    kept = [_named(c, INSTRUMENT_WORDS, name) for c, name in zip(concise, said) if name is not None]
    return {"clips": len(clips),
            "stage1_instrument_named": float(np.mean([_named(v, INSTRUMENT_WORDS, s.instrument)
                                                      for v, s in zip(verbose, specs)])),
            "stage1_tempo_band_named": float(np.mean([_named(v, TEMPO_BAND_WORDS, s.tempo_band)
                                                      for v, s in zip(verbose, specs)])),
            "stage1_checks_passed": float(np.mean([not caption_problems(t, 400) for t in verbose])),
            "stage2_instrument_named": float(np.mean([_named(c, INSTRUMENT_WORDS, s.instrument)
                                                      for c, s in zip(concise, specs)])),
            "stage2_instrument_kept": float(np.mean(kept)) if kept else 0.0,
            "stage2_checks_passed": float(np.mean([not caption_problems(t) for t in concise])),
            "stage1_examples": verbose[:3], "stage2_examples": concise[:3]}


def build_world_captioners(out: Path, world: WorldCaptioners = WorldCaptioners(), eval_clips: int = 120,
                           log=print) -> dict:
    """Train both stages into `out`, measure them on held-out renders, write the card."""
    trained = train_world_captioners(out, world, log)
    for stage in ("qwen2_audio", "qwen2"):
        store_half(out / stage)  # shipped in float16, measured as stored
    card = {"command": COMMAND, "recipe": asdict(world.recipe), "minutes": trained["minutes"], "stored": "float16",
            "final_loss_stage1": trained["audio_history"][-1]["loss"],
            "final_loss_stage2": trained["rewrite_history"][-1]["loss"]}
    return write_card(out, CARD, card, eval_clips, lambda: measure_world_captioners(
        out, rendered_clips(eval_clips, JUDGE_EVAL_SEED, 10.0, "test")), log)


def describe_card(card: dict) -> list[str]:
    lines = [f"trained in {card['minutes']} min (final losses: stage 1 {card['final_loss_stage1']:.3f}, "
             f"stage 2 {card['final_loss_stage2']:.3f})"]
    m = card.get("measured")
    if m:
        lines += [f"stage 1 (no tags): instrument named right {m['stage1_instrument_named']:.3f}, tempo band "
                  f"{m['stage1_tempo_band_named']:.3f}, checks passed {m['stage1_checks_passed']:.3f}",
                  f"stage 2: instrument named right {m['stage2_instrument_named']:.3f}, kept from its input "
                  f"{m['stage2_instrument_kept']:.3f}, checks passed {m['stage2_checks_passed']:.3f} "
                  f"on {m['clips']} held-out renders"]
    return lines
