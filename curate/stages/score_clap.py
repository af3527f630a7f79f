"""Score CLAP: per-cut audio-text alignment, with the embeddings kept for later stages.

Decoding, resampling to 48 kHz mono, windowing and feature extraction run in DataLoader worker
processes while the main process runs the model on batches of windows. Text embeddings are
computed once per distinct caption. Each scored cut gains, in ``custom``:

* ``clap_score``: cosine of the L2-normalized audio and text embeddings, in [-1, 1]; empty
  (None) for a cut without a caption, whose audio is still embedded;
* ``clap_audio_emb`` / ``clap_text_emb``: the embeddings as Lhotse arrays (``cut.load_custom``),
  reused by the reward scorer, FAD and REPA targets instead of being recomputed.

Which field is scored is an option, so the same stage rescores after captioning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lhotse.cut import Cut
from lhotse.utils import fastcopy
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from scoreaware.core.arrays import ArrayStore, arrays_dir
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions, StageJob
from scoreaware.core.output import Rejection
from scoreaware.core.provenance import describe_input
from scoreaware.core.stage import (
    StagePlan,
    StageResult,
    drive,
    option,
    output_options,
    ray_line,
    recorded_options,
    run_stage,
    score_summary,
)
from scoreaware.curate.scoring.audio import mono_resampled, policy_windows
from scoreaware.curate.scoring.clap import DEFAULT_MODELS, ClapEncoder, load_clap, stack_inputs, weights_fingerprint
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, CLAP_SCORE, CLAP_TEXT_EMB
from scoreaware.schemas.validation import check_input, validate_manifest

STAGE = "clap"


@dataclass(frozen=True)
class ClapScoreConfig:
    """Options of the CLAP scoring stage (`curate score clap`'s options, one for one)."""

    backend: str = "transformers"  # transformers ClapModel, or laion_clap with a .pt checkpoint
    model: str | None = None  # None: the backend's default (DEFAULT_MODELS)
    amodel: str = "HTSAT-base"  # laion_clap's audio model
    caption_field: str = "caption"
    policy: str = "center"  # which 10 s window(s) of a longer cut: first, center, mean
    batch_size: int = option(16, changes_output=False)  # audio windows per model call
    workers: int = option(2, changes_output=False)  # DataLoader processes decoding audio
    device: str = option("cpu", changes_output=False)
    unsafe_pickle: bool = option(False, changes_output=False)

    def resolved(self) -> ClapScoreConfig:
        """The default model named, and the audio model only where the backend reads it."""
        return dataclasses.replace(self, model=self.model or DEFAULT_MODELS[self.backend],
                                   amodel=self.amodel if self.backend == "laion" else None)


class WindowDataset(IterableDataset):
    """Cuts -> (index, cut, preprocessed windows | None, error | None), sharded over workers.

    Worker k takes items k, k+W, ...; the DataLoader collects workers round-robin, so items
    come out in input order.
    """

    def __init__(self, cuts: Iterable[Cut], skip_ids: frozenset[str], sampling_rate: int, window: int,
                 policy: str, preprocessor) -> None:
        self.cuts, self.skip_ids = cuts, skip_ids
        self.sampling_rate, self.window, self.policy, self.preprocessor = sampling_rate, window, policy, preprocessor

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        todo = (c for c in self.cuts if c.id not in self.skip_ids)
        for index, cut in enumerate(todo):
            if index % workers != worker:
                continue
            try:
                audio = mono_resampled(cut, self.sampling_rate)
                windows = policy_windows(audio, self.window, self.policy)
                yield index, cut, self.preprocessor(windows), len(windows), None
            except Exception as exc:  # decoding failed: the stage quarantines the cut
                yield index, cut, None, 0, f"{type(exc).__name__}: {exc}"[:300]


def score_clap(
    cuts: Iterable[Cut],
    encoder: ClapEncoder,
    store: ArrayStore,
    config: ClapScoreConfig = ClapScoreConfig(),
    skip_ids: Iterable[str] = (),
) -> Iterator[Cut | Rejection]:
    """Scored cuts (and rejections), in input order.

    :param cuts: cuts to score (lazy); each needs ``custom[config.caption_field]``.
    :param encoder: a loaded CLAP model (`curate.scoring.clap.load_clap`).
    :param store: where embeddings are written.
    :param config: caption field, window policy, windows per model batch, decoding workers.
    :param skip_ids: cuts already done (resume); they are not decoded.
    """
    with share_cores(config.workers):
        dataset = WindowDataset(cuts, frozenset(skip_ids), encoder.sampling_rate, encoder.window, config.policy,
                                encoder.preprocessor)
        loader = DataLoader(dataset, batch_size=None, num_workers=config.workers,
                            prefetch_factor=4 if config.workers else None)
        text_cache: dict[str, tuple[np.ndarray, object]] = {}
        pending: list = []  # rejections and (cut, inputs, windows, caption), kept in input order
        windows_pending = 0
        last_index = -1
        for index, cut, inputs, count, error in loader:
            assert index > last_index, f"scorer lost input order at item {index}"
            last_index = index
            caption = (cut.custom or {}).get(config.caption_field)
            if not isinstance(caption, str) or not caption.strip():
                caption = None  # embedded all the same (reward, FAD, REPA need it); no score
            if error is not None:
                pending.append(Rejection(cut.id, STAGE, "unreadable", error, item=cut.to_dict()))
            else:
                pending.append((cut, inputs, count, caption))
                windows_pending += count
            if windows_pending >= config.batch_size:
                yield from _flush(pending, encoder, store, text_cache)
                pending, windows_pending = [], 0
        if pending:
            yield from _flush(pending, encoder, store, text_cache)


def clap_job(setup: Callable[[], ClapEncoder], config: ClapScoreConfig, arrays: Path) -> StageJob:
    """`score_clap` as a `StageJob` for either executor: `setup` loads the CLAP (a picklable
    callable: Ray calls it once per actor), embeddings go to the `arrays` folder."""
    return StageJob("score clap", setup, functools.partial(_score_cuts, config=config, arrays=str(arrays)))


def _score_cuts(encoder: ClapEncoder, cuts: Iterable[Cut], skip_ids: frozenset[str], *, config: ClapScoreConfig,
                arrays: str) -> Iterator[Cut | Rejection]:
    return score_clap(cuts, encoder, ArrayStore(arrays), config, skip_ids)


def _flush(pending: list, encoder: ClapEncoder, store: ArrayStore, text_cache: dict):
    """Embed one batch of windows (and any new captions); yield scored cuts and rejections in order."""
    jobs = [p for p in pending if not isinstance(p, Rejection)]
    audio = encoder.embed_audio(stack_inputs([inputs for _, inputs, _, _ in jobs])) if jobs else None  # (windows, D)
    new_texts = list(dict.fromkeys(c for _, _, _, c in jobs if c is not None and c not in text_cache))
    if new_texts:
        for text, emb in zip(new_texts, encoder.embed_text(new_texts)):
            text_cache[text] = (emb, store.put("clap_text", encoder.text_key(text), emb))
    offset = 0
    for entry in pending:
        if isinstance(entry, Rejection):
            yield entry
            continue
        cut, _, count, caption = entry
        emb = audio[offset : offset + count].mean(axis=0)  # policy "mean" averages windows
        offset += count
        emb = emb / max(np.linalg.norm(emb), 1e-12)
        custom = dict(cut.custom or {})
        custom[CLAP_AUDIO_EMB] = store.put("clap_audio", cut.id, emb)
        if caption is None:  # no text to score against: filter's caption rule decides about it
            custom.pop(CLAP_SCORE, None)  # a score of an earlier caption would be stale
            custom.pop(CLAP_TEXT_EMB, None)
        else:
            text_emb, text_array = text_cache[caption]
            custom.update(clap_score=float(np.clip(np.dot(emb, text_emb), -1.0, 1.0)), clap_text_emb=text_array)
        yield fastcopy(cut, custom=custom)



@contextlib.contextmanager
def share_cores(workers: int):
    """While scoring, give the model the threads of this process (all cores, or a Ray actor's
    CPUs) that the decoding workers do not use (they run one thread each); afterwards the
    process gets its threads back (a demo or a driver runs training in the same process)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before - workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_score_clap(manifest: Path, output: Path, config: ClapScoreConfig = ClapScoreConfig(), *,
                   executor: ExecutorOptions | None = None, resume: bool = False,
                   overwrite: bool = False) -> StageResult:
    """Add clap_score (and stored audio/text embeddings) to every cut of `manifest`.

    Cuts without a caption are embedded too (the reward, FAD and REPA use the embedding) but
    get no score.
    """
    executor = executor or ExecutorOptions()
    source = describe_input(manifest)
    resolved = config.resolved()
    key = dict(input_sha256=source["sha256"], **output_options(resolved), weights=weights_fingerprint(resolved.model))
    setup = functools.partial(load_clap, config.backend, config.model, device=config.device, amodel=config.amodel,
                              unsafe_pickle=config.unsafe_pickle)
    scoring = dataclasses.replace(config, workers=0) if executor.on_ray else config  # on Ray the actors decode
    scores: list[float] = []

    def keep_score(cut) -> None:
        if cut.custom.get(CLAP_SCORE) is not None:
            scores.append(cut.custom[CLAP_SCORE])

    def drive_scores(out, bar):
        return drive(clap_job(setup, scoring, arrays_dir(output)), manifest, out, executor, bar, keep_score)

    def finalize(out, report):
        encoder = report.get("state")
        return dict(
            options=dict(manifest=str(manifest), **recorded_options(resolved),
                         sampling_rate=getattr(encoder, "sampling_rate", None),
                         window_samples=getattr(encoder, "window", None), output=str(output),
                         arrays=str(arrays_dir(output)), executor=executor.kind),
            inputs=[source], extra_versions=("torch", "torchaudio", "transformers", "laion-clap", "ray"),
            tallies={"without_caption": lambda cut: (cut.get("custom") or {}).get(CLAP_SCORE) is None})

    def summary(out, report, seconds):
        lines = score_summary(out, seconds, scores, CLAP_SCORE) + [line for line in [ray_line(report)] if line]
        if out.summary.tallies["without_caption"]:
            lines.insert(1, f"{out.summary.tallies['without_caption']} cuts have no {config.caption_field}: "
                            "embedded, not scored (filter's caption rule decides)")
        return lines

    return run_stage(StagePlan(
        STAGE, Path(output), key, drive_scores, summary, finalize, check=lambda: check_input(manifest),
        total=lambda: count_lines(manifest), title="score clap", input_manifest=Path(manifest),
        validator=validate_manifest), resume=resume, overwrite=overwrite)
