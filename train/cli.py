"""`scoreaware train` and `scoreaware eval` command groups (commands are registered here)."""

from __future__ import annotations

import click


@click.group()
def train() -> None:
    """Train from curated manifests."""


@click.group(name="eval")
def evaluate() -> None:
    """Evaluate generated audio against references."""
