"""A killed Ray run resumes without duplicates or gaps, skipping the shards it finished; a
shard whose stage code raises fails only its own cuts."""

import functools
import gzip
import json
import os
import subprocess
import sys

import ray
from click.testing import CliRunner

from scoreaware.cli.main import cli
from scoreaware.core.jobs import ExecutorOptions, ShardFailure, StageJob
from scoreaware.core.manifests import read_cuts
from scoreaware.core.output import Rejection
from scoreaware.core.ray_executor import run_on_ray
from scoreaware.demo.domain.build import default_models
from scoreaware.testing.parity import same_manifest


def run(*args: str) -> str:
    """`scoreaware ARGS` in this process; its output (fails the test on a non-zero exit)."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoreaware", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_killed_ray_run_resumes_without_duplicates(segmented4, ray_cluster, tmp_path):
    clap = str(default_models() / "clap")
    out = tmp_path / "ray.jsonl.gz"
    args = ["curate", "score", "clap", str(segmented4), "--model", clap, "-o", str(out), "--executor", "ray",
            "--ray-address", ray.get_runtime_context().gcs_address, "--shard-size", "3", "--ray-actors", "2"]
    killed = run_cli(*args, env={"SCOREAWARE_CRASH_AFTER_WRITES": "7"})  # two whole shards and one cut written
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not out.exists()
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    shards = -(-sum(1 for _ in read_cuts(segmented4)) // 3)
    assert f"ray: {shards - 2} of {shards} shards" in resumed.stdout  # the finished shards were not sent again
    with gzip.open(out, "rt") as f:
        ids = [json.loads(line)["id"] for line in f if line.strip()]
    assert len(ids) == len(set(ids))
    run("curate", "score", "clap", str(segmented4), "--model", clap, "-o", str(tmp_path / "local.jsonl.gz"))
    same_manifest(tmp_path / "local.jsonl.gz", out)


# ------------------------------------------------------------------ a shard that fails
def _setup() -> str:
    return "loaded"


def _process(state, cuts, skip_ids, broken):
    for cut in cuts:
        if cut.recording_id == broken:  # the shard holding this recording's windows raises
            raise RuntimeError(f"planted failure ({state})")
        yield cut if cut.id not in skip_ids else Rejection(cut.id, "test", "skipped", "")


def test_a_failing_shard_fails_only_its_cuts(segmented4, ray_cluster, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # test functions are not importable on workers
    cuts = list(read_cuts(segmented4))
    broken = cuts[len(cuts) // 2].recording_id
    report: dict = {}
    job = StageJob("test", _setup, functools.partial(_process, broken=broken))
    items = list(run_on_ray(job, segmented4, set(),
                            ExecutorOptions("ray", shard_size=2), tmp_path, report))
    failures = [i for i in items if isinstance(i, ShardFailure)]
    written = [i.id for i in items if not isinstance(i, ShardFailure)]
    failed_ids = {cid for f in failures for cid in f.cut_ids}
    assert failures and all("planted failure (loaded)" in f.error for f in failures)
    assert {c.id for c in cuts if c.recording_id == broken} <= failed_ids
    assert sorted(written + sorted(failed_ids)) == sorted(c.id for c in cuts)  # nothing lost, nothing twice
    assert len(failed_ids) <= 2 * len(failures)  # only the failing shards' cuts
    assert report["failed"] == len(failures) and report["shards_run"] == report["shards"]
