"""What every stage command shares: output and executor options, and how a result is printed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import click

from scoreaware.core.parallel import DEFAULT_WORKERS


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
    return click.option("-j", "--workers", type=click.IntRange(1), default=DEFAULT_WORKERS,
                        help="Decoding threads.")(fn)


def executor_options(fn: Callable) -> Callable:
    """``--executor local|ray`` and the Ray settings, handed to the command as one
    `curate.executors.ExecutorOptions` named ``executor`` (GPUs per actor follow ``--device``)."""

    @functools.wraps(fn)
    def wrapper(*args, executor: str, ray_address: str | None, ray_actors: int, shard_size: int,
                cpus_per_actor: float, **kwargs):
        from scoreaware.core.jobs import ExecutorOptions

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


def note(line: str) -> None:
    """A note a library driver logs on the way (a round starting, a setting adjusted): stderr,
    so a script reading stdout sees only the results."""
    click.secho(line, err=True, fg="yellow" if line.startswith("note") else None)


def print_summary(title: str, lines: list[str], outputs: dict) -> None:
    """The end-of-command summary: what happened and where it went."""
    click.secho(f"\n{title}", bold=True)
    for line in lines:
        click.echo(f"  {line}")
    for stream, info in outputs.items():
        click.echo(f"  → {info['path']}  ({info['items']} {stream})")


def print_result(result) -> None:
    """A `StageResult` as the user sees it: the skip message, or the summary and the outputs."""
    if result.message:
        click.secho(result.message, fg="green", err=True)
    if result.lines or not result.skipped:
        print_summary(result.title or result.stage, result.report(), {})
