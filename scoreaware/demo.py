"""`scoreaware demo`: the embedded default corpus and the end-to-end demo pipeline.

`demo run` calls the same click commands a user types, in order, on the synthetic corpus:
make-corpus → ingest → segment → validate → describe. Each step is skipped when its output is
already complete, so a second run is quick and an interrupted one picks up where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

DEFAULT_WORKDIR = Path("manifests") / "demo"


@click.group()
def demo() -> None:
    """The embedded demo: a synthetic corpus and the pipeline run on it."""


@demo.command("make-corpus", context_settings=dict(show_default=True))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--clips", type=click.IntRange(8), default=40, help="Number of clips (≥ 8 plants every defect).")
@click.option("--duration", type=click.FloatRange(1.0), default=30.0, help="Seconds per clip.")
@click.option("--seed", type=int, default=0, help="The corpus is a pure function of clips, duration and seed.")
def make_corpus(directory: Path, clips: int, duration: float, seed: int) -> None:
    """Synthesize a small music corpus with captions, tags and planted defects into DIRECTORY."""
    from curate.cli.common import progress
    from curate.synth import make_corpus as synthesize

    start = time.perf_counter()
    with progress(clips, "make-corpus", "clip") as bar:
        specs = synthesize(directory, clips=clips, duration=duration, seed=seed, progress=lambda _: bar.update(1))
    defects = [s for s in specs if s.defect]
    mismatched = sum(not s.caption_matches_audio for s in specs)
    click.secho("\nmake-corpus", bold=True)
    click.echo(f"  {clips} clips × {duration:g} s at 44.1 kHz (mp3, flac, wav; stereo and mono)")
    click.echo(f"  planted: {mismatched} mismatched captions, "
               + ", ".join(f"{s.defect} {s.path}" for s in defects))
    click.echo(f"  → {directory}/audio, {directory}/metadata (autotagging.tsv, captions.json, tracks.csv), "
               f"{directory}/truth.jsonl   [{time.perf_counter() - start:.1f} s]")


@demo.command("run", context_settings=dict(show_default=True))
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORKDIR,
              help="Where the corpus, manifests and plots go.")
@click.option("--clips", type=click.IntRange(8), default=40, help="Clips in the synthetic corpus.")
@click.option("--duration", type=click.FloatRange(1.0), default=30.0, help="Seconds per clip.")
@click.option("--overwrite", is_flag=True, help="Redo every step, corpus included.")
@click.pass_context
def run(ctx: click.Context, workdir: Path, clips: int, duration: float, overwrite: bool) -> None:
    """Run the whole pipeline on the embedded synthetic corpus and print what happened."""
    from curate.cli.ingest import ingest
    from curate.cli.inspect import describe, validate
    from curate.cli.segment import segment

    start = time.perf_counter()
    corpus = workdir / "corpus"
    manifests = workdir
    if overwrite or not (corpus / "truth.jsonl").is_file():
        ctx.invoke(make_corpus, directory=corpus, clips=clips, duration=duration, seed=0)
    else:
        click.echo(f"✓ corpus already in {corpus}")
    meta = corpus / "metadata"
    steps = [
        ("ingest", ingest, dict(audio_dir=corpus / "audio",
                                metadata_files=(meta / "autotagging.tsv", meta / "captions.json", meta / "tracks.csv"),
                                output=manifests / "ingest.jsonl.gz")),
        ("segment", segment, dict(manifest=manifests / "ingest.jsonl.gz", output=manifests / "segment.jsonl.gz")),
    ]
    for name, command, kwargs in steps:
        click.secho(f"\n── {name} " + "─" * 60, fg="cyan")
        ctx.invoke(command, overwrite=overwrite, **kwargs)
    click.secho("\n── validate " + "─" * 57, fg="cyan")
    for name in ("ingest", "segment"):
        try:
            ctx.invoke(validate, manifest=manifests / f"{name}.jsonl.gz", stage=name)
        except SystemExit as exc:
            raise click.ClickException(f"{name} manifest failed validation") from exc
    click.secho("\n── describe " + "─" * 57, fg="cyan")
    ctx.invoke(describe, manifest=manifests / "segment.jsonl.gz", plot=workdir / "segment.png")
    click.secho(f"\ndemo finished in {time.perf_counter() - start:.1f} s; everything is under {workdir}/",
                bold=True, fg="green")
