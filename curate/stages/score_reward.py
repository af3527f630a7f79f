"""Score reward: a TuneJury-compatible preference reward per cut.

Reuses the CLAP embeddings the clap stage stored (``clap_audio_emb``, ``clap_text_emb``), so
CLAP is not run again; computes the MERT feature (mean-pooled last hidden state of the cut at
24 kHz mono) in the main process, decoding in DataLoader workers. Each cut gains ``reward``
and ``mert_emb`` (a Lhotse array, so `train reward` can learn from cut-id pairs without
running MERT again).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lhotse.cut import Cut
from lhotse.utils import fastcopy
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from scoreaware.core.arrays import ArrayStore, arrays_dir
from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions, StageJob
from scoreaware.core.output import Rejection
from scoreaware.core.provenance import describe_input, provenance_chain, weights_fingerprint
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
from scoreaware.curate.scoring.audio import mono_resampled
from scoreaware.curate.scoring.reward import (
    MertEncoder,
    RewardHead,
    assemble_features,
    check_feature_models,
    load_mert,
    load_reward,
    score_features,
)
from scoreaware.curate.stages.score_clap import share_cores
from scoreaware.schemas.fields import CLAP_AUDIO_EMB, CLAP_TEXT_EMB, REWARD
from scoreaware.schemas.validation import check_input, validate_manifest

STAGE = "reward"
PROTOCOLS = ("empty", "caption")


@dataclass(frozen=True)
class RewardScoreConfig:
    """Options of the reward scoring stage (`curate score reward`'s options, one for one)."""

    checkpoint: str | None = option(None, changes_output=False)  # the head; compared by its sha256
    mert_model: str = "m-a-p/MERT-v1-330M"
    trust_remote_code: bool = option(False, changes_output=False)
    prompt_protocol: str | None = None  # None: the protocol the head was trained with ("empty" if unknown)
    batch_size: int = option(16, changes_output=False)  # cuts per reward batch
    workers: int = option(2, changes_output=False)  # DataLoader processes decoding audio
    device: str = option("cpu", changes_output=False)
    unsafe_pickle: bool = option(False, changes_output=False)


class MertAudioDataset(IterableDataset):
    """Cuts -> (index, cut, 24 kHz mono audio | None, error | None) in input order."""

    def __init__(self, cuts: Iterable[Cut], skip_ids: frozenset[str], sampling_rate: int) -> None:
        self.cuts, self.skip_ids, self.sampling_rate = cuts, skip_ids, sampling_rate

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for index, cut in enumerate(c for c in self.cuts if c.id not in self.skip_ids):
            if index % workers != worker:
                continue
            missing = [k for k in (CLAP_AUDIO_EMB,) if not cut.has_custom(k)]
            if missing:
                yield index, cut, None, "missing_clap_embedding"
                continue
            try:
                yield index, cut, mono_resampled(cut, self.sampling_rate), None
            except Exception as exc:
                yield index, cut, None, f"{type(exc).__name__}: {exc}"[:300]


def score_reward(
    cuts: Iterable[Cut],
    head: RewardHead,
    mert: MertEncoder,
    store: ArrayStore,
    config: RewardScoreConfig = RewardScoreConfig(),
    skip_ids: Iterable[str] = (),
) -> Iterator[Cut | Rejection]:
    """Cuts with ``reward`` and ``mert_emb`` (and rejections), in input order."""
    config = dataclasses.replace(config, prompt_protocol=config.prompt_protocol or head.prompt_protocol or "empty")
    if config.prompt_protocol not in PROTOCOLS:
        raise ValueError(f"prompt protocol {config.prompt_protocol!r} not implemented; choose from {PROTOCOLS}")
    if head.config.mert_dim != mert.dim:
        raise ValueError(f"the reward head expects {head.config.mert_dim}-d MERT features, {mert.model_id} "
                         f"gives {mert.dim}")
    with share_cores(config.workers):
        loader = DataLoader(MertAudioDataset(cuts, frozenset(skip_ids), mert.sampling_rate), batch_size=None,
                            num_workers=config.workers, prefetch_factor=4 if config.workers else None)
        pending: list = []  # rejections and (cut, audio), kept in input order
        jobs = 0
        for _, cut, audio, error in loader:
            if error == "missing_clap_embedding":
                pending.append(Rejection(cut.id, STAGE, "missing_clap_embedding",
                                         "no clap_audio_emb: run `curate score clap` first", item=cut.to_dict()))
            elif error is not None:
                pending.append(Rejection(cut.id, STAGE, "unreadable", error, item=cut.to_dict()))
            else:
                pending.append((cut, audio))
                jobs += 1
            if jobs >= config.batch_size:
                yield from _flush(pending, head, mert, store, config)
                pending, jobs = [], 0
        if pending:
            yield from _flush(pending, head, mert, store, config)


def load_reward_models(checkpoint: str, mert_model: str, device: str = "cpu", trust_remote_code: bool = False,
                       unsafe_pickle: bool = False) -> tuple[RewardHead, MertEncoder]:
    """The reward head and MERT: a `StageJob` setup (once per process or Ray actor)."""
    return (load_reward(checkpoint, unsafe_pickle=unsafe_pickle),
            load_mert(mert_model, device=device, trust_remote_code=trust_remote_code))


def reward_job(setup, config: RewardScoreConfig, arrays: Path) -> StageJob:
    """`score_reward` as a `StageJob` for either executor (MERT features go to `arrays`)."""
    return StageJob("score reward", setup, functools.partial(_score_cuts, config=config, arrays=str(arrays)))


def _score_cuts(models: tuple[RewardHead, MertEncoder], cuts: Iterable[Cut], skip_ids: frozenset[str], *,
                config: RewardScoreConfig, arrays: str) -> Iterator[Cut | Rejection]:
    head, mert = models
    return score_reward(cuts, head, mert, ArrayStore(arrays), config, skip_ids)


def _flush(pending: list, head: RewardHead, mert: MertEncoder, store: ArrayStore, config: RewardScoreConfig):
    """Score one batch; yield scored cuts and rejections in input order."""
    jobs = [p for p in pending if not isinstance(p, Rejection)]
    rewards, mert_feats = [], []
    if jobs:
        mert_feats = mert.embed([audio for _, audio in jobs])  # (N, mert_dim)
        clap_audio = np.stack([cut.load_custom(CLAP_AUDIO_EMB) for cut, _ in jobs])
        text = None
        if config.prompt_protocol == "caption":
            text = np.stack([cut.load_custom(CLAP_TEXT_EMB) if cut.has_custom(CLAP_TEXT_EMB)
                             else np.zeros(head.config.clap_dim, np.float32) for cut, _ in jobs])
        rewards = score_features(head, assemble_features(clap_audio, mert_feats, text))
    scored = iter(zip(rewards, mert_feats))
    for entry in pending:
        if isinstance(entry, Rejection):
            yield entry
            continue
        cut, _ = entry
        reward, feat = next(scored)
        custom = dict(cut.custom or {})
        custom.update(reward=float(reward), mert_emb=store.put("mert", cut.id, feat))
        yield fastcopy(cut, custom=custom)


def run_score_reward(manifest: Path, output: Path, config: RewardScoreConfig, *,
                     executor: ExecutorOptions | None = None, resume: bool = False,
                     overwrite: bool = False) -> StageResult:
    """Add a TuneJury-compatible reward to every cut of `manifest` (a `score clap` output).

    Reuses the stored CLAP embeddings; computes and stores MERT features (mert_emb).
    """
    if not config.checkpoint:
        raise StageError("score reward needs a reward head checkpoint (--checkpoint)")
    executor = executor or ExecutorOptions()
    checkpoint = config.checkpoint
    source, head_file = describe_input(manifest), describe_input(checkpoint)
    head = load_reward(checkpoint, unsafe_pickle=config.unsafe_pickle)
    config = dataclasses.replace(config, prompt_protocol=config.prompt_protocol or head.prompt_protocol or "empty")
    key = dict(input_sha256=source["sha256"], checkpoint_sha256=head_file["sha256"], **output_options(config),
               mert_weights=weights_fingerprint(config.mert_model))

    def check() -> None:
        check_input(manifest)
        scored = next((p["options"] for p in provenance_chain(manifest) if p.get("stage") == "clap"), {})
        try:
            check_feature_models(head, scored.get("weights"), key["mert_weights"])
        except ValueError as exc:
            raise StageError(f"{checkpoint}: {exc}") from None

    setup = functools.partial(load_reward_models, checkpoint, config.mert_model, device=config.device,
                              trust_remote_code=config.trust_remote_code, unsafe_pickle=config.unsafe_pickle)
    scoring = dataclasses.replace(config, workers=0) if executor.on_ray else config  # on Ray the actors decode
    rewards: list[float] = []

    def drive_rewards(out, bar):
        return drive(reward_job(setup, scoring, arrays_dir(output)), manifest, out, executor, bar,
                     lambda cut: rewards.append(cut.custom[REWARD]))

    def finalize(out, report):
        return dict(
            options=dict(manifest=str(manifest), **recorded_options(config), output=str(output),
                         arrays=str(arrays_dir(output)), executor=executor.kind),
            inputs=[source, head_file], extra_versions=("torch", "torchaudio", "transformers", "ray"))

    def summary(out, report, seconds):
        return score_summary(out, seconds, rewards, "reward") + [line for line in [ray_line(report)] if line]

    return run_stage(StagePlan(
        STAGE, Path(output), key, drive_rewards, summary, finalize, check=check,
        total=lambda: count_lines(manifest), title="score reward", input_manifest=Path(manifest),
        validator=validate_manifest), resume=resume, overwrite=overwrite)
