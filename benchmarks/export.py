"""Export memory and throughput: rows/s and peak RSS of `curate export` as the manifest grows.

Synthetic segments: 1 s windows cut from a few 60 s mono 16 kHz files (so the manifest can
hold 10,000 segments without synthesizing hours of music). Memory is sampled from
/proc/self/status while each export runs: anonymous RSS (heap: what the process really holds)
should stay flat as rows grow, because rows stream through `Dataset.from_generator` (64 rows
in memory) and shards are written from the Arrow file; file-backed RSS is the memory-mapped
Arrow cache that the kernel pages in and can drop at will, so it tracks the data size.

    python benchmarks/export.py [--rows 1000,10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from memory import PeakMemory  # noqa: E402
from scratch import workdir_or_scratch  # noqa: E402


def synthetic_manifest(workdir: Path, rows: int) -> Path:
    from lhotse import CutSet, Recording

    files = []
    for k in range(4):
        path = workdir / f"src{k}.flac"
        if not path.exists():
            t = np.arange(16000 * 60) / 16000
            sf.write(path, (0.2 * np.sin(2 * np.pi * (220 + 110 * k) * t)).astype(np.float32), 16000)
        files.append(Recording.from_file(path))
    cuts = []
    for i in range(rows):
        recording = files[i % len(files)]
        start = float((i // len(files)) % 59)
        cut = recording.to_cut().truncate(offset=start, duration=1.0, preserve_id=True)
        cuts.append(cut.with_id(f"seg{i:06d}").with_custom("caption", f"a sine tone, segment {i}")
                    .with_custom("clap_score", float(np.sin(i))).with_custom("tags", ["genre---test"]))
    out = workdir / f"m{rows}.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000,10000")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    from scoreaware.curate.publish import export_dataset

    workdir = workdir_or_scratch(args.workdir, "bench-export-")
    export_dataset(synthetic_manifest(workdir, 50), workdir / "warmup")  # imports
    print(f"{'rows':>7} {'seconds':>8} {'rows/s':>8} {'MiB written':>12} {'anon RSS +MiB':>14} "
          f"{'file RSS +MiB':>14}")
    for rows in [int(r) for r in args.rows.split(",")]:
        manifest = synthetic_manifest(workdir, rows)
        with PeakMemory() as memory:
            start = time.perf_counter()
            result = export_dataset(manifest, workdir / f"ds{rows}")
            seconds = time.perf_counter() - start
        assert result.rows == rows and not result.skipped
        print(f"{rows:>7} {seconds:>8.1f} {rows / seconds:>8.1f} {result.bytes / 2**20:>12.1f} "
              f"{memory.growth_mib('RssAnon'):>14.1f} {memory.growth_mib('RssFile'):>14.1f}")
    print("anonymous RSS should not grow with rows; file RSS is the page-cached Arrow file")


if __name__ == "__main__":
    main()
