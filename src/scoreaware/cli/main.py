"""The `scoreaware` console script: one root group, explicit subgroups.

Heavy libraries (lhotse, torch, pandera) are imported inside commands, so `--help` is fast.
"""

from __future__ import annotations

import logging
import os
import random

import click

from scoreaware import __version__
from scoreaware.cli.curate import curate
from scoreaware.cli.demo import demo
from scoreaware.cli.errors import GuardedGroup
from scoreaware.cli.eval import evaluate
from scoreaware.cli.examples import add_examples
from scoreaware.cli.experiment import experiment
from scoreaware.cli.posttrain import posttrain
from scoreaware.cli.train import train

CONTEXT = dict(show_default=True, help_option_names=["-h", "--help"], max_content_width=100)


@click.group(cls=GuardedGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="scoreaware")
@click.option("--seed", type=int, default=42, help="Seed for Python, NumPy and torch RNGs.")
@click.option("-v", "--verbose", count=True, help="-v for INFO logs, -vv for DEBUG.")
def cli(seed: int, verbose: int) -> None:
    """Curate score-annotated Lhotse manifests for text-to-music, and train from them."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    os.environ.setdefault("DISABLE_PANDERA_IMPORT_WARNING", "True")
    if verbose == 0:  # our own progress says what runs; transformers' and datasets' bars only with -v
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass


def _old_names() -> None:
    """The post-training commands answered under `train` before they had their own group:
    hidden copies there, so existing scripts keep working."""
    import copy

    for command in posttrain.commands.values():
        alias = copy.copy(command)
        alias.hidden = True
        train.add_command(alias)


_old_names()
cli.add_command(curate)
cli.add_command(train)
cli.add_command(posttrain)
cli.add_command(evaluate)
cli.add_command(experiment)
cli.add_command(demo)
add_examples(cli)


if __name__ == "__main__":
    cli()
