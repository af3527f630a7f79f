"""Throughput of `curate segment` against a bare decode loop over the same files, one run.

Baseline: ``soundfile.read`` of every source file in a plain loop (float32, one thread, no
manifests, no loudness, nothing written). Ours: the `scoreaware curate segment` command run
in-process (lazy manifest read, decode, per-window BS.1770 loudness, JSONL writes, schema
validation, gzip, sidecar). Throughput is audio hours per wall-clock second. The corpus is the
demo corpus; larger corpora repeat its files under new recording ids, so peak memory can be
compared across corpus sizes (peak resident memory above the level before the run, sampled
from /proc every 5 ms). A warm-up run on two sources pays the imports before timing.

    python benchmarks/segment.py [--clips 40] [--duration 30] [--scales 1,4] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DISABLE_PANDERA_IMPORT_WARNING", "True")
sys.path.insert(0, str(Path(__file__).parent))
from memory import PeakMemory  # noqa: E402
from scratch import workdir_or_scratch  # noqa: E402


def build_sources(workdir: Path, clips: int, duration: float, scale: int) -> Path:
    """Ingest the demo corpus once, then write a manifest repeating it `scale` times."""
    from click.testing import CliRunner
    from lhotse import CutSet
    from lhotse.utils import fastcopy

    from scoreaware.cli.main import cli
    from scoreaware.core.manifests import read_cuts
    from scoreaware.demo.synth import make_corpus

    corpus = workdir / "corpus"
    ingested = workdir / "ingest.jsonl.gz"
    if not ingested.exists():
        make_corpus(corpus, clips=clips, duration=duration)
        result = CliRunner().invoke(cli, ["curate", "ingest", str(corpus / "audio"), "-o", str(ingested)])
        assert result.exit_code == 0, result.output
    out = workdir / f"sources_x{scale}.jsonl.gz"
    if not out.exists():
        cuts = list(read_cuts(ingested))
        copies = []
        for k in range(scale):
            for cut in cuts:
                rid = f"{cut.recording_id}-{k}"
                copies.append(fastcopy(cut, id=rid, recording=fastcopy(cut.recording, id=rid)))
        CutSet.from_cuts(copies).to_file(out)
    return out


def bare_decode(manifest: Path) -> tuple[float, float]:
    """(seconds, audio hours) of decoding every source with soundfile, nothing else."""
    import soundfile as sf

    from scoreaware.core.manifests import read_cuts

    paths = [c.recording.sources[0].source for c in read_cuts(manifest)]
    start = time.perf_counter()
    samples = 0.0
    for path in paths:
        audio, sr = sf.read(path, dtype="float32")
        samples += audio.shape[0] / sr
    return time.perf_counter() - start, samples / 3600


def ours(manifest: Path, out: Path, workers: int) -> tuple[float, float, float]:
    """(seconds, audio hours, peak MiB) of the segment command."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli
    from scoreaware.core.manifests import read_cuts

    hours = sum(c.duration for c in read_cuts(manifest)) / 3600
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = CliRunner().invoke(cli, ["curate", "segment", str(manifest), "-o", str(out), "--workers",
                                          str(workers), "--overwrite"])
        seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    return seconds, hours, memory.growth_mib("VmRSS")


def warm_up(manifest: Path, workdir: Path) -> None:
    """Run the stage once on two sources so imports and caches are not timed."""
    from scoreaware.core.manifests import read_cuts

    small = workdir / "warmup.jsonl.gz"
    read_cuts(manifest).subset(first=2).to_file(small)
    ours(small, workdir / "warmup_out.jsonl.gz", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--scales", default="1,4", help="Corpus sizes as multiples of the demo corpus.")
    parser.add_argument("--workers", default="1,2", help="Thread counts to measure.")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the corpus here between runs.")
    args = parser.parse_args()
    workdir = workdir_or_scratch(args.workdir, "bench-segment-")
    print(f"cpu cores: {os.cpu_count()}   corpus: {args.clips} clips × {args.duration:g} s (mp3/flac/wav)")
    print(f"{'sources':>8} {'audio h':>8} {'bare decode h/s':>16} {'workers':>8} {'segment h/s':>12} "
          f"{'ratio':>6} {'peak RSS +MiB':>14}")
    for scale in [int(s) for s in args.scales.split(",")]:
        manifest = build_sources(workdir, args.clips, args.duration, scale)
        warm_up(manifest, workdir)
        bare_s, bare_h = bare_decode(manifest)
        for workers in [int(w) for w in args.workers.split(",")]:
            seconds, hours, peak = ours(manifest, workdir / f"seg_x{scale}.jsonl.gz", workers)
            ratio = (hours / seconds) / (bare_h / bare_s)
            print(f"{scale * args.clips:>8} {hours:>8.3f} {bare_h / bare_s:>16.3f} {workers:>8} "
                  f"{hours / seconds:>12.3f} {ratio:>6.2f} {peak:>14.1f}")
    print("ratio = segment throughput / bare decode throughput (target ≥ 0.8); "
          "peak RSS should not grow with the corpus.")


if __name__ == "__main__":
    main()
