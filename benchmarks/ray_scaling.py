"""`curate score clap` on the local executor against `--executor ray` with 2 actors, one run.

Same manifest, same model (the shipped domain CLAP), same outputs (checked to agree to 1e-5).
Local: today's executor (2 DataLoader decoding processes, the model in the main process).
Ray: a local Ray cluster started once beforehand (its start-up is reported on its own line,
as a cluster is started once and serves many stages), 2 actors of 1 CPU each, each loading
the model once and decoding and scoring its shards itself.

Prints both throughputs and their ratio (target ≥ 0.9: Ray's overhead must not eat the
parallelism), split into what Ray costs once per run and what it costs per shard:

* actor start-up: until the last actor is ready (a new process, its imports, the stage's
  setup: the model), measured in the actors and reported with their first shard;
* per-shard overhead: ((wall − start-up) × actors − time in the stage's code) / shards, i.e.
  what scheduling, serializing the shard's cuts and joining the results cost;
* the ratio after start-up: local throughput against Ray's once its actors are up.

    python benchmarks/ray_scaling.py [--clips 160 480] [--shard-size 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DISABLE_PANDERA_IMPORT_WARNING", "True")
sys.path.insert(0, str(Path(__file__).parent))
from scratch import workdir_or_scratch  # noqa: E402


def score(manifest: Path, out: Path, *extra: str) -> tuple[float, str]:
    from click.testing import CliRunner

    from scoreaware.cli.main import cli
    from scoreaware.demo.domain.build import default_models

    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["curate", "score", "clap", str(manifest), "--model",
                                      str(default_models() / "clap"), "-o", str(out), "--overwrite", *extra])
    assert result.exit_code == 0, result.output
    return time.perf_counter() - started, result.output


def ray_report(output: str) -> dict:
    """The numbers of the stage summary's 'ray: …' line."""
    import re

    line = next(ln.strip() for ln in output.splitlines() if ln.strip().startswith("ray: "))
    found = re.search(r"of (\d+) shards on (\d+) actors, ([\d.]+) s in the stage's code, ([\d.]+) s wall; "
                      r"actors ready after ([\d.]+) s", line)
    shards, actors, code, wall, ready = found.groups()
    return {"line": line, "shards": int(shards), "actors": int(actors), "code": float(code), "wall": float(wall),
            "ready": float(ready)}


def measure(workdir: Path, clips: int, shard_size: int, repeats: int, address: str) -> dict:
    from score_clap import segments

    from scoreaware.core.manifests import read_cuts
    from scoreaware.testing.parity import same_manifest

    folder = workdir / f"clips{clips}"
    manifest = segments(folder, clips)
    cuts = sum(1 for _ in read_cuts(manifest))
    local = min(score(manifest, folder / "local.jsonl.gz", "-j", "2")[0] for _ in range(repeats))
    runs = [score(manifest, folder / "ray.jsonl.gz", "--executor", "ray", "--ray-address", address,
                  "--ray-actors", "2", "--shard-size", str(shard_size)) for _ in range(repeats)]
    on_ray, output = min(runs)
    same_manifest(folder / "local.jsonl.gz", folder / "ray.jsonl.gz")
    r = ray_report(output)
    steady = cuts / max(r["wall"] - r["ready"], 1e-9)
    return {"cuts": cuts, "local": cuts / local, "ray": cuts / on_ray, "ratio": local / on_ray,
            "startup": r["ready"], "per_shard": ((r["wall"] - r["ready"]) * r["actors"] - r["code"]) / r["shards"],
            "steady_ratio": steady / (cuts / local), "shards": r["shards"], "line": r["line"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, nargs="+", default=[160, 480],
                        help="30 s clips in the corpus (3 windows each, fewer where planted defects drop)")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each executor (the best is kept)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import ray

    workdir = workdir_or_scratch(args.workdir, "ray_scaling_")
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    cluster_start = time.perf_counter() - started
    address = ray.get_runtime_context().gcs_address
    rows = [measure(workdir, clips, args.shard_size, args.repeats, address) for clips in args.clips]
    ray.shutdown()

    print("score clap, 10 s windows, domain CLAP, 2 cores; local: 2 decoding workers; ray: 2 actors of 1 CPU; "
          "outputs agree to 1e-5")
    print(f"  {'cuts':>6} {'shards':>6} {'local cuts/s':>12} {'ray cuts/s':>10} {'ratio':>6} "
          f"{'actor start-up':>14} {'per shard':>9} {'ratio after start-up':>20}")
    for r in rows:
        print(f"  {r['cuts']:6d} {r['shards']:6d} {r['local']:12.1f} {r['ray']:10.1f} {r['ratio']:6.2f} "
              f"{r['startup']:13.1f}s {r['per_shard']:8.2f}s {r['steady_ratio']:20.2f}")
    print("  target: ratio ≥ 0.9")
    print(f"  ray cluster start-up (once): {cluster_start:.1f} s")
    for r in rows:
        print(f"  {r['cuts']} cuts: {r['line']}")


if __name__ == "__main__":
    main()
