"""The `scoreaware curate` command group; one module per command family."""

from __future__ import annotations

import click

from curate.cli.caption import caption
from curate.cli.hub import export, import_cmd, publish
from curate.cli.ingest import ingest
from curate.cli.inspect import describe, report, validate
from curate.cli.score import score
from curate.cli.segment import segment
from curate.cli.select import filter_cmd, select_cmd


@click.group()
def curate() -> None:
    """Turn audio and metadata into curated, score-annotated Lhotse manifests."""


for command in (ingest, segment, score, caption, filter_cmd, select_cmd, report, export, publish, import_cmd, validate,
                describe):
    curate.add_command(command)
