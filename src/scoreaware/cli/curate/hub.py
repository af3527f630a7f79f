"""`scoreaware curate export`, `publish` and `import` (Hugging Face datasets)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from scoreaware.cli.options import (
    manifest_path,
    output_options,
    print_result,
    print_summary,
)
from scoreaware.core.progress import Timer


def _size(text: str) -> int:
    units = {"KB": 2**10, "MB": 2**20, "GB": 2**30}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


@click.command(context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder (data/*.parquet + README.md); load it with datasets.load_dataset(OUTPUT).")
@click.option("--max-shard-size", default="500MB", help="Upper bound of one Parquet shard.")
@click.option("--embeddings/--no-embeddings", default=False, help="Also export stored embeddings as float lists.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset folder.")
def export(manifest: Path, output: Path, max_shard_size: str, embeddings: bool, overwrite: bool) -> None:
    """Export MANIFEST as a Hugging Face dataset: one row per segment with its own FLAC audio."""
    from scoreaware.curate.publish import export_dataset
    from scoreaware.schemas.validation import check_input

    if output.exists() and any(output.iterdir()) and not overwrite:
        raise click.ClickException(f"{output} exists; pass --overwrite to replace it")
    check_input(manifest)
    timer = Timer()
    result = export_dataset(manifest, output, max_shard_bytes=_size(max_shard_size), embeddings=embeddings)
    lines = [f"rows {result.rows} in {result.shards} Parquet shard(s), {result.bytes / 2**20:.1f} MiB",
             f"skipped {len(result.skipped)} unreadable rows" + (f" (see {output}/skipped.jsonl)" if result.skipped
                                                                  else ""),
             f"took {timer.seconds:.1f} s ({result.rows / max(timer.seconds, 1e-9):.1f} rows/s)"]
    print_summary("export", lines, {"dataset": {"path": str(output), "items": result.rows}})


@click.command(context_settings=dict(show_default=True))
@click.argument("manifest", type=manifest_path())
@click.option("--repo-id", required=True, help="ORG/NAME of the Hub dataset repository.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--overwrite", is_flag=True, help="Allow writing into a repository that already has files.")
@click.option("--max-shard-size", default="500MB")
@click.option("--embeddings/--no-embeddings", default=False)
def publish(manifest: Path, repo_id: str, private: bool, overwrite: bool, max_shard_size: str,
            embeddings: bool) -> None:
    """Export MANIFEST and push it to the Hugging Face Hub (token: HF_TOKEN or your saved login)."""
    from scoreaware.curate.publish import export_dataset
    from scoreaware.curate.publish import publish as push

    with tempfile.TemporaryDirectory(prefix="scoreaware-publish-") as tmp:
        result = export_dataset(manifest, Path(tmp) / "dataset", max_shard_bytes=_size(max_shard_size),
                                embeddings=embeddings)
        url = push(result.directory, repo_id, private=private, overwrite=overwrite, max_shard_size=max_shard_size)
    print_summary("publish", [f"rows {result.rows}, skipped {len(result.skipped)}", f"→ {url}"], {})


@click.command("import", context_settings=dict(show_default=True))
@click.argument("source")
@click.option("--split", default="train")
@output_options("import.jsonl.gz")
def import_cmd(source: str, output: Path, resume: bool, overwrite: bool, **options) -> None:
    """Read a dataset exported by scoreaware (local folder or Hub id SOURCE) back into cuts.

    Audio is written as FLAC files next to OUTPUT (<name>.audio/); every column becomes a custom field.
    """
    from scoreaware.curate.stages.hub_import import ImportConfig, run_import

    print_result(run_import(source, output, ImportConfig(**options), resume=resume, overwrite=overwrite))
