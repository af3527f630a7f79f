"""The `scoreaware curate` command group; one module per command family."""

from __future__ import annotations

import click

from scoreaware.cli.curate.caption import caption
from scoreaware.cli.curate.hub import export, import_cmd, publish
from scoreaware.cli.curate.ingest import ingest
from scoreaware.cli.curate.inspect import describe, report, validate
from scoreaware.cli.curate.score import score
from scoreaware.cli.curate.segment import segment
from scoreaware.cli.curate.select import filter_cmd, select_cmd


@click.group()
def curate() -> None:
    """Turn audio and metadata into curated, score-annotated Lhotse manifests."""


for command in (ingest, segment, score, caption, filter_cmd, select_cmd, report, export, publish, import_cmd, validate,
                describe):
    curate.add_command(command)
