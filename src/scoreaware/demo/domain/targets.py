"""The embedded models' targets, measured on a fresh corpus through the loaders the real models use.

* CLAP (`curate.scoring.clap.load_transformers_clap`): AUROC of `clap_score` for a clip's own
  caption against a caption of another genre's clip (target ≥ 0.9), and zero-shot genre
  accuracy over the 7 genres with the prompt "{genre} music" (target ≥ 0.8).
* Reward (`curate.scoring.reward.load_reward` + the MERT loader): pairwise accuracy on clean vs
  degraded versions of the same clip and on matched vs mismatched captions (target ≥ 0.85).
* Codec (`train.codecs.MelVaeCodec`, the loader `train encode --codec mel-vae` runs): the genre the
  domain CLAP hears in reconstructions at ≥ 0.95 of its rate on the originals, and the reward
  ranking reconstructions as it ranks the originals (Spearman ≥ 0.8).
* Captioners (`curate.captioning.engines.TransformersEngine`, the engine `curate caption` runs):
  stage-1 captions that name the clip's genre (target ≥ 0.6); stage-2 outputs that pass the
  output checks (≥ 0.9) and keep the genre word of their input.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import mannwhitneyu, spearmanr

from scoreaware.curate.captioning.checks import caption_problems, clean
from scoreaware.curate.captioning.engines import ChatRequest, SamplingConfig, TransformersEngine
from scoreaware.curate.scoring.audio import resampler
from scoreaware.curate.scoring.clap import load_transformers_clap
from scoreaware.curate.scoring.reward import assemble_features, load_mert, load_reward, score_features
from scoreaware.curate.stages.caption import CaptionConfig, format_tags
from scoreaware.demo.domain.corpus import codec_round_trip, rendered, training_specs
from scoreaware.demo.domain.texts import GENRE_WORDS
from scoreaware.demo.synth import DEGRADATIONS, GENRES, SR, ClipSpec, caption_of, degrade, normalize, tags_of
from scoreaware.train.codecs import MelCodec, MelVaeCodec

EVAL_SEED = 201  # the fresh corpus the shipped numbers are measured on; tests use another
GENRE_PROMPT = "{genre} music"


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U / n₁n₂)."""
    u = mannwhitneyu(positives, negatives, alternative="two-sided").statistic
    return float(u / (len(positives) * len(negatives)))


def windows_48k(clips: list[tuple[ClipSpec, np.ndarray]]) -> list[np.ndarray]:
    """The first 10 s of each clip at 48 kHz (the scorer's resampler and window)."""

    with torch.inference_mode():
        return [resampler(SR, 48_000)(torch.from_numpy(a)).numpy()[: 480_000] for _, a in clips]


def clap_embeddings(encoder, clips: list[tuple[ClipSpec, np.ndarray]], batch: int = 16) -> np.ndarray:
    """(clips, dim) audio embeddings of the clips' first 10 s by a loaded CLAP `encoder`."""
    windows = windows_48k(clips)
    return np.concatenate([encoder.embed_audio(encoder.preprocessor(windows[i: i + batch]))
                           for i in range(0, len(windows), batch)])


def measure_clap(model: str, clips: list[tuple[ClipSpec, np.ndarray]], seed: int) -> dict:
    """AUROC of own vs mismatched caption and zero-shot genre accuracy (with the confusion)."""

    encoder = load_transformers_clap(model)
    audio = clap_embeddings(encoder, clips)
    rng = np.random.default_rng(seed)
    specs = [spec for spec, _ in clips]
    own = [caption_of(spec, rng) for spec in specs]
    other = []
    for spec in specs:
        donors = [s for s in specs if s.genre != spec.genre]
        other.append(caption_of(donors[int(rng.integers(len(donors)))], rng))
    own_scores = np.sum(audio * encoder.embed_text(own), axis=1)
    other_scores = np.sum(audio * encoder.embed_text(other), axis=1)
    genres = list(GENRES)
    prompts = encoder.embed_text([GENRE_PROMPT.format(genre=g) for g in genres])
    predicted = np.argmax(audio @ prompts.T, axis=1)
    truth = np.array([genres.index(s.genre) for s in specs])
    confusion = np.zeros((len(genres), len(genres)), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    clean = np.array([s.degradation is None for s in specs])
    return {"clips": len(specs), "auroc": auroc(own_scores, other_scores),
            "genre_accuracy": float(np.mean(predicted == truth)),
            "genre_accuracy_clean": float(np.mean((predicted == truth)[clean])),
            "genres": genres, "confusion": confusion.tolist(),
            "mean_clap_own": float(own_scores.mean()), "mean_clap_mismatched": float(other_scores.mean())}


def fresh_clips(seed: int, clips: int, seconds: float = 10.0, degraded: float = 0.3):
    """A fresh corpus of `seed` rendered in memory: [(spec, mono 44.1 kHz audio)]."""
    specs = training_specs(clips, seed, degraded)
    return list(rendered(specs, seconds, seed))


def genre_named(text: str, genre: str) -> bool:
    """Whether `text` names `genre` (any of its spellings) and no other genre."""

    lowered = text.lower()

    def says(g: str) -> bool:
        return any(word.lower() in lowered for word in GENRE_WORDS[g])

    return says(genre) and not any(says(g) for g in GENRES if g != genre)


def measure_reward(models: Path, clips: list[tuple[ClipSpec, np.ndarray]], seed: int, *, reward: Path | None = None,
                   clap: Path | None = None, caption: Callable = caption_of,
                   differ: Callable = lambda a, b: a.genre != b.genre) -> dict:
    """Accuracy of the shipped reward on pairs with a known answer, scored as `curate score
    reward` scores (CLAP audio + MERT + CLAP caption text, the head in eval mode).

    `reward` and `clap` default to the ones in `models`; `caption(spec, rng)` writes a clip's
    caption and `differ(a, b)` says that a's caption does not describe b (another genre here)."""

    rng = np.random.default_rng(seed)
    head = load_reward(reward or models / "reward.pt")
    mert = load_mert(str(models / "mert"))
    kinds = list(DEGRADATIONS)
    clean = list(clips)
    damaged, labels = [], []
    for index, (spec, audio) in enumerate(clean):
        kind, strength = kinds[index % len(kinds)], 1 + (index // len(kinds)) % 3
        damaged.append((spec, normalize(degrade(audio[None], kind, strength, rng), spec.target_lufs)[0]
                        .astype(np.float32)))
        labels.append((kind, strength))
    encoder = load_transformers_clap(str(clap or models / "clap"))
    clean_clap, damaged_clap = clap_embeddings(encoder, clean), clap_embeddings(encoder, damaged)
    captions = [caption(spec, rng) for spec, _ in clean]
    text = encoder.embed_text(captions)

    clean_mert, damaged_mert = mert_embeddings(mert, clean), mert_embeddings(mert, damaged)
    r_clean = score_features(head, assemble_features(clean_clap, clean_mert, text))
    r_damaged = score_features(head, assemble_features(damaged_clap, damaged_mert, text))
    # caption pairs: under clip i's caption, clip i against a clip its caption does not describe
    others = [next(j for j in np.roll(np.arange(len(clean)), -i - 1) if differ(clean[i][0], clean[j][0]))
              for i in range(len(clean))]
    r_mismatched = score_features(head, assemble_features(clean_clap[others], clean_mert[others], text))
    wins = r_clean > r_damaged
    by_kind = {f"{k}{s}": float(np.mean([w for w, lab in zip(wins, labels) if lab == (k, s)]))
               for k in kinds for s in (1, 2, 3) if (k, s) in labels}
    caption_wins = r_clean > r_mismatched
    return {"clips": len(clean), "accuracy": float(np.mean(np.concatenate([wins, caption_wins]))),
            "clean_above_degraded": float(np.mean(wins)), "auroc_clean_degraded": auroc(r_clean, r_damaged),
            "matched_above_mismatched": float(np.mean(caption_wins)),
            "clean_above_degraded_by_kind": by_kind}


def round_trip(codec, clips: list[tuple[ClipSpec, np.ndarray]]) -> list[tuple[ClipSpec, np.ndarray]]:
    """Each clip through `codec` (encode, decode) and back to 44.1 kHz, at its own length."""
    return [(spec, codec_round_trip(audio, codec)) for spec, audio in clips]


def mert_embeddings(mert, clips: list[tuple[ClipSpec, np.ndarray]]) -> np.ndarray:
    """(clips, dim) features of a loaded MERT, each clip resampled to its rate."""
    with torch.inference_mode():
        return mert.embed([resampler(SR, mert.sampling_rate)(torch.from_numpy(a)).numpy() for _, a in clips])


def round_trip_scorer(models: Path, clips: list[tuple[ClipSpec, np.ndarray]], seed: int):
    """`score(items) -> (genre heard rate, (clips,) rewards)` for `clips` or any round trip of them
    (same order): the shipped CLAP's "{genre} music" prompts and the reward (CLAP audio + MERT +
    each clip's own caption, drawn from `seed` and its id), the models loaded once."""
    encoder = load_transformers_clap(str(models / "clap"))
    head, mert = load_reward(models / "reward.pt"), load_mert(str(models / "mert"))
    genres = list(GENRES)
    prompts = encoder.embed_text([GENRE_PROMPT.format(genre=g) for g in genres])
    truth = np.array([genres.index(spec.genre) for spec, _ in clips])
    text = encoder.embed_text([caption_of(spec, np.random.default_rng([seed, int(spec.id)])) for spec, _ in clips])

    def score(items: list[tuple[ClipSpec, np.ndarray]]) -> tuple[float, np.ndarray]:
        audio = clap_embeddings(encoder, items)
        reward = score_features(head, assemble_features(audio, mert_embeddings(mert, items), text))
        return float(np.mean(np.argmax(audio @ prompts.T, axis=1) == truth)), reward

    return score


def measure_codec(models: Path, clips: list[tuple[ClipSpec, np.ndarray]], seed: int) -> dict:
    """Genre heard and reward rank of `clips` against their round trips through the shipped
    mel-vae codec (and through the plain mel codec, to show what Griffin-Lim alone costs)."""

    heard_and_reward = round_trip_scorer(models, clips, seed)
    codec = MelVaeCodec(str(models / "codec"))
    genre_original, reward_original = heard_and_reward(clips)
    genre_mel, reward_mel = heard_and_reward(round_trip(MelCodec(), clips))
    genre_vae, reward_vae = heard_and_reward(round_trip(codec, clips))
    return {"clips": len(clips), "latent_rate": codec.latent_rate, "latent_channels": codec.channels,
            "genre_original": genre_original, "genre_mel": genre_mel, "genre_reconstructed": genre_vae,
            "genre_ratio": genre_vae / genre_original if genre_original else None,
            "reward_spearman": float(spearmanr(reward_original, reward_vae).statistic),
            "reward_spearman_mel": float(spearmanr(reward_original, reward_mel).statistic),
            "reward_mean_original": float(np.mean(reward_original)), "reward_mean_reconstructed":
            float(np.mean(reward_vae))}


def measure_captioners(models: Path, clips: list[tuple[ClipSpec, np.ndarray]], max_tokens: int = 96) -> dict:
    """Stage 1 heard without tags (does it listen?) and with the true tags; stage 2 on stage 1's
    outputs: checks passed and the genre word kept. Through the transformers engine."""

    sampling = SamplingConfig(max_tokens=max_tokens)
    audio_cfg, rewrite_cfg = CaptionConfig(stage="audio"), CaptionConfig(stage="rewrite")
    listener = TransformersEngine(str(models / "qwen2_audio"), audio=True)
    results = {}
    verbose_untagged = []
    for name, tagged in (("untagged", False), ("tagged", True)):
        requests = []
        for spec, audio in clips:
            tags = format_tags(tags_of(spec)) if tagged else "none"
            requests.append(ChatRequest(spec.id, audio_cfg.system_prompt, audio_cfg.user_prompt.format(tags=tags),
                                        (audio, SR)))
        texts = [clean(t) if isinstance(t, str) else "" for t in listener.generate(requests, sampling)]
        named = [genre_named(text, spec.genre) for text, (spec, _) in zip(texts, clips)]
        results[f"stage1_genre_accuracy_{name}"] = float(np.mean(named))
        results[f"stage1_checks_passed_{name}"] = float(np.mean([not caption_problems(t, 400) for t in texts]))
        if not tagged:
            verbose_untagged = texts
    results["stage1_examples"] = verbose_untagged[:3]
    rewriter = TransformersEngine(str(models / "qwen2"))
    requests = [ChatRequest(spec.id, rewrite_cfg.system_prompt,
                            rewrite_cfg.user_prompt.format(caption_verbose=verbose, tags="none"))
                for verbose, (spec, _) in zip(verbose_untagged, clips)]
    concise = [clean(t) if isinstance(t, str) else "" for t in rewriter.generate(requests, sampling)]
    passed = [not caption_problems(t) for t in concise]
    input_genres = [next((g for g in GENRES if genre_named(v, g)), None) for v in verbose_untagged]
    kept = [genre_named(c, g) for c, g in zip(concise, input_genres) if g is not None]
    results.update(stage2_checks_passed=float(np.mean(passed)), stage2_genre_kept=float(np.mean(kept)) if kept
                   else 0.0, stage2_examples=concise[:3], clips=len(clips))
    return results


def describe_targets(record: dict) -> list[str]:
    """The measured targets as lines (what the README and the summary print)."""
    found, lines = record.get("targets", {}), []
    if "clap" in found:
        c = found["clap"]
        lines.append(f"CLAP: own vs mismatched caption AUROC {c['auroc']:.3f} (target ≥ 0.9); zero-shot genre "
                     f"accuracy {c['genre_accuracy']:.3f} (≥ 0.8) on {c['clips']} fresh clips")
    if "reward" in found:
        r = found["reward"]
        lines.append(f"reward: pairwise accuracy {r['accuracy']:.3f} (≥ 0.85): clean above degraded "
                     f"{r['clean_above_degraded']:.3f}, matched above mismatched caption "
                     f"{r['matched_above_mismatched']:.3f}")
    if "codec" in found:
        k = found["codec"]
        lines.append(f"codec: {k['latent_channels']} channels at {k['latent_rate']:.1f} Hz; the CLAP hears the "
                     f"genre in {k['genre_reconstructed']:.3f} of reconstructions vs {k['genre_original']:.3f} of "
                     f"originals (ratio {k['genre_ratio']:.3f}, target ≥ 0.95); reward rank correlation "
                     f"{k['reward_spearman']:.3f} (≥ 0.8; Griffin-Lim alone {k['reward_spearman_mel']:.3f})")
    if "captioners" in found:
        k = found["captioners"]
        lines.append(f"stage 1 names the genre {k['stage1_genre_accuracy_untagged']:.3f} without tags (≥ 0.6), "
                     f"{k['stage1_genre_accuracy_tagged']:.3f} with them; stage 2 passes the checks "
                     f"{k['stage2_checks_passed']:.3f} (≥ 0.9), keeps the genre {k['stage2_genre_kept']:.3f}")
    return lines
