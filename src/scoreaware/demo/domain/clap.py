"""The domain CLAP: a small `transformers` `ClapModel` trained contrastively on the synthetic corpus.

Saved with `save_pretrained` (model + `ClapProcessor`), so `curate score clap --model DIR` loads
it exactly as it loads `laion/larger_clap_music`. The audio side is HTSAT (as in the released
model) over the 48 kHz log-mel of a 10 s window; the text side is CLAP's RoBERTa-style encoder
with a WordPiece vocabulary learned from the descriptions (the BERT vocabulary alone would be
30k × width parameters, several times the model).

Training is CLIP's symmetric cross-entropy with multi-positive targets: a text is a positive for
every clip in the batch whose attributes agree with what it says (`texts.compatible`), so
"rock music" does not push two rock clips apart. Each epoch sees a random 10 s crop of every
clip and a random description; a quarter of the clips also appear after a round trip through
the demo generator's mel codec, so generated clips are scored for what they contain rather
than for their Griffin-Lim phase.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import BertWordPieceTokenizer
from tqdm import tqdm
from transformers import BertTokenizerFast, ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor
from transformers.models.clap.configuration_clap import ClapAudioConfig, ClapTextConfig

from scoreaware.curate.scoring.audio import resampler
from scoreaware.curate.scoring.clap import ClapLogMel
from scoreaware.demo.domain.corpus import TRAIN_SEEDS, mel_round_trip, rendered, training_specs
from scoreaware.demo.domain.texts import compatible, describe
from scoreaware.demo.synth import GENRES, SR, ClipSpec

CLAP_RATE = 48_000
WINDOW_FRAMES = 1001  # 10 s at hop 480, as the feature extractor makes them


@dataclass(frozen=True)
class ClapRecipe:
    clips: int = 840  # 120 per genre
    seconds: float = 13.0  # rendered length; training crops 10 s windows from it
    degraded: float = 0.35
    round_trip: float = 0.25
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    vocab_size: int = 1000
    text_hidden: int = 128
    text_layers: int = 2
    audio_patch: int = 16
    audio_depths: tuple[int, ...] = (1, 1, 1, 1)
    audio_heads: tuple[int, ...] = (1, 2, 2, 4)
    audio_hidden: int = 128
    projection_dim: int = 128
    seed: int = TRAIN_SEEDS["clap"]
    threads: int = field(default=0, compare=False)  # 0: torch's default


def log_mel(audio: np.ndarray, extractor) -> np.ndarray:
    """(frames, 64) log-mel of mono 44.1 kHz `audio` with the CLAP extractor's arithmetic at 48 kHz
    (`curate.scoring.clap.ClapLogMel`, the scorer's own), over the whole clip."""

    with torch.inference_mode():
        resampled = resampler(SR, CLAP_RATE)(torch.from_numpy(audio)).numpy()
    features = ClapLogMel(extractor, fusion=False)
    features.max_length = resampled.shape[-1]
    return features([resampled])["input_features"][0, 0].numpy()


def make_tokenizer(texts: list[str], directory: Path, vocab_size: int):
    """A lower-cased WordPiece tokenizer learned from `texts`, as a `BertTokenizerFast`."""

    directory.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1,
                                  special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    wordpiece.save_model(str(directory))
    # from_pretrained, not BertTokenizerFast(vocab_file=...): transformers 5 ignores that argument and
    # builds a 5-token vocabulary in which every word is [UNK]
    tokenizer = BertTokenizerFast.from_pretrained(directory, do_lower_case=True)
    if len(tokenizer) < min(vocab_size, 50):
        raise RuntimeError(f"the CLAP tokenizer has only {len(tokenizer)} tokens")
    return tokenizer


def build_clap(recipe: ClapRecipe, tokenizer):
    text = ClapTextConfig(vocab_size=len(tokenizer), hidden_size=recipe.text_hidden,
                          num_hidden_layers=recipe.text_layers, num_attention_heads=max(1, recipe.text_hidden // 64),
                          intermediate_size=2 * recipe.text_hidden, max_position_embeddings=80,
                          pad_token_id=tokenizer.pad_token_id, projection_dim=recipe.projection_dim)
    audio = ClapAudioConfig(depths=list(recipe.audio_depths), num_attention_heads=list(recipe.audio_heads),
                            patch_embeds_hidden_size=recipe.audio_patch, hidden_size=recipe.audio_hidden,
                            projection_dim=recipe.projection_dim, enable_fusion=False)
    config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(),
                        projection_dim=recipe.projection_dim)
    return ClapModel(config)


def soft_clip_loss(audio: torch.Tensor, text: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor
                   ) -> torch.Tensor:
    """Symmetric cross-entropy of (B, D) unit embeddings against a (B audio, B text) 0/1 positives
    matrix (each row and column has its own pair at least), targets uniform over positives."""
    logits = scale * audio @ text.T  # (B audio, B text)
    a2t = positives / positives.sum(1, keepdim=True)
    t2a = positives.T / positives.T.sum(1, keepdim=True)
    loss_a = -(a2t * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(t2a * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_a + loss_t) / 2


@dataclass(frozen=True)
class Wording:
    """How a world describes its clips to the CLAP. `describe(spec, rng)` returns one random
    description (an object with `.text` and `.claims`); `compatible(claims, spec)` says whether
    everything a description claims holds for another clip, so it is a positive for that clip too."""

    describe: Callable[[Any, np.random.Generator], Any]
    compatible: Callable[[Any, Any], bool]
    extra_texts: tuple[str, ...] = ()  # texts the tokenizer must know beyond the descriptions


SYNTHETIC_WORDING = Wording(describe, compatible,
                            tuple(f"{g} music" for g in GENRES) + tuple(f"This is a {g} track." for g in GENRES))


def train_clap(out: Path, recipe: ClapRecipe = ClapRecipe(), log=print) -> dict:
    """Render the synthetic training corpus, train, save model + processor to `out`; the loss history."""

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    rng = np.random.default_rng(recipe.seed)
    torch.manual_seed(recipe.seed)
    specs = training_specs(recipe.clips, recipe.seed, recipe.degraded)
    extractor = ClapFeatureExtractor(truncation="rand_trunc")
    log(f"rendering {len(specs)} clips × {recipe.seconds:g} s (seed {recipe.seed}) and their log-mels")
    clips: list[tuple[ClipSpec, np.ndarray]] = []

    for spec, audio in tqdm(rendered(specs, recipe.seconds, recipe.seed), total=len(specs), desc="render",
                            unit="clip", leave=False):
        clips.append((spec, log_mel(audio, extractor)))
        if rng.random() < recipe.round_trip:
            clips.append((spec, log_mel(mel_round_trip(audio), extractor)))
    return fit_clap(out, recipe, clips, SYNTHETIC_WORDING, extractor, rng, log)


def fit_clap(out: Path, recipe: ClapRecipe, clips: list[tuple[Any, np.ndarray]], wording: Wording, extractor,
             rng: np.random.Generator, log=print) -> dict:
    """Train a CLAP on `clips` [(spec, (frames ≥ 1001, 64) log-mel)] described by `wording`; save the
    model and its processor to `out`. Returns the recipe, the loss history and the example count."""

    texts = [wording.describe(spec, rng).text for spec, _ in clips for _ in range(20)]
    texts += list(wording.extra_texts)
    tokenizer = make_tokenizer(texts, out / "_wordpiece", recipe.vocab_size)
    model = build_clap(recipe, tokenizer).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * math.ceil(len(clips) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=steps, pct_start=0.05)
    history = []
    log(f"training: {len(clips)} examples, {recipe.epochs} epochs of batch {recipe.batch_size} ({steps} steps), "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    for epoch in range(recipe.epochs):
        order, losses = rng.permutation(len(clips)), []
        for start in range(0, len(order) - 1, recipe.batch_size):
            batch = [clips[i] for i in order[start: start + recipe.batch_size]]
            if len(batch) < 2:
                continue
            crops = []
            for _, mel in batch:
                offset = int(rng.integers(0, mel.shape[0] - WINDOW_FRAMES + 1))
                crops.append(mel[offset: offset + WINDOW_FRAMES])
            descriptions = [wording.describe(spec, rng) for spec, _ in batch]
            positives = torch.tensor([[wording.compatible(d.claims, spec) for d in descriptions] for spec, _ in batch],
                                     dtype=torch.float32)
            tokens = tokenizer([d.text for d in descriptions], padding=True, truncation=True, max_length=77,
                               return_tensors="pt")
            audio = model.get_audio_features(input_features=torch.from_numpy(np.stack(crops))[:, None],
                                             is_longer=torch.zeros(len(batch), 1, dtype=torch.bool)).pooler_output
            text = model.get_text_features(**tokens).pooler_output
            scale = model.logit_scale_a.exp().clamp(max=100)
            loss = soft_clip_loss(F.normalize(audio, dim=-1), F.normalize(text, dim=-1), positives, scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
        log(f"  epoch {epoch + 1}/{recipe.epochs}: loss {history[-1]['loss']:.4f}")
    model.eval()
    model.save_pretrained(out)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)

    shutil.rmtree(out / "_wordpiece", ignore_errors=True)
    return {"recipe": asdict(recipe), "history": history, "examples": len(clips)}
