"""What every stage command shares: output options, the run/skip/resume logic, summaries."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

import click

WORKERS = min(2, os.cpu_count() or 1)


def manifest_path(exists: bool = True) -> click.Path:
    """A manifest argument: an existing file when `exists`."""
    return click.Path(exists=exists, dir_okay=False, path_type=Path)


def output_options(default_name: str) -> Callable:
    """``-o/--output``, ``--resume``, ``--overwrite`` for a stage writing ``manifests/<name>``."""

    def decorate(fn: Callable) -> Callable:
        fn = click.option("--overwrite", is_flag=True, help="Redo the stage even if its output is complete.")(fn)
        fn = click.option("--resume", is_flag=True, help="Continue the partial output of an interrupted run.")(fn)
        fn = click.option(
            "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
            default=Path("manifests") / default_name, help="Output cuts manifest (.jsonl.gz).",
        )(fn)
        return fn

    return decorate


def workers_option(fn: Callable) -> Callable:
    return click.option("-j", "--workers", type=click.IntRange(1), default=WORKERS,
                        help="Decoding threads.")(fn)


def stage_command(fn: Callable) -> Callable:
    """Turn library errors into clean CLI errors (exit 1, message, no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from curate.io import StageError
        from curate.metadata import MetadataError

        try:
            return fn(*args, **kwargs)
        except (StageError, MetadataError, NotADirectoryError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def prepare_output(path: Path, stage: str, resume: bool, overwrite: bool, streams=(), **kwargs):
    """A `StageOutput`, or None after telling the user the stage is already complete.

    `kwargs` go to `StageOutput` (``config``: the options that decide the output, compared on
    --resume and on reruns; ``input_manifest``: the manifest read, whose lineage continues).
    """
    from curate.io import StageOutput, read_provenance

    out = StageOutput(path, stage=stage, resume=resume, overwrite=overwrite, streams=streams, **kwargs)
    if out.check() == "skip":
        sidecar = read_provenance(path) or {}
        kept = (sidecar.get("outputs", {}).get("cuts") or {}).get("items", "?")
        click.secho(f"✓ {path} is already complete ({kept} cuts); nothing to do. "
                    "Pass --overwrite to redo it.", fg="green", err=True)
        if out.has_partial:  # a kill after the final rename left the work folder behind
            import shutil

            shutil.rmtree(out.partial_dir, ignore_errors=True)
        return None
    return out


def done_line(out, what: str = "kept") -> str:
    """'kept N (M of them before --resume)': whole-output counts after `finalize`."""
    before = out.summary.this_run.get("resumed_from_items", 0) if out.summary.this_run else 0
    text = f"{what} {out.summary.kept}"
    if before:
        text += f" ({out.summary.kept - out.summary.this_run.get('kept', 0)} of them written before --resume)"
    return text


def progress(total: int | None, desc: str, unit: str):
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=None, leave=False)


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def print_summary(title: str, lines: list[str], outputs: dict) -> None:
    """The end-of-command summary: what happened and where it went."""
    click.secho(f"\n{title}", bold=True)
    for line in lines:
        click.echo(f"  {line}")
    for stream, info in outputs.items():
        click.echo(f"  → {info['path']}  ({info['items']} {stream})")


def rejected_line(rejected) -> str:
    if not rejected:
        return "quarantined 0"
    return f"quarantined {sum(rejected.values())}: " + ", ".join(f"{k} {v}" for k, v in rejected.most_common())
