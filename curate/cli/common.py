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


def executor_options(fn: Callable) -> Callable:
    """``--executor local|ray`` and the Ray settings, handed to the command as one
    `curate.executors.ExecutorOptions` named ``executor`` (GPUs per actor follow ``--device``)."""

    @functools.wraps(fn)
    def wrapper(*args, executor: str, ray_address: str | None, ray_actors: int, shard_size: int,
                cpus_per_actor: float, **kwargs):
        from curate.executors import ExecutorOptions

        device = str(kwargs.get("device") or "cpu")
        options = ExecutorOptions(executor, ray_address, ray_actors, shard_size, cpus_per_actor,
                                  1.0 if device.startswith("cuda") else 0.0)
        return fn(*args, executor=options, **kwargs)

    for option in reversed([
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     help="Run in this process, or on a Ray cluster: Shar shards of the manifest on an actor pool, "
                          "models loaded once per actor, results joined into the same outputs."),
        click.option("--ray-address", default=None,
                     help="Ray cluster to join ('auto', 'ray://head:10001') [default: start a local one]."),
        click.option("--ray-actors", type=click.IntRange(1), default=2,
                     help="Ray executor: actors (model copies; one GPU each with --device cuda)."),
        click.option("--shard-size", type=click.IntRange(1), default=64,
                     help="Ray executor: cuts per Shar shard (the unit of work, of failure and of resume)."),
        click.option("--cpus-per-actor", type=click.FloatRange(0.25), default=1.0,
                     help="Ray executor: CPUs reserved per actor (its torch threads)."),
    ]):
        wrapper = option(wrapper)
    return wrapper


def drive(job, manifest: Path, out, executor, bar, on_cut: Callable | None = None,
          on_other: Callable | None = None) -> dict:
    """Run `job` on the chosen executor into `out`: cuts written, rejections quarantined,
    anything else (a caption's `Failed`) given to `on_other`. Returns the executor's report.

    :raises StageError: after the loop, when Ray shards failed (the rest stays in the partial
        output, so --resume redoes only their cuts).
    """
    from curate.executors import ShardFailure, failures_error, run_stage

    failures, report = [], {}
    for item in run_stage(job, manifest, out.done_ids, executor, out.partial_dir, report):
        if isinstance(item, ShardFailure):
            failures.append(item)
            continue
        if hasattr(item, "reason"):
            out.reject(item)
        elif hasattr(item, "custom"):
            out.write(item)
            if on_cut:
                on_cut(item)
        elif on_other:
            on_other(item)
        bar.update(1)
    if failures:  # raised inside the caller's `with out`: the partial output is closed and kept
        raise failures_error(failures, out.path)
    return report


def ray_line(report: dict) -> str | None:
    """'ray: 12 of 12 shards on 2 actors, …' for a stage summary (None for the local executor)."""
    if "shards" not in report:
        return None
    seconds = report.get("shard_seconds") or []
    line = (f"ray: {report['shards_run']} of {report['shards']} shards on {report['actors']} actors, "
            f"{sum(seconds):.1f} s in the stage's code, {report.get('wall_seconds', 0.0):.1f} s wall")
    if report.get("ready_after"):  # actor start-up: process, imports and the stage's setup (models)
        line += (f"; actors ready after {max(report['ready_after']):.1f} s "
                 f"(setup {max(report['setup_seconds']):.1f} s of it)")
    return line + (f"; {report['failed']} shard(s) failed" if report.get("failed") else "")


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
