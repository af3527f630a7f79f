"""One stage, two executors: the same stage function run here or on a Ray cluster.

A stage is a `StageJob`: `setup()` loads what it needs once (models, engines) and
`process(state, cuts, skip_ids)` maps cuts to cuts and rejections. The local executor calls
both in this process (the stage's own threads or DataLoader workers do the parallel part); the
Ray executor (`scoreaware.core.ray_executor`) calls `setup` once per actor and `process` once per Lhotse
Shar shard of the manifest. The CLI only picks one; the stage logic exists once.

`setup` and `process` must pickle (module-level functions, or `functools.partial` of them):
Ray ships them to its actors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scoreaware.core.errors import StageError
from scoreaware.core.jobs import ExecutorOptions, ShardFailure, StageJob
from scoreaware.core.manifests import read_cuts
from scoreaware.core.ray_executor import run_on_ray


def run_job(job: StageJob, manifest: Path, skip_ids: set[str], options: ExecutorOptions, work_dir: Path,
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
        yield from run_on_ray(job, manifest, skip_ids, options, work_dir, report)
        return
    report["state"] = state = job.setup()
    yield from job.process(state, read_cuts(manifest), frozenset(skip_ids))


def failures_error(failures: list[ShardFailure], output: Path) -> StageError:
    """The error that ends a Ray run some of whose shards failed (the rest is kept)."""
    cuts = sum(len(f.cut_ids) for f in failures)
    first = failures[0]
    return StageError(f"{len(failures)} shard(s) failed on Ray ({cuts} cuts not written; shard {first.shard}, cuts "
                      f"{first.cut_ids[0]}…: {first.error}); everything else is kept in the partial output of "
                      f"{output}: rerun with --resume to redo only those cuts")
