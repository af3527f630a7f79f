"""Caption: stage ``audio`` (an audio-language model writes ``caption_verbose``) and stage
``rewrite`` (a text LLM turns it, with the tags, into a concise caption-like ``caption``).

Prompts are templates (``curate/captioning/templates/*.txt`` or the user's files) filled with
``{tags}`` and ``{caption_verbose}``. Every output is cleaned and checked
(`curate.captioning.checks`); a failing one is regenerated with a new seed, up to `attempts`
times. A cut that still fails keeps its previous text and gets ``caption_flag`` with the
reasons. A request the engine cannot answer at all (server down, timeouts) is a *failure*: the
cut is not written, so `--resume` runs it again, and nothing already captioned is lost.

Audio longer than the model accepts (30 s for Qwen2-Audio) is cropped to its first
`max_audio_seconds`, and the crop is recorded in ``caption_audio_cropped``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.jobs import StageJob
from scoreaware.core.output import Rejection
from scoreaware.curate.captioning.checks import caption_problems, clean
from scoreaware.curate.captioning.engines import ChatRequest, EngineFailure, SamplingConfig

STAGES = ("audio", "rewrite")
TEMPLATES = Path(__file__).resolve().parent.parent / "captioning" / "templates"


@dataclass
class CaptionConfig:
    stage: str = "rewrite"
    batch_size: int = 64
    attempts: int = 3
    max_words: int = 100
    max_audio_seconds: float = 30.0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    system_template: str = ""
    user_template: str = ""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"caption stage {self.stage!r} not implemented; choose from {STAGES}")
        self.system_template = self.system_template or (TEMPLATES / f"{self.stage}_system.txt").read_text().strip()
        self.user_template = self.user_template or (TEMPLATES / f"{self.stage}_user.txt").read_text().strip()

    @property
    def field(self) -> str:
        return "caption_verbose" if self.stage == "audio" else "caption"


@dataclass
class Failed:
    """A cut the engine could not caption; it is left for --resume."""

    id: str
    error: str


def format_tags(tags: list[str]) -> str:
    """The prompt's {tags}: Jamendo ``genre---rock`` as ``genre: rock``, comma-separated; "none" if empty."""
    return ", ".join(t.replace("---", ": ") for t in tags) or "none"


def _tags(cut: Cut) -> str:
    return format_tags((cut.custom or {}).get("tags") or [])


def build_request(cut: Cut, config: CaptionConfig) -> tuple[ChatRequest, dict] | Rejection:
    """The chat request of one cut, plus fields to record (crop)."""
    custom = cut.custom or {}
    values = {"tags": _tags(cut), "caption_verbose": custom.get("caption_verbose") or custom.get("caption") or ""}
    extra = {}
    audio = None
    if config.stage == "audio":
        heard = cut
        if cut.duration > config.max_audio_seconds:  # deliberate, recorded crop: the model would truncate silently
            extra["caption_audio_cropped"] = round(cut.duration - config.max_audio_seconds, 3)
            heard = cut.truncate(duration=config.max_audio_seconds)  # decodes only the part the model hears
        try:
            samples = np.atleast_2d(heard.load_audio()).astype(np.float32).mean(axis=0)
        except Exception as exc:
            return Rejection(cut.id, f"caption_{config.stage}", "unreadable", f"{type(exc).__name__}: {exc}"[:300],
                             item=cut.to_dict())
        audio = (samples, cut.sampling_rate)
    elif not values["caption_verbose"]:
        return Rejection(cut.id, "caption_rewrite", "nothing_to_rewrite", "no caption_verbose and no caption",
                         item=cut.to_dict())
    user = config.user_template.format(**values)
    return ChatRequest(cut.id, config.system_template.format(**values), user, audio), extra


def caption_cuts(cuts: Iterable[Cut], engine, config: CaptionConfig,
                 skip_ids: Iterable[str] = ()) -> Iterator[Cut | Rejection | Failed]:
    """Captioned (or flagged) cuts, rejections and failures; within a batch, in the order the
    engine finishes them."""
    skip = set(skip_ids)
    batch: list[tuple[Cut, ChatRequest, dict]] = []
    for cut in cuts:
        if cut.id in skip:
            continue
        built = build_request(cut, config)
        if isinstance(built, Rejection):
            yield built
            continue
        batch.append((cut, *built))
        if len(batch) >= config.batch_size:
            yield from _run_batch(batch, engine, config)
            batch = []
    if batch:
        yield from _run_batch(batch, engine, config)


def caption_job(setup, config: CaptionConfig) -> StageJob:
    """`caption_cuts` as a `StageJob` for either executor: `setup` builds the engine (a vLLM
    engine per Ray actor, so each actor batches its own shards exactly as the local run does)."""
    return StageJob(f"caption {config.stage}", setup, functools.partial(_caption, config=config))


def _caption(engine, cuts: Iterable[Cut], skip_ids: frozenset[str], *, config: CaptionConfig):
    return caption_cuts(cuts, engine, config, skip_ids)


def _run_batch(batch, engine, config: CaptionConfig):
    """Caption one batch; every cut is yielded the moment its fate is known (so a kill loses at
    most what is still being generated), while the engine sees the whole batch at once.

    A result that fails the checks is queued for the next attempt (a new seed); the retries
    of a batch again go to the engine together.
    """
    results: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    pending = list(batch)
    for attempt in range(config.attempts):
        if not pending:
            break
        last = attempt == config.attempts - 1
        retry = []
        for index, answer in engine.stream([req for _, req, _ in pending], config.sampling, attempt):
            cut, req, extra = pending[index]
            if isinstance(answer, EngineFailure):
                # a cut with an earlier (flagged) answer keeps it; one never answered is left for --resume
                yield _finished(cut, extra, config, results, problems) if cut.id in results else \
                    Failed(cut.id, answer.error)
                continue
            text = clean(answer)
            # the verbose stage may run long; only the rewrite must fit the 100-word prompt style
            found = caption_problems(text, config.max_words if config.stage == "rewrite" else 400)
            results[cut.id], problems[cut.id] = text, found
            if found and not last:
                retry.append((cut, req, extra))
            else:
                yield _finished(cut, extra, config, results, problems)
        pending = retry


def _finished(cut: Cut, extra: dict, config: CaptionConfig, results: dict, problems: dict) -> Cut | Rejection:
    """The cut with its new text, or with its previous text and the reasons the new one was
    refused; a rewrite that leaves a cut with no caption at all quarantines it."""
    custom = dict(cut.custom or {})
    custom.update(extra)
    found = problems.get(cut.id, [])
    if found:  # keep the previous text; say why the new one was refused
        custom["caption_flag"] = ",".join(found)
        custom["caption_rejected_text"] = results.get(cut.id, "")[:500]
    else:
        if config.stage == "rewrite" and custom.get("caption"):
            custom["caption_previous"] = custom["caption"]
        custom[config.field] = results[cut.id]
        custom.pop("caption_flag", None)
    if config.stage == "rewrite" and not (isinstance(custom.get("caption"), str) and custom["caption"].strip()):
        return Rejection(cut.id, "caption_rewrite", "no_caption",
                         f"every rewrite failed the checks ({custom.get('caption_flag')}) and the cut had no "
                         "caption before", item=fastcopy(cut, custom=custom).to_dict())
    return fastcopy(cut, custom=custom)
