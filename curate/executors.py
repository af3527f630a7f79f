"""One stage, two executors: the same stage function run here or on a Ray cluster.

A stage is a `StageJob`: `setup()` loads what it needs once (models, engines) and
`process(state, cuts, skip_ids)` maps cuts to cuts and rejections. The local executor calls
both in this process (the stage's own threads or DataLoader workers do the parallel part); the
Ray executor (`curate.ray_executor`) calls `setup` once per actor and `process` once per Lhotse
Shar shard of the manifest. The CLI only picks one; the stage logic exists once.

`setup` and `process` must pickle (module-level functions, or `functools.partial` of them):
Ray ships them to its actors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhotse.cut import Cut

from curate.io import StageError


def _own_id(cut: Cut) -> list[str]:
    return [cut.id]


@dataclass(frozen=True)
class StageJob:
    """What an executor needs to run a stage.

    :param name: the stage, for messages ("score clap").
    :param setup: () -> state, called once per process (local) or per actor (Ray).
    :param process: (state, cuts, skip_ids) -> cuts, rejections (and stage-specific items such
        as a caption's `Failed`), in input order where the stage keeps one.
    :param output_ids: the ids a cut becomes in the output (a segment's windows; by default
        the cut's own id), so a shard whose outputs are all written is skipped on --resume.
    """

    name: str
    setup: Callable[[], Any]
    process: Callable[[Any, Iterable[Cut], frozenset[str]], Iterator[Any]]
    output_ids: Callable[[Cut], list[str]] = _own_id


@dataclass(frozen=True)
class ShardFailure:
    """A shard whose `process` raised on Ray: its cuts are not written, so --resume redoes them."""

    shard: int
    cut_ids: list[str]
    error: str


@dataclass(frozen=True)
class ExecutorOptions:
    """``--executor`` and its Ray settings (see `executor_options` in the CLI)."""

    kind: str = "local"
    address: str | None = None
    actors: int = 2
    shard_size: int = 64
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0

    @property
    def on_ray(self) -> bool:
        return self.kind == "ray"


def run_stage(job: StageJob, manifest: Path, skip_ids: set[str], options: ExecutorOptions, work_dir: Path,
              report: dict | None = None) -> Iterator[Any]:
    """The stage's items (cuts, rejections, `ShardFailure`s), from the executor `options` picks.

    :param manifest: the input manifest (read lazily here; split into Shar shards for Ray).
    :param skip_ids: output ids already written (resume).
    :param work_dir: where the Ray executor keeps its shards (the stage's partial folder).
    :param report: filled with what ran: ``state`` (the local executor's loaded models, for
        the sidecar), or the Ray executor's shard counts and timings.
    """
    report = report if report is not None else {}
    if options.on_ray:
        from curate.ray_executor import run_on_ray

        yield from run_on_ray(job, manifest, skip_ids, options, work_dir, report)
        return
    from curate.manifests import read_cuts

    report["state"] = state = job.setup()
    yield from job.process(state, read_cuts(manifest), frozenset(skip_ids))


def failures_error(failures: list[ShardFailure], output: Path) -> StageError:
    """The error that ends a Ray run some of whose shards failed (the rest is kept)."""
    cuts = sum(len(f.cut_ids) for f in failures)
    first = failures[0]
    return StageError(f"{len(failures)} shard(s) failed on Ray ({cuts} cuts not written; shard {first.shard}, cuts "
                      f"{first.cut_ids[0]}…: {first.error}); everything else is kept in the partial output of "
                      f"{output}: rerun with --resume to redo only those cuts")
