"""CLAP scoring throughput: our batched scorer against the common per-clip pattern, one run.

Baseline (what most scripts do, e.g. a loop around laion_clap's
``get_audio_embedding_from_filelist`` or transformers' CLAP): for each segment, decode it,
resample to 48 kHz, run the feature extractor, one audio forward, one text forward for its
caption, cosine. Ours: `curate score clap` (decoding, resampling and feature extraction in
DataLoader workers, batched audio forwards, one text forward per distinct caption, embeddings
written as Lhotse arrays, manifest written and validated). Same model, same segments, same
window policy; the scores are checked to agree.

Models are random-init ClapModels built locally: `tiny` (pipeline cost dominates, as with a
GPU doing the forwards) and `small` (a 4-layer text tower and a wider HTSAT; the CPU forward
dominates). The real laion/larger_clap_music is larger still: on this CPU its forward is the
bottleneck and no pipeline change can hide it; on a GPU the pipeline is what limits.

    python benchmarks/score_clap.py [--clips 120] [--sizes tiny,small] [--batch-size 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from scratch import workdir_or_scratch  # noqa: E402

os.environ.setdefault("DISABLE_PANDERA_IMPORT_WARNING", "True")


def segments(workdir: Path, clips: int) -> Path:
    """The demo corpus, ingested and cut into 10 s windows."""
    from click.testing import CliRunner

    from scoreaware.cli.main import cli
    from scoreaware.demo.synth import make_corpus

    seg = workdir / "segment.jsonl.gz"
    if not seg.exists():
        make_corpus(workdir / "corpus", clips=clips)
        runner = CliRunner()
        assert runner.invoke(cli, ["curate", "ingest", str(workdir / "corpus" / "audio"), "-m",
                                   str(workdir / "corpus" / "metadata" / "captions.json"),
                                   "-o", str(workdir / "ingest.jsonl.gz")]).exit_code == 0
        result = runner.invoke(cli, ["curate", "segment", str(workdir / "ingest.jsonl.gz"), "-o", str(seg)])
        assert result.exit_code == 0, result.output
    return seg


def per_clip(manifest: Path, model_dir: Path) -> tuple[float, dict[str, float]]:
    """The common loop: one decode, one feature extraction, one audio and one text forward per segment."""
    import torch
    from transformers import ClapModel, ClapProcessor

    from scoreaware.core.manifests import read_cuts
    from scoreaware.curate.scoring.audio import mono_resampled, policy_windows

    processor = ClapProcessor.from_pretrained(model_dir)
    model = ClapModel.from_pretrained(model_dir).eval()
    scores = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for cut in read_cuts(manifest):
            (window,) = policy_windows(mono_resampled(cut, 48_000), 480_000, "center")
            audio_in = processor.feature_extractor(window, sampling_rate=48_000, truncation="rand_trunc",
                                                   return_tensors="pt")
            audio = model.get_audio_features(**audio_in).pooler_output
            text_in = processor.tokenizer([cut.custom["caption"]], padding=True, truncation=True, max_length=77,
                                          return_tensors="pt")
            text = model.get_text_features(**text_in).pooler_output
            scores[cut.id] = float(torch.nn.functional.cosine_similarity(audio, text)[0])
    return time.perf_counter() - start, scores


def ours(manifest: Path, model_dir: Path, out: Path, batch_size: int, workers: int) -> tuple[float, dict[str, float]]:
    from click.testing import CliRunner

    from scoreaware.cli.main import cli
    from scoreaware.core.manifests import read_cuts

    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["curate", "score", "clap", str(manifest), "--model", str(model_dir), "-o",
                                      str(out), "--batch-size", str(batch_size), "-j", str(workers), "--overwrite"])
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    return seconds, {c.id: c.custom["clap_score"] for c in read_cuts(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--sizes", default="tiny,small", help="Model presets to measure (tiny, small).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = workdir_or_scratch(args.workdir, "bench-clap-")
    from scoreaware.demo.tiny_models import make_tiny_clap

    manifest = segments(workdir, args.clips)
    n = sum(1 for _ in open_lines(manifest))
    print(f"cpu cores: {os.cpu_count()}   segments: {n} × 10 s   batch {args.batch_size}, {args.workers} workers")
    print(f"{'model':>6} {'per-clip loop seg/s':>20} {'score clap seg/s':>17} {'ratio':>6} {'max |Δscore|':>13} "
          f"{'peak RSS main/worker MiB':>25}")
    for size in args.sizes.split(","):
        model_dir = workdir / f"clap-{size}"
        if not (model_dir / "config.json").exists():
            make_tiny_clap(model_dir, size=size)
        ours(manifest, model_dir, workdir / "warmup.jsonl.gz", args.batch_size, 0)  # imports, page cache
        base_s, base_scores = per_clip(manifest, model_dir)
        our_s, our_scores = ours(manifest, model_dir, workdir / "clap.jsonl.gz", args.batch_size, args.workers)
        worst = max(abs(base_scores[k] - our_scores[k]) for k in base_scores)
        main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{size:>6} {n / base_s:>20.2f} {n / our_s:>17.2f} {base_s / our_s:>5.2f}× {worst:>13.1e} "
              f"{main_rss:>14.0f} / {child_rss:.0f}")
        assert worst < 1e-4, "the two paths disagree"
    print("ratio = our segments/s over the per-clip loop's (target ≥ 4× where the pipeline, not the model, "
          "limits). RSS is process peak (workers count shared pages).")


def open_lines(path: Path):
    import gzip

    with gzip.open(path, "rt") as f:
        yield from (line for line in f if line.strip())


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
