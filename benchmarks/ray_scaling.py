"""`curate score clap` on the local executor against `--executor ray` with 2 actors, one run.

Same manifest, same model (the shipped domain CLAP), same outputs (checked to agree to 1e-5).
Local: today's executor (2 DataLoader decoding processes, the model in the main process).
Ray: a local Ray cluster started once beforehand (its start-up is reported on its own line,
as a cluster is started once and serves many stages), 2 actors of 1 CPU each, each loading
the model once and decoding and scoring its shards itself.

Prints both throughputs, their ratio (target ≥ 0.9: Ray's overhead must not eat the
parallelism) and Ray's overhead per shard: (wall time × actors − time in the stage's code)
/ shards, i.e. what scheduling, serializing the shard's cuts and joining the results cost.

    python benchmarks/ray_scaling.py [--clips 160] [--shard-size 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DISABLE_PANDERA_IMPORT_WARNING", "True")
sys.path.insert(0, str(Path(__file__).parent))


def score(manifest: Path, out: Path, *extra: str) -> tuple[float, str]:
    from click.testing import CliRunner

    from scoreaware.cli import cli
    from scoreaware.domain.build import default_models

    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["curate", "score", "clap", str(manifest), "--model",
                                      str(default_models() / "clap"), "-o", str(out), "--overwrite", *extra])
    assert result.exit_code == 0, result.output
    return time.perf_counter() - started, result.output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=160, help="30 s clips in the corpus (3 windows each)")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each executor (the best is kept)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import ray
    from score_clap import segments

    from curate.manifests import read_cuts
    from testing.parity import same_manifest

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ray_scaling_"))
    manifest = segments(workdir, args.clips)
    cuts = sum(1 for _ in read_cuts(manifest))
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    cluster_start = time.perf_counter() - started
    address = ray.get_runtime_context().gcs_address

    local = min(score(manifest, workdir / "local.jsonl.gz", "-j", "2")[0] for _ in range(args.repeats))
    ray_runs = [score(manifest, workdir / "ray.jsonl.gz", "--executor", "ray", "--ray-address", address,
                      "--ray-actors", "2", "--shard-size", str(args.shard_size)) for _ in range(args.repeats)]
    on_ray, output = min(ray_runs)
    same_manifest(workdir / "local.jsonl.gz", workdir / "ray.jsonl.gz")
    ray.shutdown()

    line = next(ln for ln in output.splitlines() if ln.strip().startswith("ray: "))
    shards = int(line.split(" of ")[1].split()[0])
    in_code = float(line.split(",")[1].split(" s in")[0])
    overhead = (on_ray * 2 - in_code) / shards
    print(f"score clap, {cuts} cuts of 10 s, domain CLAP, 2 cores; outputs agree to 1e-5")
    print(f"  local executor (2 decoding workers)   {local:6.1f} s   {cuts / local:6.1f} cuts/s")
    print(f"  ray executor (2 actors, {shards} shards)     {on_ray:6.1f} s   {cuts / on_ray:6.1f} cuts/s")
    print(f"  ratio ray / local                     {local / on_ray:6.2f}   (target ≥ 0.9)")
    print(f"  ray overhead per shard                {overhead:6.2f} s   ({line.strip()})")
    print(f"  ray cluster start-up (once)           {cluster_start:6.1f} s")


if __name__ == "__main__":
    main()
