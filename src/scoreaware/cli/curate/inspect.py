"""`scoreaware curate validate` and `scoreaware curate describe`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scoreaware.cli.options import manifest_path

STAGES = ["auto", "ingest", "segment", "clap", "reward", "caption", "caption_audio", "caption_rewrite", "select",
          "mixture"]


@click.command(context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--stage", type=click.Choice(STAGES), default="auto",
              help="Schema to check against; auto reads the sidecar, else infers from the columns.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Print at most this many problems.")
def validate(manifest: Path, stage: str, limit: int | None) -> None:
    """Check MANIFEST against its stage's pandera schema; list every failing row and field.

    Exits 1 when anything fails (including lines that are not valid JSON or not a cut).
    """
    from scoreaware.schemas.validation import validate_manifest

    report = validate_manifest(manifest, stage=None if stage == "auto" else stage)
    click.echo(report.format(limit=limit))
    if not report.ok:
        sys.exit(1)


@click.command(context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the histograms to this PNG.")
@click.option("--bins", type=click.IntRange(2, 100), default=10, help="Histogram bins in the terminal.")
def describe(manifest: Path, plot: Path | None, bins: int) -> None:
    """Counts, total hours and histograms of duration, loudness and scores in MANIFEST."""
    from scoreaware.curate.stages.describe import describe_manifest, format_description, plot_description
    from scoreaware.schemas.validation import check_input

    check_input(manifest)
    desc = describe_manifest(manifest)
    click.echo(format_description(desc, bins=bins))
    if plot is not None:
        click.echo(f"\n→ {plot_description(desc, plot)}")


@click.command(context_settings=dict(show_default=True))
@click.argument("manifests", nargs=-1, required=True, type=manifest_path())
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("manifests/report"),
              help="Folder for index.html and the figures.")
@click.option("--lam", type=float, default=1.0, help="λ of the score-aware Beta timestep schedule shown.")
@click.option("--examples", type=click.IntRange(1), default=8, help="Best/worst segments listed.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='JSONL of {"id": cut or recording id, "label": ...}: histograms split by label and what '
                   "filtering removed of each.")
def report(manifests: tuple[Path, ...], output: Path, lam: float, examples: int, labels: Path | None) -> None:
    """Write a self-contained HTML report of a curation run from its MANIFESTS (any stages)."""
    from scoreaware.core.errors import StageError
    from scoreaware.curate.stages.report import build_report, read_labels
    from scoreaware.schemas.validation import check_input

    for manifest in manifests:
        check_input(manifest)
    try:
        known = read_labels(labels) if labels else None
    except ValueError as exc:
        raise StageError(str(exc)) from None
    index = build_report(list(manifests), output, lam=lam, k=examples, labels=known)
    click.echo(f"report → {index} (figures: {', '.join(p.name for p in sorted(output.glob('*.png')))})")
