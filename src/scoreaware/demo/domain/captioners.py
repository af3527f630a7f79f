"""Captioners that caption: a tiny Qwen2-Audio (stage 1) and a tiny Qwen2 (stage 2), trained here.

Both are saved as the released models are (weights in the released key layout, processor or
tokenizer with the ChatML template), so `curate caption --engine transformers|vllm --model DIR`
runs them unchanged. They learn from exactly the prompts `curate caption` sends
(`curate.stages.caption.build_request` with the packaged templates, `qwen_audio_prompt` /
`chat_prompt`, audio resampled by `resample_poly_to`):

* stage 1 hears a clip and writes the verbose description of its true attributes
  (`texts.verbose_caption`: genre, lead, chords, rhythm, tempo, key, mood, and how the
  recording sounds). The tags in its prompt are the true ones, none, or another genre's, so it
  learns to listen rather than to copy them;
* stage 2 turns a verbose description (and tags, again true, none or wrong) into the concise
  caption of the attributes the description names (`texts.concise_caption`).

Only the answer tokens are trained (the prompt, audio placeholders included, is masked).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from scoreaware.curate.captioning.engines import chat_prompt, qwen_audio_prompt, resample_poly_to
from scoreaware.curate.stages.caption import CaptionConfig, format_tags
from scoreaware.demo.domain.corpus import TRAIN_SEEDS, rendered, training_specs
from scoreaware.demo.domain.texts import concise_caption, describe, verbose_caption
from scoreaware.demo.synth import DEGRADATIONS, GENRES, SR, ClipSpec, plan_corpus, tags_of
from scoreaware.demo.tiny_models import (
    build_qwen2,
    build_qwen2_audio,
    make_chat_tokenizer,
    save_qwen2_audio,
    widen_audio_window,
)


@dataclass(frozen=True)
class CaptionerRecipe:
    clips: int = 560  # 80 per genre
    seconds: float = 10.0
    degraded: float = 0.3
    audio_epochs: int = 12
    audio_lr: float = 1e-3
    rewrite_examples: int = 3000
    rewrite_epochs: int = 3
    rewrite_lr: float = 2e-3
    batch_size: int = 8
    vocab_size: int = 1500
    hidden: int = 128
    layers: int = 2
    audio_width: int = 128
    audio_layers: int = 2
    audio_seconds: int = 10  # the encoder's window in training: the demo's segments are 10 s (see build_qwen2_audio)
    served_audio_seconds: int = 30  # the window it is saved with: the released one, which vLLM requires
    seed: int = TRAIN_SEEDS["captioners"]


@dataclass(frozen=True)
class CaptionTexts:
    """What a world's captioners learn to write: stage 1's `verbose(spec)` from audio, stage 2's
    `concise(spec)` from a verbose text; the {tags} a prompt carries (`prompt_tags(spec, rng)`: true,
    none or wrong); and `describe(spec, rng)`, more phrasings for the tokenizer to learn."""

    verbose: Callable[[Any], str]
    concise: Callable[[Any], str]
    prompt_tags: Callable[[Any, np.random.Generator], str]
    describe: Callable[[Any, np.random.Generator], str]


def prompt_tags(spec: ClipSpec, rng: np.random.Generator) -> str:
    """The {tags} of a prompt as `curate caption` formats them: true (40 %), none (40 %) or
    those of another genre (20 %)."""

    roll = rng.random()
    if roll < 0.4:
        return format_tags(tags_of(spec))
    if roll < 0.8:
        return "none"
    other = [g for g in GENRES if g != spec.genre][int(rng.integers(len(GENRES) - 1))]
    style = GENRES[other]
    instruments = list(dict.fromkeys([style["lead"], style["chords"], "bass", *(["drums"] if style["drums"] else [])]))
    return format_tags(tags_of(replace(spec, genre=other, instruments=instruments)))


def templates(stage: str) -> tuple[str, str]:
    config = CaptionConfig(stage=stage)
    return config.system_prompt, config.user_prompt


def tokenizer_corpus(specs: list, rng: np.random.Generator, texts: CaptionTexts | None = None) -> list[str]:
    texts = texts or SYNTHETIC_TEXTS
    corpus = []
    for stage in ("audio", "rewrite"):
        system, user = templates(stage)
        corpus += [system, user]
    for spec in specs:
        corpus += [texts.verbose(spec), texts.concise(spec), texts.prompt_tags(spec, rng), texts.describe(spec, rng)]
    return corpus


def _batches(n: int, size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for start in range(0, n, size):
        yield order[start: start + size]


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def audio_examples(processor, specs_audio, rng: np.random.Generator, texts: CaptionTexts | None = None
                   ) -> list[dict]:
    """Prompt ids, Whisper features and answer ids of every clip (the prompt as `curate caption`
    builds it for the audio stage)."""

    texts = texts or SYNTHETIC_TEXTS
    system, user = templates("audio")
    rate = processor.feature_extractor.sampling_rate
    examples = []
    for spec, audio in specs_audio:
        samples = resample_poly_to(audio, SR, rate)
        for _ in range(2):  # two prompts per clip (tags differ)
            inputs = processor(text=qwen_audio_prompt(system, user.format(tags=texts.prompt_tags(spec, rng))),
                               audio=[samples], sampling_rate=rate, return_tensors="pt")
            answer = processor.tokenizer(texts.verbose(spec) + "<|im_end|>", add_special_tokens=False)["input_ids"]
            examples.append({"prompt": inputs["input_ids"][0].tolist(), "answer": answer,
                             "features": inputs["input_features"][0].to(torch.float16),
                             "feature_mask": inputs["feature_attention_mask"][0]})
    return examples


def train_answers(model, examples: list[dict], pad: int, epochs: int, lr: float, batch_size: int, seed: int,
                  name: str, log) -> list[dict]:
    """Train `model` on prompt + answer token ids, the loss on the answer only (labels −100 on the
    prompt); examples with "features" also feed the audio encoder. One-cycle AdamW; the loss history."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(examples) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng(seed)
    history = []
    model.train()
    for epoch in range(epochs):
        losses = []
        for index in _batches(len(examples), batch_size, rng):
            batch = [examples[i] for i in index]
            ids = [e["prompt"] + e["answer"] for e in batch]
            labels = [[-100] * len(e["prompt"]) + e["answer"] for e in batch]
            inputs = dict(input_ids=_pad(ids, pad), attention_mask=_pad([[1] * len(r) for r in ids], 0),
                          labels=_pad(labels, -100))
            if "features" in batch[0]:
                inputs |= dict(input_features=torch.stack([e["features"] for e in batch]).float(),
                               feature_attention_mask=torch.stack([e["feature_mask"] for e in batch]))
            loss = model(**inputs).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
        log(f"  {name} epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.4f}")
    return history


def maybe_degraded(spec, rng: np.random.Generator) -> None:
    """A text-only example's degradation sentence: one of the five, at strength 2, 30 % of the time."""
    if rng.random() < 0.3:
        spec.degradation, spec.degradation_strength = list(DEGRADATIONS)[int(rng.integers(5))], 2


def rewrite_examples(tokenizer, specs: list, rng: np.random.Generator, texts: CaptionTexts | None = None,
                     vary: Callable[[Any, np.random.Generator], None] = maybe_degraded) -> list[dict]:
    """Verbose descriptions of attribute combinations (`specs`, each first changed in place by
    `vary`) → their concise captions."""

    texts = texts or SYNTHETIC_TEXTS
    system, user = templates("rewrite")
    examples = []
    for spec in specs:
        vary(spec, rng)
        prompt = chat_prompt(tokenizer, system.format(tags="", caption_verbose=""),
                             user.format(caption_verbose=texts.verbose(spec), tags=texts.prompt_tags(spec, rng)))
        examples.append({"prompt": tokenizer(prompt, add_special_tokens=False)["input_ids"],
                         "answer": tokenizer(texts.concise(spec) + "<|im_end|>", add_special_tokens=False)[
                             "input_ids"]})
    return examples


def train_captioners(out: Path, recipe: CaptionerRecipe = CaptionerRecipe(), log=print) -> dict:
    """Train both stages on the synthetic world; save them to `out/qwen2_audio` and `out/qwen2`."""

    specs = training_specs(recipe.clips, recipe.seed, recipe.degraded)
    clips = tqdm(rendered(specs, recipe.seconds, recipe.seed), total=len(specs), desc="render", unit="clip",
                 leave=False)
    rewrite_specs = plan_corpus(recipe.rewrite_examples, recipe.seed + 1, degraded=0.0)
    return fit_captioners(out, recipe, specs, clips, rewrite_specs, SYNTHETIC_TEXTS, maybe_degraded, log)


def fit_captioners(out: Path, recipe: CaptionerRecipe, specs: list, clips: Iterable[tuple[Any, np.ndarray]],
                   rewrite_specs: list, texts: CaptionTexts, vary: Callable[[Any, np.random.Generator], None],
                   log=print) -> dict:
    """Train stage 1 on `clips` [(spec, mono 44.1 kHz audio)] of `specs` and stage 2 on
    `rewrite_specs`, both writing `texts`; save them to `out/qwen2_audio` and `out/qwen2`; the
    loss histories."""

    rng = np.random.default_rng(recipe.seed)
    torch.manual_seed(recipe.seed)
    work = out / "_tokenizer"
    tokenizer = make_chat_tokenizer(work, recipe.vocab_size, corpus=tokenizer_corpus(specs, rng, texts))
    log(f"stage 1: rendering {len(specs)} clips × {recipe.seconds:g} s (seed {recipe.seed})")
    audio_model, processor = build_qwen2_audio(tokenizer, hidden=recipe.hidden, layers=recipe.layers,
                                               audio_width=recipe.audio_width, audio_layers=recipe.audio_layers,
                                               audio_seconds=recipe.audio_seconds)
    examples = audio_examples(processor, clips, rng, texts)
    log(f"stage 1: {len(examples)} examples, {sum(p.numel() for p in audio_model.parameters()) / 1e6:.2f}M "
        "parameters")
    audio_history = train_answers(audio_model, examples, processor.tokenizer.pad_token_id, recipe.audio_epochs,
                                  recipe.audio_lr, recipe.batch_size, recipe.seed, "stage 1", log)
    widen_audio_window(audio_model, processor, seconds=recipe.served_audio_seconds, seed=recipe.seed)
    save_qwen2_audio(audio_model.eval(), processor, out / "qwen2_audio")
    rewriter = build_qwen2(tokenizer, hidden=recipe.hidden, layers=recipe.layers)
    text_examples = rewrite_examples(tokenizer, rewrite_specs, rng, texts, vary)
    log(f"stage 2: {len(text_examples)} examples, {sum(p.numel() for p in rewriter.parameters()) / 1e6:.2f}M "
        "parameters")
    rewrite_history = train_answers(rewriter, text_examples, tokenizer.pad_token_id, recipe.rewrite_epochs,
                                    recipe.rewrite_lr, 2 * recipe.batch_size, recipe.seed + 2, "stage 2", log)
    rewriter.eval().save_pretrained(out / "qwen2")
    tokenizer.save_pretrained(out / "qwen2")

    shutil.rmtree(work, ignore_errors=True)
    return {"recipe": asdict(recipe), "audio_history": audio_history, "rewrite_history": rewrite_history}


SYNTHETIC_TEXTS = CaptionTexts(verbose_caption, concise_caption, prompt_tags,
                               lambda spec, rng: describe(spec, rng).text)
