"""The Ray executor: a stage's `process` over shards of the manifest, on a Ray Data actor pool.

The manifest is split into shards of cuts (``cuts.000000.jsonl.gz`` …; the audio stays
where the recordings point, so a cluster needs the data on shared storage, as the outputs'
arrays are written there too). One row per shard goes through
``map_batches(_ShardWorker, compute=ActorPoolStrategy(size=n), batch_size=1)``: each actor
runs the stage's `setup` once and `process` once per shard, and returns the shard's items. The
driver reads the rows back in shard order (``preserve_order``) and writes them through the same
`StageOutput` the local executor uses, so quarantine, resume, validation and sidecars are one
code path. A shard whose `process` raises becomes a `ShardFailure`: its cuts are left out,
the other shards are written, and --resume redoes exactly those cuts.

Why an actor per worker and not a task per shard: models load once per actor, not per shard.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lhotse.serialization import SequentialJsonlWriter

from scoreaware.core.errors import StageError
from scoreaware.core.jobs import ExecutorOptions, ShardFailure, StageJob
from scoreaware.core.manifests import read_cuts
from scoreaware.core.provenance import describe_input

SHARD_INDEX = "index.json"


def shard_manifest(manifest: Path, folder: Path, shard_size: int) -> list[Path]:
    """``folder/cuts.NNNNNN.jsonl.gz`` shards of `manifest` (reused when an earlier run of the
    same manifest and shard size wrote them; written to a temporary folder, then renamed).

    The shards use Shar's file naming but Lhotse's plain cut serialization: Shar's own cut
    writer stores each cut relative to the audio the shard carries (``start`` reset to 0), so
    a cuts-only Shar of windows into longer recordings would point every window at 0 s."""

    key = {"manifest_sha256": describe_input(manifest)["sha256"], "shard_size": shard_size}
    index = folder / SHARD_INDEX
    if index.is_file():
        recorded = json.loads(index.read_text())
        if {k: recorded.get(k) for k in key} == key:
            return [folder / name for name in recorded["shards"]]
        shutil.rmtree(folder)
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shards: list[str] = []
    writer = None
    for number, cut in enumerate(read_cuts(manifest)):  # paths come out absolute
        if number % shard_size == 0:
            if writer is not None:
                writer.close()
            shards.append(f"cuts.{len(shards):06d}.jsonl.gz")
            writer = SequentialJsonlWriter(staging / shards[-1])
        writer.write(cut)
    if writer is not None:
        writer.close()
    (staging / SHARD_INDEX).write_text(json.dumps({**key, "shards": shards}, indent=1) + "\n")
    os.replace(staging, folder)
    return [folder / name for name in shards]


class _ShardWorker:
    """A Ray Data actor: the stage's `setup` once, then `process` per shard (rows of one batch)."""

    def __init__(self, job: StageJob, threads: int) -> None:
        created = time.time()  # wall clock: compared with the driver's (same node, or NTP across nodes)

        torch.set_num_threads(max(1, threads))  # the actor's CPUs, not the node's: actors share it
        self.job = job
        self.state = job.setup()
        self.ready_at, self.setup_seconds = time.time(), time.time() - created

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: dict[str, list] = {"shard": [], "items": [], "error": [], "seconds": [], "ready_at": [],
                                "setup_seconds": []}
        for shard, path, skip in zip(batch["shard"], batch["path"], batch["skip"]):
            # the actor's start-up goes out once, with its first shard
            out["ready_at"].append(self.ready_at)
            out["setup_seconds"].append(self.setup_seconds)
            self.setup_seconds = 0.0
            started = time.perf_counter()
            try:
                items = list(self.job.process(self.state, read_cuts(path), frozenset(json.loads(skip))))
                error = ""
            except Exception as exc:  # the shard fails, the run goes on; --resume redoes its cuts
                items, error = [], f"{type(exc).__name__}: {exc}"[:500]
            out["shard"].append(int(shard))
            out["items"].append(pickle.dumps(items))  # Ray moves Python objects by pickle anyway
            out["error"].append(error)
            out["seconds"].append(time.perf_counter() - started)
        return out


def run_on_ray(job: StageJob, manifest: Path, skip_ids: set[str], options: ExecutorOptions, work_dir: Path,
               report: dict | None = None) -> Iterator[Any]:
    """The stage's items in shard order; `report` (when given) gets shard counts and timings.

    Shards whose every output id is in `skip_ids` are not sent (resume); the others carry
    their done ids, so a half-done shard redoes only what is missing.
    """
    try:
        import ray  # optional: the ray extra
    except ImportError:
        raise StageError("--executor ray needs Ray: pip install 'scoreaware[ray]' (or 'ray[data]')") from None

    wall = time.perf_counter()
    shards = shard_manifest(manifest, work_dir / "shar", options.shard_size)
    rows, shard_ids = [], {}
    for number, path in enumerate(shards):
        ids = [i for cut in read_cuts(path) for i in job.output_ids(cut)]
        done = [i for i in ids if i in skip_ids]
        if len(done) < len(ids):
            rows.append({"shard": number, "path": str(path), "skip": json.dumps(done)})
            shard_ids[number] = ids
    stats = report if report is not None else {}
    stats.update(shards=len(shards), shards_run=len(rows), actors=options.actors, shard_seconds=[], failed=0,
                 setup_seconds=[], ready_after=[])
    if not rows:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR", configure_logging=True)
    try:
        submitted = time.time()
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the manifest comes out in input order
        context.enable_progress_bars = False  # the stage's own bar counts cuts
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _ShardWorker, fn_constructor_kwargs={"job": job, "threads": int(options.cpus_per_actor)},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=options.actors),
            num_cpus=options.cpus_per_actor, num_gpus=options.gpus_per_actor or None)
        for row in dataset.iter_rows():
            stats["shard_seconds"].append(float(row["seconds"]))
            if row["setup_seconds"]:  # an actor's first shard: how long it took to be ready
                stats["setup_seconds"].append(float(row["setup_seconds"]))
                stats["ready_after"].append(float(row["ready_at"]) - submitted)
            if row["error"]:
                stats["failed"] += 1
                yield ShardFailure(int(row["shard"]), shard_ids[int(row["shard"])], row["error"])
            else:
                yield from pickle.loads(row["items"])
    finally:
        stats["wall_seconds"] = time.perf_counter() - wall
        if started_here:
            ray.shutdown()
