"""`scoreaware curate caption`."""

from __future__ import annotations

from pathlib import Path

import click

from scoreaware.cli.options import (
    executor_options,
    manifest_path,
    output_options,
    print_result,
)


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
def caption(manifest: Path, output: Path, resume: bool, overwrite: bool, executor=None, **options) -> None:
    """Caption MANIFEST: --stage audio (caption_verbose) then --stage rewrite (caption).

    Engine failures (server down, timeouts) leave the output partial and list the cuts;
    rerun with --resume to complete them. Afterwards rescore: score clap --caption-field caption.
    """
    from scoreaware.curate.stages.caption import CaptionConfig, run_caption

    print_result(run_caption(manifest, output, CaptionConfig(**options), executor=executor, resume=resume,
                             overwrite=overwrite))
